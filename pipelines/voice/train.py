"""Train the voice converter and speaker encoder on the codec's latents.

    python -m pipelines.voice.train --data data/voice --models models/voice --minutes 40

The codec (trained first, `pipelines.voice.train_codec`) encodes every clip of the seen
speakers; latents are normalised per channel. Then, jointly:
- the speaker encoder embeds a 2 s crop of another utterance of the same speaker, with
  a small speaker-classification head so that embeddings separate speakers;
- the converter learns flow matching on windows of that speaker's latents, conditioned
  on the embedding: x_s = (1 - s) x0 + s noise, velocity target noise - x0.
The embedding is dropped (zeros, the ring's null condition) for a tenth of the windows,
so that guidance above 1 can push a conversion further toward the target.
At inference a source chunk is noised to `strength` and denoised toward the target's
embedding in one step. Flow matching alone keeps much of the source's timbre in that
step: it only learns to denoise a speaker toward itself. So a share of the windows
(`--parallel`) are conversions with a known answer. Every speaker says every sentence;
a window of speaker A's latents is noised to sigma (around the strengths a performer
uses), and the velocity target is the one that lands, in one Euler step, on speaker
B's latents for the same words, frame-aligned by DTW (`align`):
    x_s = (1 - s) z_A + s noise,  v* = (x_s - z_B[aligned]) / s,
conditioned on B's embedding from another of B's sentences.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..training import Budget
from . import corpus
from .align import alignment_features, map_frames, pivot_clock
from .checkpoint import load_codec, load_voice, save_voice, write_voice_card
from .codec import VoiceCodec
from .models import Converter, SpeakerEncoder, VoiceConfig

REFERENCE_FRAMES = 200  # 2 s of latents embed a speaker in training
DROP_SPEAKER = 0.1  # share of flow-matching windows trained without the speaker (for guidance)
PARALLEL_SIGMA = (0.3, 0.9)  # the noise levels of the parallel windows: the strengths a conversion runs at


def encode_all(codec: VoiceCodec, clips: list[np.ndarray]) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for clip in clips:
            n = clip.size // codec.hop * codec.hop
            out.append(codec.encoder(torch.from_numpy(clip[:n])[None, None])[0][0])
    return out


def crop(z: torch.Tensor, frames: int, rng: np.random.Generator) -> torch.Tensor:
    if z.shape[1] <= frames:
        return F.pad(z, (0, frames - z.shape[1]))
    start = int(rng.integers(0, z.shape[1] - frames))
    return z[:, start : start + frames]


def sentence_clocks(rows: list[dict], clips: list[np.ndarray], latents: list[torch.Tensor]) -> list[np.ndarray]:
    """Each clip's position, frame by frame, in its sentence's pivot rendering (the first speaker's)."""
    pivots: dict[str, np.ndarray] = {}
    clocks = []
    for row, clip, z in zip(rows, clips, latents):
        features = alignment_features(clip)
        pivot = pivots.setdefault(row["sentence"], features)
        clocks.append(pivot_clock(features, pivot, z.shape[1]))
    return clocks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/voice"))
    ap.add_argument("--models", type=Path, default=Path("models/voice"), help="folder with the codec; gets the rest")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--window", type=int, default=16, help="latent frames per training window (context + chunk)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=VoiceConfig.width)
    ap.add_argument("--parallel", type=float, default=0.5,
                    help="share of each batch trained to convert one speaker into another (aligned parallel sentences)")
    ap.add_argument("--init", type=Path, default=None, help="start from this folder's converter and speaker encoder")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    codec = load_codec(args.models)
    if not 0.0 <= args.parallel <= 1.0:
        ap.error(f"--parallel is a share of the batch, from 0 to 1 (got {args.parallel})")
    rows = sorted(corpus.rows(args.data, corpus.training), key=lambda r: (r["sentence"], r["speaker"]))
    clips = [corpus.audio(args.data, r) for r in rows]
    latents = encode_all(codec, clips)
    clocks = sentence_clocks(rows, clips, latents)
    del clips
    allz = torch.cat(latents, dim=1)
    mean, std = allz.mean(dim=1), allz.std(dim=1).clamp(min=1e-3)
    latents = [(z - mean[:, None]) / std[:, None] for z in latents]
    names = sorted({r["speaker"] for r in rows})
    by_speaker = {n: [i for i, r in enumerate(rows) if r["speaker"] == n] for n in names}
    by_sentence: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_sentence.setdefault(r["sentence"], []).append(i)
    sentences = [v for v in by_sentence.values() if len(v) > 1]
    cfg = VoiceConfig(latent=codec.cfg.latent, width=args.width)
    encoder, converter = SpeakerEncoder(cfg), Converter(cfg)
    before = None
    if args.init is not None:
        init_models, init_encoder = load_voice(args.init)
        if init_models.converter.cfg != cfg:
            ap.error(f"--init {args.init} holds a converter of config {init_models.converter.cfg}, not {cfg}")
        converter.load_state_dict(init_models.converter.state_dict())
        encoder.load_state_dict(init_encoder.state_dict())
        before = json.loads((args.init / "converter.json").read_text())
    head = torch.nn.Linear(cfg.speaker, len(names))
    modules = torch.nn.ModuleList([encoder, converter, head])
    opt = torch.optim.AdamW(modules.parameters(), lr=args.lr)
    budget = Budget(args.minutes, args.lr, warmup_steps=100)
    n_parallel = round(args.batch * args.parallel)
    while budget.running():
        speakers = rng.integers(0, len(names), args.batch - n_parallel)
        x0, ref = [], []
        for s in speakers:  # flow matching: a speaker's window, denoised toward that speaker
            u, r = rng.choice(by_speaker[names[s]], 2, replace=False)
            x0.append(crop(latents[u], args.window, rng))
            ref.append(crop(latents[r], REFERENCE_FRAMES, rng))
        sources, targets, target_speakers = [], [], []
        for _ in range(n_parallel):  # parallel: speaker A's window, converted to speaker B saying the same words
            a, b = rng.choice(sentences[rng.integers(len(sentences))], 2, replace=False)
            start = int(rng.integers(0, max(1, latents[a].shape[1] - args.window)))
            frames = np.arange(start, start + args.window).clip(max=latents[a].shape[1] - 1)
            sources.append(latents[a][:, frames])
            targets.append(latents[b][:, map_frames(clocks[a][frames], clocks[b])])
            speaker = rows[b]["speaker"]
            target_speakers.append(names.index(speaker))
            others = [i for i in by_speaker[speaker] if rows[i]["sentence"] != rows[b]["sentence"]]
            ref.append(crop(latents[others[rng.integers(len(others))]], REFERENCE_FRAMES, rng))
        emb = encoder(torch.stack(ref))
        loss = 0.1 * F.cross_entropy(head(emb) * 10.0, torch.from_numpy(np.r_[speakers, target_speakers]))
        n_flow = len(speakers)
        if n_flow:
            x0 = torch.stack(x0)
            sigma = torch.rand(n_flow)
            noise = torch.randn_like(x0)
            xs = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
            keep = torch.from_numpy(rng.random(n_flow) >= DROP_SPEAKER).float()[:, None]
            v = converter(xs, sigma, {"speaker": emb[:n_flow] * keep})
            loss = loss + F.mse_loss(v, noise - x0) * n_flow / args.batch
        if n_parallel:
            source, target = torch.stack(sources), torch.stack(targets)
            sigma = torch.empty(n_parallel).uniform_(*PARALLEL_SIGMA)
            xs = (1 - sigma[:, None, None]) * source + sigma[:, None, None] * torch.randn_like(source)
            v = converter(xs, sigma, {"speaker": emb[n_flow:]})
            loss = loss + F.mse_loss(v, (xs - target) / sigma[:, None, None]) * n_parallel / args.batch
        budget.update(opt, modules, loss)
    card = {"config": {"latent": cfg.latent, "width": cfg.width, "speaker": cfg.speaker, "blocks": cfg.blocks},
            "latent_mean": mean.tolist(), "latent_std": std.tolist(), "speakers_seen": names,
            "train_minutes": round(budget.elapsed / 60, 1), "steps": budget.step, "loss_log": budget.log[-20:],
            "command": "python -m pipelines.voice.train " + " ".join(argv if argv is not None else sys.argv[1:])}
    if before is not None:
        stage = {k: before[k] for k in ("command", "train_minutes", "steps") if k in before}
        if "metrics_heldout" in before:  # the two figures the converter is judged by
            stage["metrics_heldout"] = {k: before["metrics_heldout"][k] for k in ("speaker_accuracy", "mcd_db")
                                        if k in before["metrics_heldout"]}
        card["before"] = before.get("before", []) + [stage]
        card["train_minutes_total"] = round(card["train_minutes"] + sum(b["train_minutes"] for b in card["before"]), 1)
    save_voice(args.models, encoder.eval(), converter.eval(), card)
    write_voice_card(args.models)
    print(json.dumps({"steps": budget.step, "loss": budget.log[-1][2] if budget.log else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
embedding: what the source leaves in the latents at that noise level (timing, words)
stays, what the target's embedding decides (timbre, pitch range) changes.
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
from .checkpoint import load_codec, save_voice, write_voice_card
from .codec import VoiceCodec
from .models import Converter, SpeakerEncoder, VoiceConfig

REFERENCE_FRAMES = 200  # 2 s of latents embed a speaker in training
DROP_SPEAKER = 0.1  # share of windows trained without the speaker (for guidance)


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/voice"))
    ap.add_argument("--models", type=Path, default=Path("models/voice"), help="folder with the codec; gets the rest")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--window", type=int, default=16, help="latent frames per training window (context + chunk)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=VoiceConfig.width)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    codec = load_codec(args.models)
    rows = corpus.rows(args.data, corpus.training)
    latents = encode_all(codec, [corpus.audio(args.data, r) for r in rows])
    allz = torch.cat(latents, dim=1)
    mean, std = allz.mean(dim=1), allz.std(dim=1).clamp(min=1e-3)
    latents = [(z - mean[:, None]) / std[:, None] for z in latents]
    names = sorted({r["speaker"] for r in rows})
    by_speaker = {n: [i for i, r in enumerate(rows) if r["speaker"] == n] for n in names}
    cfg = VoiceConfig(latent=codec.cfg.latent, width=args.width)
    encoder, converter = SpeakerEncoder(cfg), Converter(cfg)
    head = torch.nn.Linear(cfg.speaker, len(names))
    modules = torch.nn.ModuleList([encoder, converter, head])
    opt = torch.optim.AdamW(modules.parameters(), lr=args.lr)
    budget = Budget(args.minutes, args.lr, warmup_steps=100)
    while budget.running():
        speakers = rng.integers(0, len(names), args.batch)
        x0, ref = [], []
        for s in speakers:
            u, r = rng.choice(by_speaker[names[s]], 2, replace=False)
            x0.append(crop(latents[u], args.window, rng))
            ref.append(crop(latents[r], REFERENCE_FRAMES, rng))
        x0, ref = torch.stack(x0), torch.stack(ref)
        emb = encoder(ref)
        sigma = torch.rand(args.batch)
        noise = torch.randn_like(x0)
        xs = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
        keep = torch.from_numpy(rng.random(args.batch) >= DROP_SPEAKER).float()[:, None]
        loss = F.mse_loss(converter(xs, sigma, {"speaker": emb * keep}), noise - x0)
        loss = loss + 0.1 * F.cross_entropy(head(emb) * 10.0, torch.from_numpy(speakers))
        budget.update(opt, modules, loss)
    card = {"config": {"latent": cfg.latent, "width": cfg.width, "speaker": cfg.speaker, "blocks": cfg.blocks},
            "latent_mean": mean.tolist(), "latent_std": std.tolist(), "speakers_seen": names,
            "train_minutes": round(budget.elapsed / 60, 1), "steps": budget.step, "loss_log": budget.log[-20:],
            "command": "python -m pipelines.voice.train " + " ".join(argv if argv is not None else sys.argv[1:])}
    save_voice(args.models, encoder.eval(), converter.eval(), card)
    write_voice_card(args.models)
    print(json.dumps({"steps": budget.step, "loss": budget.log[-1][2] if budget.log else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

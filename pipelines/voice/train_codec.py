"""Train the house voice codec on the speech corpus.

    python -m pipelines.voice.train_codec --data data/voice --out models/voice --minutes 50

Loss: multi-resolution STFT (log floor 1e-3 on magnitudes, so silence does not outweigh
speech) plus log-mel distances at two resolutions, one of them MCD's own, and a small L2
on the latents to keep their scale bounded (the converter works on them). No waveform
term: the decoder is free to choose its phase. `--stats` adds a term on each crop's
per-band mean and spread of log-mel over time (the speaker's timbre, which frame-wise
distances let the decoder flatten). Random crops of seen speakers saying seen sentences;
`--init` resumes from a codec folder's weights (same config), and `--decoder-only` trains
the decoder alone on top of it: the latents, and so a converter trained on them, stay
valid. The card reports, on held-out speakers and sentences: the mel-cepstral distortion of the round trip (the
floor any conversion through this codec starts from), the multi-resolution STFT
distance and SNR, and the training time of every stage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..losses import mel_loss, mrstft_loss
from ..music.metrics import mrstft_distance, snr_db
from ..training import Budget
from . import corpus
from .checkpoint import load_codec, save_codec, write_voice_card
from .codec import SAMPLE_RATE, CodecConfig, VoiceCodec
from .metrics import mcd_db


def crops(clips: list[np.ndarray], n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    out = np.zeros((n, 1, length), np.float32)
    for i in range(n):
        clip = clips[rng.integers(len(clips))]
        start = rng.integers(0, max(1, clip.size - length))
        piece = clip[start : start + length]
        out[i, 0, : piece.size] = piece
    return torch.from_numpy(out)


def evaluate(codec: VoiceCodec, clips: list[np.ndarray]) -> dict[str, float]:
    stft, snr, mcd = [], [], []
    for clip in clips:
        y = codec.roundtrip(clip)
        stft.append(mrstft_distance(y, clip[: y.size]))
        snr.append(snr_db(y, clip[: y.size]))
        mcd.append(mcd_db(y, clip[: y.size]))
    return {"mcd_db": float(np.mean(mcd)), "mrstft_distance": float(np.mean(stft)), "snr_db": float(np.mean(snr))}


def loss_fn(y: torch.Tensor, x: torch.Tensor, z: torch.Tensor, latent_l2: float, stats: float) -> torch.Tensor:
    return mrstft_loss(y, x, floor=1e-3) + mel_loss(y, x, SAMPLE_RATE, stats=stats) + latent_l2 * z.pow(2).mean()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/voice"))
    ap.add_argument("--out", type=Path, default=Path("models/voice"))
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--init", type=Path, default=None, help="a codec folder to resume from (its config wins)")
    ap.add_argument("--decoder-only", action="store_true", help="train the decoder alone (needs --init)")
    ap.add_argument("--stats", type=float, default=0.0, help="weight of the per-band mean and spread term")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop-seconds", type=float, default=0.64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--latent-l2", type=float, default=1e-4)
    ap.add_argument("--width", type=int, default=CodecConfig.width)
    ap.add_argument("--latent", type=int, default=CodecConfig.latent)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-clips", type=int, default=32)
    args = ap.parse_args(argv)
    if args.decoder_only and args.init is None:
        ap.error("--decoder-only trains on top of a codec: give it --init FOLDER")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train = [corpus.audio(args.data, r) for r in corpus.rows(args.data, corpus.training)]
    held = corpus.rows(args.data, lambda r: r["speaker_held_out"] or r["sentence_held_out"])
    test = [corpus.audio(args.data, held[i]) for i in rng.permutation(len(held))[: args.eval_clips]]
    codec = load_codec(args.init) if args.init else VoiceCodec(CodecConfig(width=args.width, latent=args.latent))
    codec.train()
    codec.decoder.requires_grad_(True)
    codec.encoder.trainable(not args.decoder_only)
    if args.decoder_only:
        codec.encoder.eval()
    length = int(args.crop_seconds * SAMPLE_RATE) // codec.hop * codec.hop
    opt = torch.optim.AdamW([p for p in codec.parameters() if p.requires_grad], lr=args.lr, betas=(0.9, 0.99))
    budget = Budget(args.minutes, args.lr, warmup_steps=50)
    print(f"voice codec: {sum(p.numel() for p in codec.parameters()) / 1e6:.2f}M parameters, {len(train)} clips",
          file=sys.stderr)
    while budget.running():
        x = crops(train, args.batch, length, rng)
        with torch.set_grad_enabled(not args.decoder_only):
            z, _ = codec.encoder(x)
        y, _ = codec.decoder(z)
        loss = loss_fn(y, x, z, args.latent_l2, args.stats)
        budget.update(opt, codec, loss)
    codec.eval()
    metrics = evaluate(codec, test)
    card = {"metrics_heldout": metrics, "train_minutes": round(budget.elapsed / 60, 1), "steps": budget.step,
            "parameters": sum(p.numel() for p in codec.parameters()), "hop": codec.hop,
            "command": "python -m pipelines.voice.train_codec " + " ".join(argv if argv is not None else sys.argv[1:]),
            "loss_log": budget.log[-20:]}
    if args.init:  # the stages before this one, first to last, on the card
        before = json.loads((args.init / "house.json").read_text())
        card["before"] = before.pop("before", []) + [
            {k: before[k] for k in ("command", "train_minutes", "steps", "metrics_heldout") if k in before}]
        card["train_minutes_total"] = round(card["train_minutes"] + sum(b["train_minutes"] for b in card["before"]), 1)
    save_codec(args.out, codec, card)
    write_voice_card(args.out)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

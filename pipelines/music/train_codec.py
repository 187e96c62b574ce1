"""Train the house music codec (a tiny AutoencoderOobleck) on the generated corpus.

    python -m pipelines.music.train_codec --data data/music --minutes 50 --out models/music_codec

Loss: multi-resolution STFT (log magnitude over a floor near the median magnitude +
spectral convergence), a chroma term (per-frame pitch-class profiles, so the latents
must carry pitch), a small waveform L1 and a small KL term on the latent distribution. Training stops after
`--minutes` of wall time; the card records the held-out metrics, the time and the
command. Weights are saved as safetensors with the diffusers config beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .cards import write_card
from .codec import TINY_CODEC, build_codec, measure_geometry
from ..losses import chroma_loss, mrstft_loss
from ..training import Budget
from .corpus import load_split
from .metrics import mrstft_distance, snr_db
from .yardsticks import score_all


def evaluate(model, clips: np.ndarray, rows: list[dict]) -> dict[str, float]:
    """Reconstruction of held-out clips through the latent means: distance, SNR, and
    what the music keeps (the key and tempo estimators on the reconstruction)."""
    model.eval()
    sr = int(model.config.sampling_rate)
    stft, snr, outs = [], [], []
    with torch.inference_mode():
        for clip in clips:
            x = torch.from_numpy(clip)[None, None]
            h = model.encoder(x)
            mean, _ = h.chunk(2, dim=1)
            y = model.decoder(mean)[0, 0, : x.shape[-1]].numpy()
            stft.append(mrstft_distance(y, clip))
            snr.append(snr_db(y, clip))
            outs.append(y)
    model.train()
    metrics = {"mrstft_distance": float(np.mean(stft)), "snr_db": float(np.mean(snr)), "clips": len(rows)}
    for yardstick, figures in score_all(outs, rows, sr).items():
        suffix = "" if yardstick == "ours" else f"_{yardstick}"
        metrics |= {f"{k}{suffix}": v for k, v in figures.items()}
    return metrics


def latent_stats(model, clips: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the latent means, for normalising DiT targets."""
    with torch.inference_mode():
        zs = [model.encoder(torch.from_numpy(c)[None, None]).chunk(2, dim=1)[0][0] for c in clips]
    z = torch.cat(zs, dim=-1)
    return z.mean(dim=-1).tolist(), z.std(dim=-1).clamp(min=1e-3).tolist()


def reconstruction_loss(y: torch.Tensor, x: torch.Tensor, args: argparse.Namespace, sr: int) -> torch.Tensor:
    y = y[..., : x.shape[-1]]
    # the chroma window stays 256 ms whatever the rate (4096 bins at 16 kHz)
    chroma = chroma_loss(y, x, sr, n_fft=4096 * sr // 16_000)
    return mrstft_loss(y, x, floor=args.floor) + args.chroma * chroma + 0.1 * (y - x).abs().mean()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/music"))
    ap.add_argument("--out", type=Path, default=Path("models/music/vae"))
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop-seconds", type=float, default=0.64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl", type=float, default=1e-4)
    ap.add_argument("--floor", type=float, default=0.05,
                    help="magnitude floor inside the STFT loss's log (1e-5 weighs the noise floor like the partials)")
    ap.add_argument("--chroma", type=float, default=1.0, help="weight of the chroma (pitch-class) loss")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-clips", type=int, default=72)
    ap.add_argument("--init", type=Path, default=None, help="continue from a VAE folder (e.g. models/music/vae)")
    ap.add_argument("--decoder-only", action="store_true",
                    help="freeze the encoder (needs --init): the latent space, and so a DiT trained on it, stays valid")
    args = ap.parse_args(argv)
    if args.decoder_only and args.init is None:
        ap.error("--decoder-only needs --init (a trained encoder to keep)")

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.init is not None:
        from diffusers import AutoencoderOobleck

        model = AutoencoderOobleck.from_pretrained(str(args.init), local_files_only=True, low_cpu_mem_usage=False)
        model.train()
    else:
        model = build_codec(TINY_CODEC, seed=args.seed).train()
    sr = int(model.config.sampling_rate)
    train = load_split(args.data, "train", sr)[0]
    test, test_rows = load_split(args.data, "test", sr)
    test, test_rows = test[: args.eval_clips], test_rows[: args.eval_clips]
    previous = json.loads((args.init / "house.json").read_text()) if args.init is not None else None
    if args.decoder_only:
        model.encoder.requires_grad_(False).eval()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.8, 0.99))
    crop = int(args.crop_seconds * sr)
    budget = Budget(args.minutes, args.lr)
    print(f"codec: {n_params / 1e6:.2f}M parameters, {len(train)} train clips, budget {args.minutes:g} min",
          file=sys.stderr)
    while budget.running():
        idx = rng.integers(0, len(train), args.batch)
        offs = rng.integers(0, train.shape[1] - crop, args.batch)
        x = torch.from_numpy(np.stack([train[i, o : o + crop] for i, o in zip(idx, offs)]))[:, None]
        if args.decoder_only:
            with torch.no_grad():
                posterior = model.encode(x).latent_dist
                z = posterior.sample()  # still sampled: the DiT's latents are never exact means
            y = model.decoder(z)
            loss = reconstruction_loss(y, x, args, sr)
        else:
            posterior = model.encode(x).latent_dist
            y = model.decoder(posterior.sample())
            loss = reconstruction_loss(y, x, args, sr) + args.kl * posterior.kl().mean()
        budget.update(opt, model, loss)
    minutes = budget.elapsed / 60.0
    model.eval()
    metrics = evaluate(model, test, test_rows)
    if args.decoder_only:  # same encoder, same statistics: a DiT normalised with them stays valid
        mean, std = previous["latent_mean"], previous["latent_std"]
    else:
        mean, std = latent_stats(model, train[rng.integers(0, len(train), 64)])
    geometry = measure_geometry(model)
    command = "python -m pipelines.music.train_codec " + " ".join(argv if argv is not None else sys.argv[1:])
    stage = {"command": command, "minutes": round(minutes, 1), "steps": budget.step, "metrics_heldout": metrics}
    stages = (previous or {}).get("stages") or ([{k: previous[k] for k in ("command", "metrics_heldout")}
                                                 | {"minutes": previous["train_minutes"], "steps": previous["steps"]}]
                                                if previous else [])
    stages = stages + [stage]
    save(model, args.out, {
        "metrics_heldout": metrics,
        "train_minutes": round(sum(s["minutes"] for s in stages), 1),
        "steps": sum(s["steps"] for s in stages),
        "parameters": n_params,
        "latent_mean": mean,
        "latent_std": std,
        "hop": geometry.hop,
        "halo_frames": geometry.halo,
        "command": " && ".join(s["command"] for s in stages),
        "stages": stages,
        "notes": (previous or {}).get("notes", []),
        "loss_log": budget.log[-20:],
    })
    write_card(args.out, "House music VAE (AutoencoderOobleck)",
               f"A tiny AutoencoderOobleck: {sr // 1000} kHz mono, hop {geometry.hop} ({sr // geometry.hop} latent frames/s), "
               "16 latent channels, trained with multi-resolution STFT (log magnitudes over a floor) + chroma + L1 + KL losses.")
    print(json.dumps(metrics))
    return 0


def save(model, out: Path, card: dict) -> None:
    """diffusers layout (config.json + safetensors), so real checkpoints load the same way."""
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "house.json").write_text(json.dumps(card, indent=2))


if __name__ == "__main__":
    sys.exit(main())

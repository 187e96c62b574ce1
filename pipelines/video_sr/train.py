"""Train the video SR house models on the generated corpus, in three timed stages.

    python -m pipelines.video_sr.train --data data/video_sr --out models/video_sr --minutes 60

1. autoencoder: Encoder + CausalDecoder reconstruct HR clips (L1 + L1 of gradients);
2. upsampler: LatentUpsampler maps LR clips onto the encoder's latents of the HR
   clip (latent L2 + decoded L1 through the frozen decoder);
3. refiner: SRDenoiser, flow matching from the upsampler's estimate toward the HR
   latents: x_s = (1 - s) z_hr + s noise with s <= SIGMA_MAX, one Euler step to 0.
Budgets split the minutes 35/35/30. Weights are safetensors; house.json records the
held-out PSNR against bicubic and the training time.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file
from safetensors.torch import save_file

from ..training import Budget
from .models import CausalDecoder, Encoder, LatentUpsampler, SRConfig, SRDenoiser

SIGMA_MAX = 0.5  # the refiner starts at most this far from the upsampler's estimate
SPLIT = (0.35, 0.35, 0.30)


def load_clips(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, T, H, W) HR and LR clips in [0, 1] (float32)."""
    hr, lr = [], []
    for line in (root / "metadata.jsonl").read_text().splitlines():
        meta = json.loads(line)
        if meta["split"] == split:
            clip = load_file(str(root / meta["file"]))
            hr.append(clip["hr"])
            lr.append(clip["lr"])
    if not hr:
        raise FileNotFoundError(f"no {split} clips under {root} (make video-sr-data)")
    to = lambda a: torch.from_numpy(np.stack(a)).permute(0, 4, 1, 2, 3).float() / 255.0  # noqa: E731
    return to(hr), to(lr)


def batch(hr: torch.Tensor, lr: torch.Tensor, size: int, frames: int, rng: np.random.Generator):
    idx = rng.integers(0, len(hr), size)
    t0 = rng.integers(0, hr.shape[2] - frames + 1, size)
    pick = lambda x: torch.stack([x[i, :, t : t + frames] for i, t in zip(idx, t0)])  # noqa: E731
    return pick(hr), pick(lr)


def grad_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dx = lambda x: x[..., 1:] - x[..., :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return (dx(a) - dx(b)).abs().mean() + (dy(a) - dy(b)).abs().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * np.log10(1.0 / max(mse, 1e-10))


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    b, c, t, h, w = lr.shape
    up = F.interpolate(lr.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=scale, mode="bicubic",
                       align_corners=False)
    return up.reshape(b, t, c, h * scale, w * scale).transpose(1, 2).clamp(0, 1)


def super_resolve(up: LatentUpsampler, refiner: SRDenoiser, dec: CausalDecoder, lr: torch.Tensor,
                  sigma: float, seed: int = 0) -> torch.Tensor:
    """Whole-clip reference path: upsample, one refiner step from `sigma`, decode."""
    with torch.no_grad():
        z_up, _ = up(lr)
        b, c, t, h, w = z_up.shape
        flat = z_up.transpose(1, 2).reshape(b * t, c, h, w)
        noise = torch.randn(flat.shape, generator=torch.Generator().manual_seed(seed))
        x = (1 - sigma) * flat + sigma * noise
        v = refiner(x, torch.full((b * t,), sigma), {"z_up": flat})
        z = (x - sigma * v).reshape(b, t, c, h, w).transpose(1, 2)
        return dec(z)[0].clamp(0, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/video_sr"))
    ap.add_argument("--out", type=Path, default=Path("models/video_sr"))
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--sigma", type=float, default=0.25, help="refiner start sigma used for the held-out figures")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    hr, lr = load_clips(args.data, "train")
    test_hr, test_lr = load_clips(args.data, "test")
    scale = hr.shape[-1] // lr.shape[-1]
    cfg = SRConfig()
    enc, dec, up, refiner = Encoder(cfg), CausalDecoder(cfg), LatentUpsampler(scale, cfg), SRDenoiser(cfg)
    minutes = {}

    # 1. autoencoder
    opt = torch.optim.AdamW([*enc.parameters(), *dec.parameters()], lr=args.lr)
    budget = Budget(args.minutes * SPLIT[0], args.lr, warmup_steps=50)
    while budget.running():
        x, _ = batch(hr, lr, args.batch, args.frames, rng)
        y, _ = dec(enc(x))
        budget.update(opt, dec, (y - x).abs().mean() + grad_l1(y, x))
    minutes["autoencoder"] = budget.elapsed / 60
    enc.requires_grad_(False).eval()
    dec.requires_grad_(False).eval()

    # 2. upsampler onto the encoder's latents
    opt = torch.optim.AdamW(up.parameters(), lr=args.lr)
    budget = Budget(args.minutes * SPLIT[1], args.lr, warmup_steps=50)
    while budget.running():
        x, low = batch(hr, lr, args.batch, args.frames, rng)
        with torch.no_grad():
            target = enc(x)
        z, _ = up(low)
        y, _ = dec(z)
        budget.update(opt, up, F.mse_loss(z, target) + (y - x).abs().mean())
    minutes["upsampler"] = budget.elapsed / 60
    up.requires_grad_(False).eval()

    # 3. one-step refiner: flow matching from the upsampler's estimate
    opt = torch.optim.AdamW(refiner.parameters(), lr=args.lr)
    budget = Budget(args.minutes * SPLIT[2], args.lr, warmup_steps=50)
    while budget.running():
        x, low = batch(hr, lr, args.batch, args.frames, rng)
        with torch.no_grad():
            target = enc(x).transpose(1, 2).flatten(0, 1)
            z_up = up(low)[0].transpose(1, 2).flatten(0, 1)
        s = torch.rand(len(target)) * SIGMA_MAX
        noise = torch.randn_like(target)
        xs = (1 - s.view(-1, 1, 1, 1)) * z_up + s.view(-1, 1, 1, 1) * noise  # start where inference starts
        v_target = (xs - target) / s.clamp(min=1e-3).view(-1, 1, 1, 1)  # one Euler step lands on the target
        budget.update(opt, refiner, F.mse_loss(refiner(xs, s, {"z_up": z_up}) * s.view(-1, 1, 1, 1),
                                               v_target * s.view(-1, 1, 1, 1)))
    minutes["refiner"] = budget.elapsed / 60
    refiner.eval()

    with torch.no_grad():
        sr = super_resolve(up, refiner, dec, test_lr, args.sigma)
        base = bicubic(test_lr, scale)
        upsampler_only = dec(up(test_lr)[0])[0].clamp(0, 1)
    metrics = {"psnr_sr": psnr(sr, test_hr), "psnr_bicubic": psnr(base, test_hr),
               "psnr_upsampler_only": psnr(upsampler_only, test_hr)}
    metrics["psnr_gain_db"] = metrics["psnr_sr"] - metrics["psnr_bicubic"]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, module in (("encoder", enc), ("decoder", dec), ("upsampler", up), ("refiner", refiner)):
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(args.out / f"{name}.safetensors"))
    card = {"scale": scale, "config": asdict(cfg), "sigma": args.sigma,
            "train_minutes": {k: round(v, 1) for k, v in minutes.items()}, "metrics_heldout": metrics,
            "command": "python -m pipelines.video_sr.train " + " ".join(argv if argv is not None else sys.argv[1:])}
    (args.out / "house.json").write_text(json.dumps(card, indent=2))
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())

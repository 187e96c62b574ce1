"""Video quality measures (torch, pure): PSNR, SSIM, bicubic baseline, temporal warping error.

Clips are (B, 3, T, H, W) floats in [0, 1]. The warping error follows the usual
definition (the output's frame t against its frame t-1 carried along the motion),
with the motion measured on the ground truth by block matching, and only where
that motion explains the ground truth itself (occlusions and new content are
left out). A flicker ratio below 1 means steadier than bicubic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .motion import block_flow, warp


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss(a.clamp(0, 1), b).item()
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    b, c, t, h, w = lr.shape
    up = F.interpolate(lr.transpose(1, 2).reshape(b * t, c, h, w), scale_factor=scale, mode="bicubic",
                       align_corners=False)
    return up.reshape(b, t, c, h * scale, w * scale).transpose(1, 2).clamp(0, 1)


def bicubic_u8(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, 3, h, w) uint8 -> (N, 3, h*scale, w*scale) uint8, channels-last: torch's 8-bit bicubic
    (2 ms against 40 in floats for 1080p out on 2 cores). It clamps between its two passes, so
    at hard edges it can differ from `bicubic` by more than rounding; on natural frames by a
    level or two."""
    return F.interpolate(frames.contiguous(memory_format=torch.channels_last), scale_factor=scale, mode="bicubic",
                         align_corners=False)


def _frames(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (B*T, 3, H, W)."""
    return x.transpose(1, 2).flatten(0, 1)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM on luma, 11x11 Gaussian window (sigma 1.5), as Wang et al."""
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    x = (_frames(a.clamp(0, 1)) * luma).sum(1, keepdim=True)
    y = (_frames(b) * luma).sum(1, keepdim=True)
    g = torch.exp(-0.5 * ((torch.arange(11) - 5.0) / 1.5) ** 2)
    g = (g / g.sum()).to(x.dtype)
    win = (g[:, None] * g[None, :]).view(1, 1, 11, 11)
    blur = lambda z: F.conv2d(z, win)  # noqa: E731  (valid region only)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def warping_error(out: torch.Tensor, truth: torch.Tensor, block: int = 8, radius: int = 4,
                  tolerance: float = 0.02) -> float:
    """Mean |out_t - warp(out_{t-1})| over the pixels whose motion explains the truth
    (|truth_t - warp(truth_{t-1})| < tolerance)."""
    total, count = 0.0, 0
    for t in range(1, truth.shape[2]):
        prev, cur = truth[:, :, t - 1], truth[:, :, t]
        flow = block_flow(prev, cur, block, radius)
        valid = ((warp(prev, flow) - cur).abs().amax(1, keepdim=True) < tolerance).to(out.dtype)
        diff = (warp(out[:, :, t - 1], flow) - out[:, :, t]).abs().mean(1, keepdim=True)
        total += float((diff * valid).sum())
        count += int(valid.sum())
    return total / max(count, 1)

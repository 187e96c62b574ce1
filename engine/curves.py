"""Per-frame curves: resampling a control curve onto a latent's frame axis."""

from __future__ import annotations

from typing import Sequence

import torch


def resample_curve(points: Sequence[float], frames: int) -> torch.Tensor:
    """Linearly stretch `points` over `frames` frames (first point at frame 0,
    last at the last frame). One point gives a constant curve."""
    values = torch.tensor(points, dtype=torch.float32)
    if values.numel() == 1 or frames == 1:
        return values[:1].expand(frames).clone() if frames > 1 else values[:1].clone()
    pos = torch.linspace(0.0, values.numel() - 1, frames, dtype=torch.float64)
    lo = pos.floor().long().clamp(max=values.numel() - 2)
    frac = (pos - lo).float()
    return values[lo] + frac * (values[lo + 1] - values[lo])


def frame_view(curve: torch.Tensor, latent_ndim: int, frame_dim: int) -> torch.Tensor:
    """Shape a (F,) curve to broadcast over a batch (B, *latent) along `frame_dim`."""
    shape = [1] * (latent_ndim + 1)
    shape[frame_dim + 1] = curve.numel()
    return curve.view(shape)

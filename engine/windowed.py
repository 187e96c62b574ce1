"""Windowed decode: decode only the samples that will be heard.

A convolutional decoder's output sample depends on a bounded span of latent frames
(its receptive field). Measure that span once by probing, store it with the model,
and decode samples [a, b) from latent frames [a/hop - halo, b/hop + halo) only: the
result equals the full decode inside the window, and the cost does not grow with
the clip's length.

Latents here are channels-first, (B, C, T), as audio decoders take them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import InputError

Decode = Callable[[torch.Tensor], torch.Tensor]  # (B, C, T) -> (B, channels, T * hop)


@dataclass(frozen=True)
class DecoderGeometry:
    """How a decoder maps latent frames to samples."""

    hop: int  # samples per latent frame
    halo: int  # latent frames of context needed on each side of a window

    def __post_init__(self) -> None:
        if self.hop < 1 or self.halo < 0:
            raise InputError("geometry", f"needs hop >= 1 and halo >= 0, got {self.hop}, {self.halo}")


@dataclass(frozen=True)
class WindowPlan:
    """Which latent frames to decode for samples [start, stop), and where to crop."""

    start: int
    stop: int
    frame_lo: int
    frame_hi: int
    crop: int  # offset of `start` in the decoded span

    @property
    def frames(self) -> int:
        return self.frame_hi - self.frame_lo


def plan_window(start: int, stop: int, total_frames: int, geometry: DecoderGeometry) -> WindowPlan:
    """Latent span and crop for samples [start, stop) of a clip of `total_frames`."""
    total = total_frames * geometry.hop
    if not 0 <= start < stop <= total:
        raise InputError("window", f"samples [{start}, {stop}) must lie inside [0, {total})")
    lo = max(0, start // geometry.hop - geometry.halo)
    hi = min(total_frames, -(-stop // geometry.hop) + geometry.halo)
    return WindowPlan(start, stop, lo, hi, start - lo * geometry.hop)


def decode_window(decode: Decode, latents: torch.Tensor, start: int, stop: int, geometry: DecoderGeometry) -> torch.Tensor:
    """Samples [start, stop) of decode(latents), decoding only the frames they need."""
    plan = plan_window(start, stop, latents.shape[-1], geometry)
    out = decode(latents[..., plan.frame_lo : plan.frame_hi])
    expected = plan.frames * geometry.hop
    if out.shape[-1] != expected:
        raise RuntimeError(f"decoder gave {out.shape[-1]} samples for {plan.frames} frames, expected {expected}")
    return out[..., plan.crop : plan.crop + (stop - start)]


def decode_loop_window(decode: Decode, latents: torch.Tensor, start: int, stop: int,
                       geometry: DecoderGeometry) -> torch.Tensor:
    """Samples [start, stop) of a loop that repeats `latents` forever.

    The halo wraps around the loop's ends, so the seam decodes as if the loop were
    tiled: window i of the loop equals the same window of decode(tile(latents)).
    `start` may be any position inside one period; `stop - start` at most one period.
    """
    frames = latents.shape[-1]
    period = frames * geometry.hop
    if not (0 <= start < period and start < stop <= start + period):
        raise InputError("window", f"loop samples [{start}, {stop}) must start inside [0, {period}) and span at most one period")
    lo = start // geometry.hop - geometry.halo
    hi = -(-stop // geometry.hop) + geometry.halo
    index = torch.arange(lo, hi) % frames
    out = decode(latents.index_select(-1, index))
    crop = start - lo * geometry.hop
    return out[..., crop : crop + (stop - start)]


def measure_halo(decode: Decode, channels: int, hop: int, *, probe_frames: int = 96, probes: int = 3,
                 seed: int = 0) -> int:
    """Receptive field of a decoder, in latent frames each side, by probing.

    Perturbs single latent frames in the middle of a random latent and finds how far
    the change spreads in the output. One frame is added as a margin, so rounding
    near the edge of the field cannot cut into the window.
    """
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(1, channels, probe_frames, generator=g)
    with torch.inference_mode():
        ref = decode(base)
    reach = 0
    for i in range(probes):
        frame = probe_frames // 2 + i - probes // 2
        bumped = base.clone()
        bumped[..., frame] += torch.randn(channels, generator=g)
        with torch.inference_mode():
            diff = (decode(bumped) - ref).abs().amax(dim=(0, 1))
        changed = torch.nonzero(diff > diff.max() * 1e-7).flatten()
        left = frame * hop - int(changed[0])
        right = int(changed[-1]) - ((frame + 1) * hop - 1)
        reach = max(reach, left, right)
    halo = math.ceil(reach / hop) + 1
    if 2 * halo + probes >= probe_frames:
        raise RuntimeError(f"receptive field ({halo} frames) reaches the probe's edges; probe with more frames")
    return halo

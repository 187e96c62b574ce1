"""The video SR house models: all causal in time, all streaming with cached state.

    LR frames --LatentUpsampler--> z_up (latent grid = HR / 4)
    z_up --SRDenoiser (one step in the ring, from sigma = strength)--> z
    z --CausalDecoder--> HR frames
    HR frames --Encoder--> z (training targets only)

Latent grid: HR / 4 with `latent_channels` channels. For 4x SR the latent grid equals
the LR grid, for 2x it is half of it (the upsampler's stem strides by 2). Temporal
look-ahead is zero everywhere: every temporal kernel is causal (causal.py); the streaming
parts report it, and their receptive field, as a `geometry` read off their layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cached_conv import CachedSequence, StreamGeometry, chain
from .causal import CausalBlock, CausalConv3d

LATENT_FACTOR = 4  # HR pixels per latent cell, each side


@dataclass(frozen=True)
class SRConfig:
    """The defaults are the shipped cascade's: the widest that runs at 10 frames/s at 1080p out
    on two CPU cores (the README's stage table); cards record every field."""

    width: int = 8
    blocks: int = 1
    time_kernel: int = 2  # frames each stem sees: this one and time_kernel - 1 before
    # frames each residual block's convs see: 1 halves their work (and skips stacking frames),
    # the stems still see time_kernel frames
    block_time_kernel: int = 1
    latent_channels: int = 8  # a latent cell covers 4x4 HR pixels
    # 3: the decoder adds detail to each of R, G and B; 1: to luma only, the same value on
    # all three (an equal change of R, G and B changes Y alone, leaving Cb and Cr as the
    # upscale made them): a third of the head's work and output
    detail_channels: int = 1


class Encoder(nn.Module):
    """HR frames (B, 3, T, H, W) in [0, 1] -> latents (B, C, T, H/4, W/4); per frame (no temporal state)."""

    def __init__(self, cfg: SRConfig = SRConfig()):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(w, cfg.latent_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        z = self.net(x.transpose(1, 2).reshape(b * t, c, h, w))
        return z.reshape(b, t, *z.shape[1:]).transpose(1, 2)


class CausalDecoder(nn.Module):
    """Latents (B, C, T, h, w) -> HR detail (B, detail_channels, T, 4h, 4w), causal in time."""

    def __init__(self, cfg: SRConfig = SRConfig()):
        super().__init__()
        w = cfg.width
        self.stem = CausalConv3d(cfg.latent_channels, w, 3, cfg.time_kernel)
        self.blocks = CachedSequence(CausalBlock(w, cfg.block_time_kernel) for _ in range(cfg.blocks))
        if cfg.detail_channels not in (1, 3):
            raise ValueError(f"detail_channels must be 1 (luma) or 3 (RGB), got {cfg.detail_channels}")
        self.channels = cfg.detail_channels
        self.head = nn.Conv2d(w, cfg.detail_channels * LATENT_FACTOR**2, 3, padding=1)  # per frame: nothing in time
        # an untrained cascade outputs bicubic exactly: training starts from the baseline, not below it
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, z: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        h, s0 = self.stem(z, state[0] if state is not None else None)
        h, sb = self.blocks(F.silu(h), state[1] if state is not None else None)
        b, c, t, hh, ww = h.shape
        y = F.pixel_shuffle(self.head(F.silu(h).transpose(1, 2).reshape(b * t, c, hh, ww)), LATENT_FACTOR)
        return y.reshape(b, t, self.channels, hh * LATENT_FACTOR, ww * LATENT_FACTOR).transpose(1, 2), [s0, sb]

    @property
    def geometry(self) -> StreamGeometry:
        """In latent frames."""
        return chain([self.stem.geometry, self.blocks.geometry])


class LatentUpsampler(nn.Module):
    """LR frames (B, 3, T, h, w) in [0, 1] -> latent estimate on the HR / 4 grid, causal in time."""

    def __init__(self, scale: int, cfg: SRConfig = SRConfig()):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {scale}")
        w = cfg.width
        self.scale = scale
        self.stem = CausalConv3d(3, w, 3, cfg.time_kernel, stride=4 // scale)
        self.blocks = CachedSequence(CausalBlock(w, cfg.block_time_kernel) for _ in range(cfg.blocks))
        self.head = CausalConv3d(w, cfg.latent_channels, 3, 1)

    def forward(self, lr: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        h, s0 = self.stem(lr, state[0] if state is not None else None)
        h, sb = self.blocks(F.silu(h), state[1] if state is not None else None)
        z, s2 = self.head(F.silu(h), state[2] if state is not None else None)
        return z, [s0, sb, s2]

    @property
    def geometry(self) -> StreamGeometry:
        """In LR frames."""
        return chain([self.stem.geometry, self.blocks.geometry, self.head.geometry])


def cascade_geometry(upsampler: LatentUpsampler, decoder: CausalDecoder) -> StreamGeometry:
    """LR frames in, HR frames out, in LR frames (the refiner between them reads one frame only)."""
    return upsampler.geometry.then(decoder.geometry)


def lookahead_frames(cfg: SRConfig = SRConfig()) -> int:
    """LR frames after a frame that its HR frame waits for, read off the layers (either scale's)."""
    with torch.device("meta"):  # the layers' geometry only: no weights are made
        return max(cascade_geometry(LatentUpsampler(s, cfg), CausalDecoder(cfg)).lookahead for s in (2, 4))


class SRDenoiser(nn.Module):
    """One-step flow-matching refiner on the latent grid: (x_sigma, sigma, z_up) -> velocity.

    Per frame (the ring holds frames as slots), conditioned on the upsampler's estimate.
    """

    def __init__(self, cfg: SRConfig = SRConfig()):
        super().__init__()
        w = cfg.width
        c = cfg.latent_channels
        self.inp = nn.Conv2d(2 * c + 1, w, 3, padding=1)
        self.body = nn.Sequential(*(nn.Sequential(nn.SiLU(), nn.Conv2d(w, w, 3, padding=1)) for _ in range(2 * cfg.blocks)))
        self.out = nn.Conv2d(w, c, 3, padding=1)
        # zero velocity at first: one step from a small sigma returns the upsampler's estimate
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (B, C, h, w), sigma (B,), cond["z_up"] (B, C, h, w) -> velocity (B, C, h, w)."""
        s = sigma.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:]).to(x.dtype)
        h = self.inp(torch.cat([x, cond["z_up"], s], dim=1).contiguous(memory_format=torch.channels_last))
        return self.out(F.silu(h + self.body(h)))

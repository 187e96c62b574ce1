"""The voice conversion models, on the codec's normalised latents (C channels, 100 frames/s).

- SpeakerEncoder: a few seconds of latents -> a unit-length speaker embedding (mean and
  standard deviation pooled over time), so any reference clip names a target.
- Converter: the flow-matching denoiser the ring runs. Its input is one window of
  latents: `context` frames before the chunk (kept at the source by the per-frame
  source-blend curve) and the chunk itself; it predicts the velocity of the whole
  window at the row's sigma, conditioned on the target speaker (FiLM). Convolutions
  are centred inside the window and never reach past its end, so the window is the
  look-ahead: nothing beyond the chunk being converted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class VoiceConfig:
    latent: int = 16  # codec latent channels
    width: int = 128
    speaker: int = 64  # embedding size
    blocks: int = 4  # dilations 1, 2, 4, 8...


class SpeakerEncoder(nn.Module):
    def __init__(self, cfg: VoiceConfig = VoiceConfig()):
        super().__init__()
        w = cfg.width
        self.net = nn.Sequential(nn.Conv1d(cfg.latent, w, 3, padding=1), nn.SiLU(),
                                 nn.Conv1d(w, w, 3, padding=2, dilation=2), nn.SiLU(),
                                 nn.Conv1d(w, w, 3, padding=4, dilation=4), nn.SiLU())
        self.out = nn.Linear(2 * w, cfg.speaker)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, T) latents -> (B, speaker) unit vectors."""
        h = self.net(z)
        return F.normalize(self.out(torch.cat([h.mean(-1), h.std(-1)], dim=-1)), dim=-1)


def sigma_features(sigma: torch.Tensor, n: int = 16) -> torch.Tensor:
    """(B,) sigmas -> (B, 2n) sinusoidal features."""
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), n, dtype=sigma.dtype))
    angle = sigma[:, None] * freqs[None]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class _Block(nn.Module):
    def __init__(self, width: int, cond: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.film = nn.Linear(cond, 2 * width)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(c)[..., None].chunk(2, dim=1)
        return h + self.mix(F.silu(self.conv(F.silu(h)) * (1 + scale) + shift))


class Converter(nn.Module):
    def __init__(self, cfg: VoiceConfig = VoiceConfig()):
        super().__init__()
        self.cfg = cfg
        cond = cfg.speaker + 32
        self.inp = nn.Conv1d(cfg.latent, cfg.width, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(cfg.width, cond, 2**i) for i in range(cfg.blocks))
        self.out = nn.Conv1d(cfg.width, cfg.latent, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (B, C, W) window at sigma (B,), cond["speaker"] (B, speaker) -> velocity (B, C, W)."""
        c = torch.cat([cond["speaker"], sigma_features(sigma.to(x.dtype))], dim=-1)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, c)
        return self.out(F.silu(h))

"""The house voice codec: a small causal convolutional autoencoder at 16 kHz, 100 latent frames/s.

Every convolution is causal (it sees the current sample and the past only) and keeps
its own left context as streaming state, as cached_conv does: a stream encoded or
decoded block by block equals the whole signal done at once, and the look-ahead is 0.
Upsampling is "repeat, then a causal convolution", so decoding streams the same way.
A block must be a whole number of latent frames (HOP samples).

    audio (B, 1, N) --encode--> latents (B, LATENT, N / HOP) --decode--> audio (B, 1, N)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 16_000
STRIDES = (2, 4, 4, 5)  # hop 160: 10 ms frames
HOP = 160
LOOKAHEAD_SAMPLES = 0


@dataclass(frozen=True)
class CodecConfig:
    width: int = 16  # channels at the sample rate; doubled at every downsampling
    latent: int = 16
    strides: tuple[int, ...] = STRIDES


class CausalConv1d(nn.Module):
    """A Conv1d over the past only; `forward(x, state)` returns (y, new_state)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.stride = stride
        self.context = (kernel - 1) * dilation + 1 - stride  # past input samples each block needs
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = x.new_zeros(x.shape[0], x.shape[1], self.context)
        full = torch.cat([state, x], dim=-1)
        return self.conv(full), full[..., full.shape[-1] - self.context :]


class Residual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.a = CausalConv1d(channels, channels, 7, dilation=dilation)
        self.b = nn.Conv1d(channels, channels, 1)

    def forward(self, x, state=None):
        h, s = self.a(F.elu(x), state)
        return x + self.b(F.elu(h)), s


def _run(layers, x, states):
    """Thread x and each layer's state through a list of layers."""
    new = []
    for i, layer in enumerate(layers):
        x, s = layer(x, None if states is None else states[i])
        new.append(s)
    return x, new


class Encoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        w = cfg.width
        layers: list[nn.Module] = [CausalConv1d(1, w, 7)]
        for stride in cfg.strides:
            layers += [Residual(w, 1), Residual(w, 3), Residual(w, 9), _Act(), CausalConv1d(w, 2 * w, 2 * stride, stride)]
            w *= 2
        layers += [_Act(), CausalConv1d(w, cfg.latent, 3)]
        self.layers = nn.ModuleList(layers)

    def forward(self, audio: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        return _run(self.layers, audio, state)


class Decoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        w = cfg.width * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [CausalConv1d(cfg.latent, w, 7)]
        for stride in reversed(cfg.strides):
            layers += [_Act(), _Repeat(stride), CausalConv1d(w, w // 2, 2 * stride)]
            w //= 2
            layers += [Residual(w, 1), Residual(w, 3), Residual(w, 9)]
        layers += [_Act(), CausalConv1d(w, 1, 7)]
        self.layers = nn.ModuleList(layers)

    def forward(self, latents: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        y, s = _run(self.layers, latents, state)
        return torch.tanh(y), s


class _Act(nn.Module):
    """ELU, stateless (a layer of the list so the state threading stays uniform)."""

    def forward(self, x, state=None):
        return F.elu(x), None


class _Repeat(nn.Module):
    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x, state=None):
        return x.repeat_interleave(self.factor, dim=-1), None


class VoiceCodec(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @property
    def hop(self) -> int:
        hop = 1
        for s in self.cfg.strides:
            hop *= s
        return hop

    def roundtrip(self, audio: np.ndarray) -> np.ndarray:
        """Mono samples (whole hops of them) encoded and decoded in one call, without autograd."""
        n = audio.size // self.hop * self.hop
        with torch.inference_mode():
            z, _ = self.encoder(torch.from_numpy(np.ascontiguousarray(audio[:n], np.float32))[None, None])
            y, _ = self.decoder(z)
        return y.reshape(-1).numpy()

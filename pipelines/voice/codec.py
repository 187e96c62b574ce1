"""The house voice codec: a small causal convolutional autoencoder at 16 kHz, 100 latent frames/s.

Every convolution is causal (it sees the current sample and the past only) and keeps
its own left context as streaming state (cached_conv.py): a stream encoded or decoded
block by block equals the whole signal done at once. Upsampling is "repeat, then a causal
convolution", so decoding streams the same way. A block must be a whole number of latent
frames (HOP samples). The hop and the look-ahead (0) are read off the layers' geometry.

    audio (B, 1, N) --encode--> latents (B, LATENT, N / HOP) --decode--> audio (B, 1, N)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cached_conv import CachedConv, CachedSequence, Pointwise, Repeat, StreamGeometry

SAMPLE_RATE = 16_000
STRIDES = (2, 4, 4, 5)  # hop 160: 10 ms frames
HOP = 160


@dataclass(frozen=True)
class CodecConfig:
    width: int = 16  # channels at the sample rate; doubled at every downsampling
    latent: int = 16
    strides: tuple[int, ...] = STRIDES


class CausalConv1d(CachedConv):
    """A Conv1d over the past only, streaming with its cache."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__(nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation))


class Residual(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.a = CausalConv1d(channels, channels, 7, dilation=dilation)
        self.b = nn.Conv1d(channels, channels, 1)

    @property
    def geometry(self) -> StreamGeometry:
        return self.a.geometry  # the skip path and the 1x1 read the current sample only

    def forward(self, x, state=None):
        h, s = self.a(F.elu(x), state)
        return x + self.b(F.elu(h)), s


class Encoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        w = cfg.width
        layers: list[nn.Module] = [CausalConv1d(1, w, 7)]
        for stride in cfg.strides:
            layers += [Residual(w, 1), Residual(w, 3), Residual(w, 9),
                       Pointwise(F.elu), CausalConv1d(w, 2 * w, 2 * stride, stride)]
            w *= 2
        layers += [Pointwise(F.elu), CausalConv1d(w, cfg.latent, 3)]
        self.layers = CachedSequence(layers)

    @property
    def geometry(self) -> StreamGeometry:
        """In samples."""
        return self.layers.geometry

    def forward(self, audio: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        return self.layers(audio, state)


class Decoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        w = cfg.width * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [CausalConv1d(cfg.latent, w, 7)]
        for stride in reversed(cfg.strides):
            layers += [Pointwise(F.elu), Repeat(stride), CausalConv1d(w, w // 2, 2 * stride)]
            w //= 2
            layers += [Residual(w, 1), Residual(w, 3), Residual(w, 9)]
        layers += [Pointwise(F.elu), CausalConv1d(w, 1, 7)]
        self.layers = CachedSequence(layers)

    @property
    def geometry(self) -> StreamGeometry:
        """In latent frames."""
        return self.layers.geometry

    def forward(self, latents: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        y, s = self.layers(latents, state)
        return torch.tanh(y), s


class VoiceCodec(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @property
    def geometry(self) -> StreamGeometry:
        """Samples in, samples out: encode, then decode."""
        return self.encoder.geometry.then(self.decoder.geometry)

    @property
    def hop(self) -> int:
        """Samples per latent frame."""
        return int(self.encoder.geometry.ratio)

    @property
    def lookahead(self) -> int:
        """Samples after a sample that its decoded value waits for."""
        return self.geometry.lookahead

    def roundtrip(self, audio: np.ndarray) -> np.ndarray:
        """Mono samples (whole hops of them) encoded and decoded in one call, without autograd."""
        n = audio.size // self.hop * self.hop
        with torch.inference_mode():
            z, _ = self.encoder(torch.from_numpy(np.ascontiguousarray(audio[:n], np.float32))[None, None])
            y, _ = self.decoder(z)
        return y.reshape(-1).numpy()


def lookahead_samples(cfg: CodecConfig = CodecConfig()) -> int:
    """The look-ahead of a codec of this config, read off its layers."""
    with torch.device("meta"):  # the layers' geometry only: no weights are made
        return VoiceCodec(cfg).lookahead


LOOKAHEAD_SAMPLES = lookahead_samples()

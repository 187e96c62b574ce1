"""The house voice codec: causal, at 16 kHz, 100 latent frames/s, and every network at the frame rate.

    audio (B, 1, N) --encode--> latents (B, LATENT, N / HOP) --decode--> audio (B, 1, N)

The encoder cuts the signal into 10 ms frames and reads the last `window` of them (30 ms)
through a fixed filterbank, a Hann-windowed DFT: log-magnitudes of its
bins (where the speaker's formants and pitch show) beside a few raw channels (the
phase), then causal convolutions over frames. The decoder mirrors it, Vocos-like: causal
convolutions over frames predict a log-magnitude and a phase per bin, and an inverse DFT
initialised to a Hann-windowed one, two frames long, overlap-adds them: a convolution of
kernel two over frames, so output frame t is the first half of frame t's synthesis plus
the second half of frame t-1's. Nothing reads ahead: the look-ahead is 0 and a stream
encoded or decoded block by block (whole frames) equals the whole signal done at once.

All the networks run at 100 frames/s, none at the sample rate: a step of training or a
chunk of streaming costs a fraction of what sample-rate convolutions do.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cached_conv import TIME, CachedConv, CachedSequence, Pointwise, StreamGeometry

SAMPLE_RATE = 16_000
HOP = 160  # 10 ms frames


@dataclass(frozen=True)
class CodecConfig:
    width: int = 256  # channels of the frame-rate networks
    latent: int = 16
    window: int = 3  # the encoder's analysis window, in frames
    raw: int = 64  # filterbank channels passed on raw (phase), beside the log-magnitudes
    encoder_blocks: int = 4
    decoder_blocks: int = 6


class CausalConv1d(CachedConv):
    """A Conv1d over the past only, streaming with its cache."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__(nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation))


class Residual(nn.Module):
    def __init__(self, channels: int, dilation: int, kernel: int = 3):
        super().__init__()
        self.a = CausalConv1d(channels, channels, kernel, dilation=dilation)
        self.b = nn.Conv1d(channels, channels, 1)

    @property
    def geometry(self) -> StreamGeometry:
        return self.a.geometry  # the skip path and the 1x1 read the current step only

    def forward(self, x, state=None):
        h, s = self.a(F.elu(x), state)
        return x + self.b(F.elu(h)), s


class Frames(nn.Module):
    """(B, 1, N) samples -> (B, hop, N / hop): each frame's samples as channels. Stateless."""

    def __init__(self, hop: int):
        super().__init__()
        self.hop = hop
        self.geometry = StreamGeometry(ratio=Fraction(hop))

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        return x.reshape(x.shape[0], -1, self.hop).transpose(1, TIME), None


class Unframes(nn.Module):
    """(B, hop, T) -> (B, 1, T * hop): the inverse of Frames. Stateless."""

    def __init__(self, hop: int):
        super().__init__()
        self.hop = hop
        self.geometry = StreamGeometry(ratio=Fraction(1, hop))

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        return x.transpose(1, TIME).reshape(x.shape[0], 1, -1), None


def _bins(frames: int) -> int:
    return frames * HOP // 2 + 1


def _log_spectrum(bins: int):
    """(B, 2 bins + raw, T) real and imaginary parts, then raw channels -> (B, bins + raw, T)."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        re, im, raw = x[:, :bins], x[:, bins : 2 * bins], x[:, 2 * bins :]
        # the floor, about 60 dB under a full-scale bin, keeps silence from making gradients of 1/power
        return torch.cat([0.2 * torch.log(re * re + im * im + 1e-2), F.elu(raw)], dim=1)

    return fn


def _polar(bins: int, max_log: float = 4.0):
    """(B, 2 bins, T) log-magnitudes and phases -> (B, 2 bins, T) real and imaginary parts."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        mag = torch.exp(x[:, :bins].clamp(max=max_log))
        phase = x[:, bins:]
        return torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)

    return fn


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic: halves overlap-add to 1


def _init_analysis(conv: nn.Conv1d, frames: int) -> None:
    """Rows 0..2 bins-1 of a (out, HOP, frames) convolution become a Hann-windowed DFT of the frames."""
    n, bins = frames * HOP, _bins(frames)
    t = np.arange(n)
    angle = 2 * np.pi * np.outer(np.arange(bins), t) / n
    basis = np.concatenate([np.cos(angle), -np.sin(angle)]) * _hann(n)  # (2 bins, n), time in order
    w = basis.reshape(2 * bins, frames, HOP).transpose(0, 2, 1)  # [c, j, k] = basis[c, k * HOP + j]
    with torch.no_grad():
        conv.weight[: 2 * bins] = torch.from_numpy(w).float()


def _init_synthesis(conv: nn.Conv1d) -> None:
    """A (HOP, 2 bins, 2) convolution becomes a windowed inverse DFT of two frames, overlap-added."""
    n, bins = 2 * HOP, _bins(2)
    t = np.arange(n)
    angle = 2 * np.pi * np.outer(np.arange(bins), t) / n
    scale = np.full(bins, 2.0 / n)
    scale[[0, -1]] = 1.0 / n
    basis = np.concatenate([np.cos(angle), -np.sin(angle)]) * scale[np.r_[np.arange(bins), np.arange(bins)], None]
    basis = basis * _hann(n)  # (2 bins, n)
    w = np.stack([basis[:, HOP:].T, basis[:, :HOP].T], axis=-1)  # kernel 0 reads the frame before
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w).float())
        conv.bias.zero_()


class Encoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        bins, w = _bins(cfg.window), cfg.width
        front = CausalConv1d(HOP, 2 * bins + cfg.raw, cfg.window)
        _init_analysis(front.conv, cfg.window)
        self._analysis = (front,)  # a tuple, so it is not registered twice
        self.trainable(True)
        layers: list[nn.Module] = [Frames(HOP), front, Pointwise(_log_spectrum(bins)),
                                   CausalConv1d(bins + cfg.raw, w, 1)]
        layers += [Residual(w, 2 ** (i % 3)) for i in range(cfg.encoder_blocks)]
        layers += [Pointwise(F.elu), CausalConv1d(w, cfg.latent, 1)]
        self.layers = CachedSequence(layers)

    def trainable(self, on: bool) -> None:
        """Gradients on or off for the layers that learn; the analysis (the DFT and a random
        projection of the raw frames) stays fixed either way."""
        self.requires_grad_(on)
        self._analysis[0].requires_grad_(False)

    @property
    def geometry(self) -> StreamGeometry:
        """In samples."""
        return self.layers.geometry

    def forward(self, audio: torch.Tensor, state: list | None = None) -> tuple[torch.Tensor, list]:
        return self.layers(audio, state)


class Decoder(nn.Module):
    def __init__(self, cfg: CodecConfig = CodecConfig()):
        super().__init__()
        bins, w = _bins(2), cfg.width
        synthesis = CausalConv1d(2 * bins, HOP, 2)
        _init_synthesis(synthesis.conv)
        layers: list[nn.Module] = [CausalConv1d(cfg.latent, w, 3)]
        layers += [Residual(w, 2 ** (i % 4)) for i in range(cfg.decoder_blocks)]
        layers += [Pointwise(F.elu), CausalConv1d(w, 2 * bins, 1), Pointwise(_polar(bins)), synthesis,
                   Unframes(HOP)]
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

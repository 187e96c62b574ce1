"""A target speaker from a reference clip: checked, encoded, embedded.

A reference must hold a few seconds of voice: too short, silent or only noise is a
ReferenceError naming what is wrong, never an embedding of nothing. Voice is told
from noise by periodicity: voiced speech has a clear pitch period (a normalised
autocorrelation peak between 60 and 400 Hz), noise does not.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MediaFileError
from .checkpoint import VoiceModels
from .codec import SAMPLE_RATE
from .models import SpeakerEncoder

MIN_SECONDS = 1.5
MIN_VOICED_SECONDS = 0.5
FRAME = 640  # 40 ms analysis frames


class ReferenceError(MediaFileError):
    """A reference clip that cannot name a speaker."""


def voiced_frames(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A boolean per 40 ms frame: loud enough and periodic at a speech pitch."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    if frames.size == 0:
        return np.zeros(0, bool)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).sum(axis=1)
    loud = energy > max(1e-6 * FRAME, 1e-3 * energy.max())
    lags = np.arange(sample_rate // 400, sample_rate // 60)
    spec = np.fft.rfft(frames, 2 * FRAME, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, lags]
    periodic = ac.max(axis=1) / (energy + 1e-12) > 0.5
    return loud & periodic


def check_reference(audio: np.ndarray, name: str = "reference") -> None:
    seconds = audio.size / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        raise ReferenceError(f"{name}: {seconds:.2f} s is too short (a target needs at least {MIN_SECONDS:g} s of voice)")
    if not np.isfinite(audio).all():
        raise ReferenceError(f"{name}: contains NaN or inf samples")
    voiced = voiced_frames(audio).sum() * FRAME / SAMPLE_RATE
    if voiced < MIN_VOICED_SECONDS:
        raise ReferenceError(f"{name}: only {voiced:.2f} s of voiced speech (silence or noise?); "
                             f"a target needs at least {MIN_VOICED_SECONDS:g} s")


def speaker_embedding(models: VoiceModels, encoder: SpeakerEncoder, audio: np.ndarray,
                      name: str = "reference") -> torch.Tensor:
    """The unit speaker embedding of a checked reference clip (16 kHz mono float32)."""
    check_reference(audio, name)
    codec = models.codec
    n = audio.size // codec.hop * codec.hop
    with torch.inference_mode():
        z = codec.encoder(torch.from_numpy(np.ascontiguousarray(audio[:n], np.float32))[None, None])[0][0]
        return encoder(models.normalize(z)[None])[0].clone()

"""A target speaker from a reference clip: checked, encoded, embedded.

A reference must hold a few seconds of speech: too short, silent, noise or music is a
ReferenceError naming what is wrong and how much speech was found, never an embedding of
something else. Speech is what Silero's voice-activity detector hears as speech (vad.py):
periodicity alone took music for a voice.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MediaFileError
from .checkpoint import VoiceModels
from .codec import SAMPLE_RATE
from .models import SpeakerEncoder
from .vad import speech_seconds

MIN_SECONDS = 1.5
MIN_SPEECH_SECONDS = 0.5


class ReferenceError(MediaFileError):
    """A reference clip that cannot name a speaker."""


def check_reference(audio: np.ndarray, name: str = "reference") -> None:
    seconds = audio.size / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        raise ReferenceError(f"{name}: {seconds:.2f} s is too short (a target needs at least {MIN_SECONDS:g} s of voice)")
    if not np.isfinite(audio).all():
        raise ReferenceError(f"{name}: contains NaN or inf samples")
    speech = speech_seconds(audio)
    if speech < MIN_SPEECH_SECONDS:
        raise ReferenceError(f"{name}: only {speech:.2f} s of speech found in {seconds:.1f} s (music, noise or "
                             f"silence?); a target needs at least {MIN_SPEECH_SECONDS:g} s")


def speaker_embedding(models: VoiceModels, encoder: SpeakerEncoder, audio: np.ndarray,
                      name: str = "reference") -> torch.Tensor:
    """The unit speaker embedding of a checked reference clip (16 kHz mono float32)."""
    check_reference(audio, name)
    codec = models.codec
    n = audio.size // codec.hop * codec.hop
    with torch.inference_mode():
        z = codec.encoder(torch.from_numpy(np.ascontiguousarray(audio[:n], np.float32))[None, None])[0][0]
        return encoder(models.normalize(z)[None])[0].clone()

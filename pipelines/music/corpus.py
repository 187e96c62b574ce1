"""Reading the generated music corpus back: audio arrays and their metadata."""

from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import numpy as np

from .data import read_wav


def load_split(root: Path, split: str, sample_rate: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """All clips of one split as a (clips, samples) float32 array, and their rows.

    With `sample_rate`, clips rendered at another rate are resampled to it (polyphase,
    so a model at 8 kHz reads the 16 kHz corpus without a second render)."""
    meta = root / "metadata.jsonl"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} is missing: generate the corpus with `python -m pipelines.music.data`")
    rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split]
    if not rows:
        raise ValueError(f"{meta}: no clips in split {split!r}")
    clips = [read_wav(root / r["path"]) for r in rows]
    if sample_rate is not None:
        clips = [resample(c, wav_rate(root / r["path"]), sample_rate) for c, r in zip(clips, rows)]
    return np.stack(clips).astype(np.float32), rows


def wav_rate(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return w.getframerate()


def resample(audio: np.ndarray, rate: int, to: int) -> np.ndarray:
    """Polyphase resampling along the last axis (identity when the rates agree)."""
    if rate == to:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(rate, to)
    return resample_poly(audio, to // g, rate // g, axis=-1).astype(np.float32)

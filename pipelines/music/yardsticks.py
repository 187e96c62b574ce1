"""How well audio follows its caption's tempo and key, on two yardsticks.

`ours` is analysis.py (spectral-flux tempo, long-window chroma); `librosa` is
librosa_analysis.py. A figure that moves on one and not the other has not moved.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .analysis import estimate_key, estimate_tempo
from .librosa_analysis import librosa_key, librosa_tempo

Estimators = tuple[Callable[[np.ndarray, int], float], Callable[[np.ndarray, int], tuple[str, str]]]
YARDSTICKS: dict[str, Estimators] = {"ours": (estimate_tempo, estimate_key), "librosa": (librosa_tempo, librosa_key)}


def score(audios: Sequence[np.ndarray], rows: Sequence[dict], sr: int, yardstick: str = "ours") -> dict[str, float]:
    """Tempo MAE (BPM), share of tempi within 4% and key accuracy against each row's
    `tempo`, `key` and `scale`."""
    tempo_of, key_of = YARDSTICKS[yardstick]
    errors, keys, close = [], [], []
    for audio, row in zip(audios, rows, strict=True):
        tempo = tempo_of(audio, sr)
        errors.append(abs(tempo - row["tempo"]))
        close.append(abs(tempo - row["tempo"]) <= 0.04 * row["tempo"])
        keys.append(key_of(audio, sr) == (row["key"], row["scale"]))
    return {"tempo_mae_bpm": float(np.mean(errors)), "tempo_within_4pct": float(np.mean(close)),
            "key_accuracy": float(np.mean(keys))}


def score_all(audios: Sequence[np.ndarray], rows: Sequence[dict], sr: int) -> dict[str, dict[str, float]]:
    return {name: score(audios, rows, sr, name) for name in YARDSTICKS}

"""Tempo and key estimation from audio (numpy, pure), for measuring generated music.

Tempo: spectral-flux onset envelope at 100 frames/s, autocorrelation over the lags of
60-180 BPM, each lag also credited with its double (the bar-level pulse) to damp
octave errors. Key: a chroma profile from a long-window STFT correlated with the
Krumhansl-Kessler major and minor profiles in all twelve keys.
"""

from __future__ import annotations

import numpy as np

KEYS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def _frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    return np.lib.stride_tricks.sliding_window_view(x, n)[::hop]


def onset_envelope(audio: np.ndarray, sr: int, rate: int = 100) -> np.ndarray:
    hop = sr // rate
    mag = np.abs(np.fft.rfft(_frames(audio, 1024, hop) * np.hanning(1024), axis=-1))
    flux = np.maximum(0.0, np.diff(np.log1p(100.0 * mag), axis=0)).sum(axis=1)
    return flux - flux.mean()


def estimate_tempo(audio: np.ndarray, sr: int, lo: float = 60.0, hi: float = 180.0) -> float:
    rate = 100
    env = onset_envelope(audio, sr, rate)
    ac = np.correlate(env, env, mode="full")[env.size - 1 :]
    ac = ac / (ac[0] + 1e-9)
    best, best_score = lo, -np.inf
    for bpm in np.arange(lo, hi + 0.25, 0.25):
        lag = 60.0 * rate / bpm
        score = _interp(ac, lag) + 0.5 * _interp(ac, 2 * lag)
        if score > best_score:
            best, best_score = bpm, score
    return float(best)


def _interp(a: np.ndarray, x: float) -> float:
    i = int(x)
    if i + 1 >= a.size:
        return 0.0
    return float(a[i] + (x - i) * (a[i + 1] - a[i]))


def chroma(audio: np.ndarray, sr: int) -> np.ndarray:
    n = 8192
    mag = np.abs(np.fft.rfft(_frames(audio, n, n // 4) * np.hanning(n), axis=-1)).mean(axis=0)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    keep = (freqs > 60.0) & (freqs < 2000.0)
    pitch = np.round(12 * np.log2(freqs[keep] / 440.0) + 69).astype(int) % 12
    out = np.zeros(12)
    np.add.at(out, pitch, mag[keep] ** 2)
    return out / (out.sum() + 1e-12)


def estimate_key(audio: np.ndarray, sr: int) -> tuple[str, str]:
    return key_of_chroma(chroma(audio, sr))


def key_of_chroma(c: np.ndarray) -> tuple[str, str]:
    """The major or minor key whose Krumhansl-Kessler profile best correlates with a
    12-bin pitch-class profile (index 0 = C)."""
    best, best_r = ("C", "major"), -np.inf
    for tonic in range(12):
        for name, profile in (("major", MAJOR), ("minor", MINOR)):
            r = float(np.corrcoef(c, np.roll(profile, tonic))[0, 1])
            if r > best_r:
                best, best_r = (KEYS[tonic], name), r
    return best

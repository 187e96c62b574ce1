"""Audio quality metrics: multi-resolution STFT distance and SNR (numpy, pure)."""

from __future__ import annotations

import numpy as np

FFT_SIZES = (256, 512, 1024, 2048)


def _stft_mag(x: np.ndarray, n: int) -> np.ndarray:
    hop = n // 4
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n), axis=-1))


def mrstft_distance(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over FFT sizes of spectral convergence + mean |log magnitude difference|."""
    n = min(pred.size, target.size)
    pred, target = pred[:n], target[:n]
    total = 0.0
    for size in FFT_SIZES:
        p, t = _stft_mag(pred, size), _stft_mag(target, size)
        sc = np.linalg.norm(t - p) / (np.linalg.norm(t) + 1e-7)
        mag = np.mean(np.abs(np.log(p + 1e-5) - np.log(t + 1e-5)))
        total += sc + mag
    return float(total / len(FFT_SIZES))


def snr_db(pred: np.ndarray, target: np.ndarray) -> float:
    n = min(pred.size, target.size)
    noise = target[:n] - pred[:n]
    return float(10.0 * np.log10((np.sum(target[:n] ** 2) + 1e-12) / (np.sum(noise**2) + 1e-12)))

"""Voice measures (numpy, pure): mel cepstra, DTW, mel-cepstral distortion, a speaker classifier.

MCD follows the usual definition: (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2) over
cepstral coefficients 1..D (c0, the loudness, left out), averaged over the frames of
a DTW alignment, since a conversion and the target's own rendering do not share
timing. The speaker classifier is a softmax regression on an utterance's mean and
standard deviation of mel cepstra, trained on the voices of the corpus.
"""

from __future__ import annotations

import numpy as np

from ..mel import mel_filters

SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS, N_CEPS = 400, 160, 40, 24  # 25 ms windows, 10 ms hop


_FILTERS = mel_filters(SAMPLE_RATE, N_FFT, N_MELS)
_DCT = np.cos(np.pi / N_MELS * (np.arange(N_MELS) + 0.5)[None, :] * np.arange(N_CEPS + 1)[:, None])


def mel_cepstrum(audio: np.ndarray, quiet_db: float | None = 40.0) -> np.ndarray:
    """(frames, N_CEPS) mel cepstra c1..c24 (natural-log amplitude), one per 10 ms hop; frames more
    than `quiet_db` under the loudest are left out (None keeps every frame, for alignment)."""
    audio = np.asarray(audio, np.float64)
    if audio.size < N_FFT:
        audio = np.pad(audio, (0, N_FFT - audio.size))
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::HOP] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    if quiet_db is not None:
        energy = power.sum(axis=1)
        power = power[energy > energy.max() * 10.0 ** (-quiet_db / 10.0)]
    log_amplitude = 0.5 * np.log(power @ _FILTERS.T + 1e-10)
    # the cepstrum's own scale (the inverse cosine transform of the log amplitude, 2/N), the
    # one MCD figures in the literature are quoted in
    return (log_amplitude @ _DCT.T)[:, 1:] * (2.0 / N_MELS)


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the minimum-cost monotonic alignment of frame sequences a and b (Euclidean).

    The accumulated cost is filled one anti-diagonal at a time: each cell needs only the two
    diagonals before it, so a whole diagonal is one vectorised step."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = np.argmin((acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]))
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    path.reverse()
    ia, ib = np.array(path).T
    return ia, ib


def mcd_db(converted: np.ndarray, target: np.ndarray) -> float:
    """Mel-cepstral distortion in dB between two utterances of the same sentence, after DTW."""
    a, b = mel_cepstrum(converted), mel_cepstrum(target)
    ia, ib = dtw_path(a, b)
    diff = a[ia] - b[ib]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * (diff**2).sum(axis=1))))


def utterance_features(audio: np.ndarray) -> np.ndarray:
    c = mel_cepstrum(audio)
    return np.concatenate([c.mean(axis=0), c.std(axis=0)])


class SpeakerClassifier:
    """Softmax regression on utterance features, standardised; fit by full-batch gradient descent."""

    def __init__(self, features: np.ndarray, labels: list[str], steps: int = 2000, lr: float = 0.5,
                 l2: float = 1e-3):
        self.names = sorted(set(labels))
        y = np.array([self.names.index(s) for s in labels])
        self.mean, self.std = features.mean(axis=0), features.std(axis=0) + 1e-8
        x = np.c_[(features - self.mean) / self.std, np.ones(len(features))]
        self.w = np.zeros((x.shape[1], len(self.names)))
        onehot = np.eye(len(self.names))[y]
        for _ in range(steps):
            logits = x @ self.w
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            self.w -= lr * (x.T @ (p - onehot) / len(x) + l2 * self.w)

    def predict(self, features: np.ndarray) -> list[str]:
        x = np.c_[(np.atleast_2d(features) - self.mean) / self.std, np.ones(len(np.atleast_2d(features)))]
        return [self.names[i] for i in (x @ self.w).argmax(axis=1)]

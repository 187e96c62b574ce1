"""Tempo and key by librosa: a second, well-kept yardstick beside analysis.py's.

Tempo: librosa's onset strength and its tempo estimator (autocorrelation with a
log-normal prior around 120 BPM), on 10 ms frames. Key: librosa's constant-Q chroma
(C2 to C7, the range the corpus's pitch lives in) averaged over the clip, then the
same Krumhansl-Kessler profile match as analysis.py, so the two yardsticks differ
in their features, not in the key rule.
"""

from __future__ import annotations

import numpy as np

from .analysis import key_of_chroma


def librosa_tempo(audio: np.ndarray, sr: int) -> float:
    import librosa

    hop = max(1, sr // 100)
    env = librosa.onset.onset_strength(y=audio.astype(np.float32), sr=sr, hop_length=hop)
    return float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)[0])


def librosa_key(audio: np.ndarray, sr: int) -> tuple[str, str]:
    import librosa

    c = librosa.feature.chroma_cqt(y=audio.astype(np.float32), sr=sr, fmin=librosa.note_to_hz("C2"), n_octaves=5,
                                   hop_length=512)
    return key_of_chroma(c.mean(axis=1))

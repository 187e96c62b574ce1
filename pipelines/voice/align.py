"""Frame-to-frame alignment of the corpus's parallel sentences (every speaker says every sentence).

Each rendering of a sentence is aligned once by DTW to one pivot rendering of it, on mel
cepstra with the utterance's mean taken off (which removes much of the voice and keeps
the words). That gives each rendering a monotonic clock in the pivot's frames; any two
renderings of the sentence then map frame to frame through the pivot, so N speakers
cost N alignments per sentence, not N^2.
"""

from __future__ import annotations

import numpy as np

from .metrics import dtw_path, mel_cepstrum


def alignment_features(audio: np.ndarray) -> np.ndarray:
    """(frames, D) features for aligning two speakers' renderings: mean-normalised mel cepstra, every frame."""
    c = mel_cepstrum(audio, quiet_db=None)
    return c - c.mean(axis=0)


def pivot_clock(features: np.ndarray, pivot: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) increasing positions in the pivot's frames of a rendering's first `frames` frames."""
    ia, ib = dtw_path(features, pivot)
    sums = np.bincount(ia, weights=ib, minlength=len(features))
    clock = sums / np.maximum(np.bincount(ia, minlength=len(features)), 1)
    if frames > len(clock):  # a frame or two past the last analysis window: carry on at the last position
        clock = np.pad(clock, (0, frames - len(clock)), mode="edge")
    # strictly increasing, so that the inverse map through np.interp is well defined
    return clock[:frames] + np.arange(frames) * 1e-6


def map_frames(source_clock: np.ndarray, target_clock: np.ndarray) -> np.ndarray:
    """For each source frame, the index of the target frame at the same place in the sentence."""
    position = np.interp(source_clock, target_clock, np.arange(len(target_clock), dtype=np.float64))
    return np.clip(np.rint(position).astype(np.int64), 0, len(target_clock) - 1)

"""Aligning parallel sentences through a pivot: a slower rendering of the same words maps onto the faster one."""

import dataclasses

import numpy as np

from pipelines.voice.align import alignment_features, map_frames, pivot_clock
from pipelines.voice.codec import HOP
from pipelines.voice.data import human_speakers, render, sentences, speakers


def test_a_stretched_rendering_maps_through_another_voice_as_pivot():
    text = sentences(3)[1]
    fast = human_speakers(1)[0]  # flite's kal at its own rate
    slow = dataclasses.replace(fast, rate=1.5)  # the same voice, every segment half as long again
    a, b, pivot = render(fast, text), render(slow, text), render(speakers(3)[0], text)  # the pivot: espeak-ng
    p = alignment_features(pivot)
    clock_a = pivot_clock(alignment_features(a), p, a.size // HOP)
    clock_b = pivot_clock(alignment_features(b), p, b.size // HOP)
    assert (np.diff(clock_a) > 0).all() and (np.diff(clock_b) > 0).all()
    mapped = map_frames(clock_a, clock_b)
    assert mapped.shape == (a.size // HOP,) and mapped.min() >= 0 and mapped.max() < b.size // HOP
    frames = np.arange(mapped.size)
    slope = np.polyfit(frames, mapped, 1)[0]
    assert abs(slope - b.size / a.size) < 0.1
    assert np.median(np.abs(mapped - frames * b.size / a.size)) < 4  # frames of 10 ms

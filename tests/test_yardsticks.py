"""Both tempo/key yardsticks on audio whose tempo and key are known by construction."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from pipelines.music.corpus import load_split
from pipelines.music.yardsticks import YARDSTICKS, score

SR = 8_000


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    partials = sum(np.sin(2 * np.pi * k * freq * t) / k for k in (1, 2, 3))
    return partials * np.exp(-2.0 * t)


def song(tonic_midi: int, minor: bool, bpm: float, seconds: float = 12.0) -> np.ndarray:
    """i-iv-v-i (or I-IV-V-I) chords, one per bar, under a click on every beat."""
    third = 3 if minor else 4
    degrees = [(0, third, 7), (5, 5 + third, 12), (7, 7 + third, 14), (0, third, 7)]
    beat = 60.0 / bpm
    out = np.zeros(int(seconds * SR))
    for bar in range(int(seconds / (4 * beat)) + 1):
        start = int(bar * 4 * beat * SR)
        for d in degrees[bar % 4]:
            note = tone(440.0 * 2 ** ((tonic_midi + d - 69) / 12), 4 * beat)[: len(out) - start]
            out[start : start + len(note)] += 0.2 * note
    click = np.random.default_rng(0).standard_normal(int(0.02 * SR)) * np.exp(-np.linspace(0, 8, int(0.02 * SR)))
    for k in range(int(seconds / beat)):
        start = int(k * beat * SR)
        piece = click[: len(out) - start]
        out[start : start + len(piece)] += (0.8 if k % 4 == 0 else 0.5) * piece
    return (out / np.abs(out).max()).astype(np.float32)


CASES = [  # (tonic midi note, minor, bpm, key, scale)
    (57, True, 96.0, "A", "minor"),
    (55, False, 120.0, "G", "major"),
    (52, True, 84.0, "E", "minor"),
]


@pytest.mark.parametrize("yardstick", sorted(YARDSTICKS))
def test_each_yardstick_finds_a_known_tempo_and_key(yardstick):
    audios = [song(tonic, minor, bpm) for tonic, minor, bpm, _, _ in CASES]
    rows = [{"tempo": bpm, "key": key, "scale": scale} for _, _, bpm, key, scale in CASES]
    figures = score(audios, rows, SR, yardstick)
    assert figures["key_accuracy"] == 1.0
    assert figures["tempo_within_4pct"] == 1.0 and figures["tempo_mae_bpm"] < 4.0


def test_a_yardstick_tells_a_wrong_key_and_tempo():
    audio = song(57, True, 96.0)
    for yardstick in YARDSTICKS:
        figures = score([audio], [{"tempo": 140, "key": "C#", "scale": "major"}], SR, yardstick)
        assert figures["key_accuracy"] == 0.0 and figures["tempo_within_4pct"] == 0.0


def test_the_corpus_reads_at_the_model_rate(tmp_path):
    """A 16 kHz corpus read for an 8 kHz model: half the samples, the same pitch."""
    (tmp_path / "test").mkdir()
    t = np.arange(16_000) / 16_000
    pcm = (0.5 * np.sin(2 * np.pi * 440.0 * t) * 32767).astype("<i2")
    with wave.open(str(tmp_path / "test" / "0.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16_000)
        w.writeframes(pcm.tobytes())
    row = {"split": "test", "path": "test/0.wav", "tempo": 90, "key": "A", "scale": "minor"}
    (tmp_path / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    native, _ = load_split(tmp_path, "test")
    audio, rows = load_split(tmp_path, "test", 8_000)
    assert native.shape == (1, 16_000) and audio.shape == (1, 8_000) and rows == [row]
    spectrum = np.abs(np.fft.rfft(audio[0]))
    assert abs(np.argmax(spectrum) * 8_000 / 8_000 - 440.0) <= 1.0

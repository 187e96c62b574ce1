"""The parallel speech corpus: every speaker says every sentence, speakers differ, splits hold out."""

import dataclasses
import json

import numpy as np

from pipelines.audio_io import read_audio
import pytest

from pipelines.voice.data import SAMPLE_RATE, Speaker, Synth, human_speakers, main, render, sentences, speakers


def median_f0(audio: np.ndarray) -> float:
    """Median pitch of the loud 40 ms frames, by autocorrelation over 60-400 Hz."""
    n = 640
    frames = audio[: audio.size // n * n].reshape(-1, n)
    loud = frames[np.sqrt((frames**2).mean(1)) > 0.3 * np.sqrt((frames**2).mean(1)).max()]
    lags = np.arange(SAMPLE_RATE // 400, SAMPLE_RATE // 60)
    f0 = [SAMPLE_RATE / lags[np.argmax([np.dot(f[:-lag], f[lag:]) for lag in lags])] for f in loud]
    return float(np.median(f0))


def test_corpus_is_parallel_with_held_out_speakers_and_sentences(tmp_path):
    assert main(["--out", str(tmp_path), "--speakers", "10", "--human-variants", "0", "--sentences", "10"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 100
    by_speaker = {}
    for r in rows:
        by_speaker.setdefault(r["speaker"], set()).add(r["text"])
        audio = read_audio(tmp_path / r["path"], SAMPLE_RATE)
        assert 1.0 < audio.size / SAMPLE_RATE < 8.0 and np.abs(audio).max() > 0.05
    assert len({frozenset(t) for t in by_speaker.values()}) == 1  # the same sentences for everyone
    assert {r["speaker"] for r in rows if r["speaker_held_out"]} == {"spk04", "spk09"}
    assert {r["sentence"] for r in rows if r["sentence_held_out"]} == {4, 9}
    # regenerating gives the same speakers and sentences
    assert speakers(10) == speakers(10) and sentences(10) == sentences(10)


def test_speakers_sound_different_and_the_tract_factor_moves_formants():
    spk = speakers(8)
    assert len({(s.variant, s.pitch, s.rate) for s in spk}) == 8
    text = sentences(1)[0]
    base = dataclasses.replace(spk[0], tract=1.0)
    low, high = render(dataclasses.replace(base, tract=0.9), text), render(dataclasses.replace(base, tract=1.1), text)
    assert 1.1 < median_f0(high) / median_f0(low) < 1.35  # ~1.1 / 0.9
    assert abs(low.size / high.size - 1.1 / 0.9) < 0.05  # and durations move the other way


def test_voices_from_recordings_of_people_join_with_whole_voices_held_out(tmp_path):
    assert main(["--out", str(tmp_path), "--speakers", "2", "--human-variants", "2", "--sentences", "5"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    family = {r["speaker"]: r["family"] for r in rows}
    assert sorted(family.values()).count("human") == 14 and sorted(family.values()).count("espeak") == 2
    held = {r["speaker"] for r in rows if r["speaker_held_out"] and r["family"] == "human"}
    assert held == {"rms0", "rms1", "ked0", "ked1"}  # whole voices: no variant of them is trained on
    for r in rows:
        audio = read_audio(tmp_path / r["path"], SAMPLE_RATE)
        assert 1.0 < audio.size / SAMPLE_RATE < 8.0 and 0.05 < np.abs(audio).max() <= 1.0
    # a variant is another speaker: its own duration and pitch
    plain, variant = (s for s in human_speakers(2) if s.accent == "awb")
    text = sentences(1)[0]
    a, b = render(plain, text), render(variant, text)
    assert abs(b.size / a.size - 1) > 0.03 and abs(median_f0(b) / median_f0(a) - 1) > 0.05


def test_an_unknown_flite_voice_is_an_error_not_its_8khz_default():
    with pytest.raises(RuntimeError, match="8000 Hz for voice 'nosuch'"):
        render(Speaker("x", "nosuch", "", 1.0, 1.0, 1.0, False, Synth.FLITE), "Hello there.")

"""Voice measures: DTW aligns, MCD is 0 for the same audio and orders speakers, the classifier separates voices."""

import dataclasses

import numpy as np

from pipelines.voice.data import render, sentences, speakers
from pipelines.voice.metrics import SpeakerClassifier, dtw_path, mcd_db, utterance_features


def test_dtw_finds_the_alignment_of_a_stretched_sequence():
    a = np.sin(np.linspace(0, 6, 40))[:, None]
    b = np.sin(np.linspace(0, 6, 80))[:, None]  # the same curve, twice as slow
    ia, ib = dtw_path(a, b)
    assert ia[0] == ib[0] == 0 and ia[-1] == 39 and ib[-1] == 79
    assert np.abs(a[ia, 0] - b[ib, 0]).mean() < 0.05


def test_mcd_is_zero_for_the_same_audio_and_smaller_within_a_speaker_than_across():
    spk = speakers(6)
    text, other = sentences(2)
    a = render(spk[0], text)
    assert mcd_db(a, a) == 0.0
    slower = render(dataclasses.replace(spk[0], rate=spk[0].rate - 30), text)  # same voice, other timing
    assert mcd_db(slower, a) < mcd_db(render(spk[3], text), a)


def test_the_speaker_classifier_tells_the_corpus_voices_apart():
    spk = speakers(6)
    texts = sentences(6)
    train = [(s.name, utterance_features(render(s, t))) for s in spk for t in texts[:4]]
    clf = SpeakerClassifier(np.stack([f for _, f in train]), [n for n, _ in train])
    test = [(s.name, utterance_features(render(s, t))) for s in spk for t in texts[4:]]
    hits = [clf.predict(f)[0] == n for n, f in test]
    assert np.mean(hits) >= 0.8

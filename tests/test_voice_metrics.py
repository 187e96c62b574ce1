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


def _dtw_by_cells(a, b):
    """The textbook recursion, one cell at a time: the reference for the diagonal fill."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return acc[-1, -1]


def test_dtw_path_is_the_minimum_cost_alignment():
    rng = np.random.default_rng(3)
    for n, m in ((1, 7), (13, 5), (30, 31)):
        a, b = rng.normal(size=(n, 4)), rng.normal(size=(m, 4))
        ia, ib = dtw_path(a, b)
        assert (ia[0], ib[0], ia[-1], ib[-1]) == (0, 0, n - 1, m - 1)
        steps = np.stack([np.diff(ia), np.diff(ib)], axis=1)
        assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()  # monotonic, connected
        path_cost = np.sqrt(((a[ia] - b[ib]) ** 2).sum(-1)).sum()
        assert np.isclose(path_cost, _dtw_by_cells(a, b))

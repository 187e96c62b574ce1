"""The voice-activity detector streams: fed in pieces of any size it gives the probabilities
of the whole clip; it hears speech in speech and none in a chord, noise or silence."""

import numpy as np

from pipelines.voice.vad import WINDOW, SpeechDetector, speech_probabilities
from test_voice_stream import music_like, spoken


def test_pieces_of_any_size_give_the_whole_clips_probabilities():
    speech = spoken(2)
    whole = speech_probabilities(speech)
    detector, got = SpeechDetector(), []
    cuts = np.cumsum(np.random.default_rng(0).integers(1, 3 * WINDOW, 64))
    for piece in np.split(speech, cuts[cuts < speech.size]):
        got.append(detector.push(piece))
    assert np.array_equal(np.concatenate(got), whole) and whole.size == speech.size // WINDOW


def test_speech_is_heard_and_music_noise_and_silence_are_not():
    assert (speech_probabilities(spoken(3)) >= 0.5).mean() > 0.5
    noise = (0.2 * np.random.default_rng(1).standard_normal(48000)).astype(np.float32)
    for other in (music_like(3.0), noise, np.zeros(48000, np.float32)):
        assert (speech_probabilities(other) >= 0.5).mean() < 0.05

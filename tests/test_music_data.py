"""The music corpus generator: musical MIDI, real fluidsynth renders, a held-out split."""

import mido
import numpy as np

from pipelines.music.data import DRUM_CHANNEL, KEYS, SCALES, STYLES, ClipSpec, compose, is_held_out, random_spec
from pipelines.music.data import read_wav, render


def test_notes_stay_in_key_and_the_tempo_is_the_caption_tempo():
    for i in range(20):
        spec = random_spec(i, seed=7, seconds=6.0)
        mid = compose(spec)
        tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
        assert [round(mido.tempo2bpm(t)) for t in tempos] == [spec.tempo]
        allowed = {(KEYS.index(spec.key) + d) % 12 for d in SCALES[spec.scale]}
        pitched = [m.note % 12 for m in mid.tracks[0] if m.type == "note_on" and m.channel != DRUM_CHANNEL]
        assert pitched and set(pitched) <= allowed
        assert spec.caption == f"{spec.style}, {spec.tempo} bpm, {spec.key} {spec.scale}"
        assert 60 <= spec.tempo <= 180


def test_held_out_pairs_cover_every_style_and_key_in_training():
    pairs = [(s.name, k) for s in STYLES for k in KEYS]
    held = [p for p in pairs if is_held_out(*p)]
    train = [p for p in pairs if not is_held_out(*p)]
    assert 0.1 < len(held) / len(pairs) < 0.25
    assert {s for s, _ in train} == {s.name for s in STYLES}
    assert {k for _, k in train} == set(KEYS)


def test_fluidsynth_renders_an_exact_length_clip(tmp_path):
    spec = ClipSpec(0, 11, "lofi piano and drums", 96, "A", "minor", (0, 5, 3, 4), 2.0)
    out = tmp_path / "clip.wav"
    render(spec, out, 16_000)
    audio = read_wav(out)
    assert audio.shape == (32_000,)
    rms = float(np.sqrt(np.mean(audio**2)))
    assert 0.05 < rms < 0.2  # normalised to about -20 dBFS, not silence

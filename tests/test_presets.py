"""Presets: the whole parameter state round-trips through TOML; bad files are clear errors."""

import pytest

from controls.presets import load_preset, save_preset
from engine import InputError, StateStore
from pipelines.music.live_params import LIVE_MUSIC_PARAMS


def test_the_whole_state_round_trips(tmp_path):
    store = StateStore(LIVE_MUSIC_PARAMS)
    store.update({"guidance": 3.25, "prompt_b": 'jazz "trio"', "noise_injection": [0.1, 0.9], "solver": "sde",
                  "loop_bars": 8})
    path = save_preset(tmp_path / "a.toml", store.snapshot)
    values = load_preset(path, LIVE_MUSIC_PARAMS)
    assert values == dict(store.snapshot.values)
    other = StateStore(LIVE_MUSIC_PARAMS)
    other.update(values)
    assert dict(other.snapshot.values) == dict(store.snapshot.values)
    assert [p.name for p in tmp_path.iterdir()] == ["a.toml"]


@pytest.mark.parametrize("text,match", [
    ("params = 3", "no \\[params\\]"),
    ("[params]\nwarp = 1", "unknown parameters: warp"),
    ("[params]\nguidance = 'loud'", "guidance"),
    ("[params]\nguidance = nan", "guidance"),
    ("[params\n", "not valid TOML"),
])
def test_bad_presets_are_clear_errors(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_preset(path, LIVE_MUSIC_PARAMS)


def test_missing_preset_and_folder(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_preset(tmp_path / "none.toml", LIVE_MUSIC_PARAMS)
    with pytest.raises(InputError, match="does not exist"):
        save_preset(tmp_path / "no" / "x.toml", StateStore(LIVE_MUSIC_PARAMS).snapshot)

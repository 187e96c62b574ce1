"""Property-based fuzzing of every surface a stranger's bytes reach (tests/fuzzing.py):
each input is accepted, refused with a clear error, or dropped and counted; never a
crash or a hang. A small budget here; `-m slow` runs twenty times as many."""

import pytest
from hypothesis import HealthCheck, given, settings

from controls.session import ControlSession
from engine import StateStore
from fuzzing import FuzzRig
from pipelines.music.live_params import LIVE_MUSIC_PARAMS

SURFACES = ["osc", "websocket", "midi", "preset_toml", "midi_map_toml", "media", "model_folder_music",
            "model_folder_video_sr", "model_folder_voice"]


@pytest.fixture(scope="module")
def rig(tiny_models, tiny_video_sr, tiny_voice):
    session = ControlSession(StateStore(LIVE_MUSIC_PARAMS), {"retake": lambda: None})
    rig = FuzzRig(session, {"music": tiny_models, "video_sr": tiny_video_sr, "voice": tiny_voice})
    yield rig
    rig.close()


def fuzz(surface, examples: int, derandomize: bool) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(surface.strategy)
    def one_input(value):
        surface.check(value)

    one_input()


def by_name(rig, name):
    return {s.name: s for s in rig.surfaces()}[name]


@pytest.mark.parametrize("name", SURFACES)
def test_every_input_is_accepted_or_clearly_refused(rig, name):
    surface = by_name(rig, name)
    fuzz(surface, surface.examples, derandomize=True)  # the same inputs on every run: CI stays reproducible


@pytest.mark.slow
@pytest.mark.parametrize("name", SURFACES)
def test_every_input_is_accepted_or_clearly_refused_at_length(rig, name):
    surface = by_name(rig, name)
    fuzz(surface, 20 * surface.examples, derandomize=False)

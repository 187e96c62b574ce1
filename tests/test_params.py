import math

import pytest

from engine import CORE_PARAMS, Group, InputError, Param, ParamType, Propagation, StateStore


def test_every_parameter_declares_a_propagation_class_and_a_valid_default():
    for p in CORE_PARAMS:
        assert isinstance(p.propagation, Propagation)
        assert p.coerce(p.default) == p.default
        d = p.describe()
        assert d["name"] == p.name and d["propagation"] == p.propagation.value


def test_core_classes():
    assert set(CORE_PARAMS.names(Propagation.STEP)) >= {"guidance", "velocity_scale", "prompt_blend"}
    assert set(CORE_PARAMS.names(Propagation.FRAME)) == {"source_blend", "noise_injection"}
    assert set(CORE_PARAMS.names(Propagation.REQUEST)) >= {"strength", "steps", "seed", "solver", "depth"}


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("guidance", math.nan, "finite"),
        ("guidance", "3", "number"),
        ("guidance", 25.0, "outside"),
        ("steps", 2.5, "integer"),
        ("steps", True, "number"),
        ("solver", "heun", "one of"),
        ("source_blend", [0.0, 2.0], "outside"),
        ("source_blend", [], "1..4096"),
        ("nonexistent", 1.0, "unknown parameter"),
    ],
)
def test_bad_values_name_the_parameter(name, value, fragment):
    with pytest.raises(InputError) as err:
        CORE_PARAMS.coerce(name, value)
    assert err.value.field == name
    assert fragment in str(err.value)


def test_clamp_pulls_numbers_into_range_but_never_accepts_nan():
    assert CORE_PARAMS.coerce("guidance", 99.0, clamp=True) == 20.0
    assert CORE_PARAMS.coerce("strength", -1.0, clamp=True) == 0.01
    assert CORE_PARAMS.coerce("source_blend", [-1.0, 0.5, 3.0], clamp=True) == (0.0, 0.5, 1.0)
    with pytest.raises(InputError):
        CORE_PARAMS.coerce("guidance", math.inf, clamp=True)


def test_extension_rejects_duplicates():
    extended = CORE_PARAMS.extend(Param("gain", ParamType.FLOAT, 1.0, Propagation.OUTPUT, 0.0, 4.0, group=Group.OUTPUT))
    assert "gain" in extended and "gain" not in CORE_PARAMS
    with pytest.raises(ValueError, match="twice"):
        CORE_PARAMS.extend(Param("guidance", ParamType.FLOAT, 1.0, Propagation.STEP, 0.0, 2.0, group=Group.MOTION))


def test_every_control_has_a_group_on_the_page():
    from pipelines.music.live_params import LIVE_MUSIC_PARAMS
    from pipelines.video_sr.params import VIDEO_SR_PARAMS
    from pipelines.voice.params import VOICE_PARAMS

    for registry in (LIVE_MUSIC_PARAMS, VIDEO_SR_PARAMS, VOICE_PARAMS):
        assert {p.describe()["group"] for p in registry} <= {g.key for g in Group}
    assert CORE_PARAMS["guidance"].describe()["group"] == "motion"
    assert LIVE_MUSIC_PARAMS["bpm"].describe()["group"] == "loop"
    with pytest.raises(TypeError, match="needs a group"):
        Param("wobble", ParamType.FLOAT, 0.0, Propagation.STEP, 0.0, 1.0)


def test_store_publishes_immutable_versions_all_or_nothing():
    store = StateStore()
    first = store.snapshot
    second = store.update({"guidance": 3.0, "prompt_blend": 0.25})
    assert second.version == first.version + 1
    assert first["guidance"] == 1.0 and second["guidance"] == 3.0
    with pytest.raises(TypeError):
        second.values["guidance"] = 5.0  # snapshots are read-only
    with pytest.raises(InputError):
        store.update({"guidance": 4.0, "steps": -3})
    assert store.snapshot is second  # the good half of a bad update was not published

import math

import pytest
import torch

from engine import InputError, custom_schedule, flow_schedule, shift_sigma, unshift_sigma


@pytest.mark.parametrize("steps,shift", [(1, 1.0), (8, 3.0), (27, 2.0), (200, 3.0)])
def test_full_strength_matches_ace_step_pipeline(steps, shift):
    # diffusers' AceStepPipeline._get_timestep_schedule: linspace(1, 0, N+1), shifted,
    # terminal 0 dropped (its scheduler appends it back).
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    theirs = (shift * t / (1 + (shift - 1) * t))[:-1].tolist()
    ours = flow_schedule(steps, 1.0, shift)
    assert ours.steps == steps
    assert ours.sigmas[-1] == 0.0
    assert ours.sigmas[:-1] == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("strength", [0.05, 0.3, 0.7, 1.0])
def test_partial_strength_starts_at_strength_on_the_shifted_curve(strength):
    sched = flow_schedule(10, strength, 3.0)
    assert sched.start == strength
    assert sched.steps == 10
    assert all(a > b for a, b in zip(sched.sigmas, sched.sigmas[1:]))
    # every sigma is the shift of an unshifted time on a uniform grid
    ts = [unshift_sigma(s, 3.0) for s in sched.sigmas]
    gaps = [a - b for a, b in zip(ts, ts[1:])]
    assert max(gaps) - min(gaps) < 1e-9


def test_shift_round_trip():
    for t in [0.0, 0.1, 0.5, 0.93, 1.0]:
        for s in [0.5, 1.0, 3.0, 7.0]:
            assert unshift_sigma(shift_sigma(t, s), s) == pytest.approx(t, abs=1e-12)


def test_custom_schedule_appends_terminal_zero():
    assert custom_schedule([1.0, 0.75, 0.5]).sigmas == (1.0, 0.75, 0.5, 0.0)
    assert custom_schedule([0.9, 0.2, 0.0]).steps == 2


@pytest.mark.parametrize(
    "sigmas,fragment",
    [
        ([1.0, 0.5, 0.7, 0.0], "decrease strictly"),
        ([1.0, 0.5, 0.5, 0.0], "decrease strictly"),
        ([1.0, math.nan, 0.0], "not finite"),
        ([1.5, 0.5, 0.0], "start"),
        ([0.0], "at least 2"),
    ],
)
def test_bad_sigmas_name_the_field(sigmas, fragment):
    with pytest.raises(InputError) as err:
        custom_schedule(sigmas)
    assert err.value.field == "sigmas"
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "kwargs,field",
    [({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": 4, "strength": 0.0}, "strength"),
     ({"steps": 4, "strength": 1.2}, "strength"), ({"steps": 4, "shift": -1.0}, "shift")],
)
def test_bad_flow_schedule_arguments(kwargs, field):
    with pytest.raises(InputError) as err:
        flow_schedule(**kwargs)
    assert err.value.field == field

"""Live changes: schedules, StepState, depth and bad input, while the ring is full."""

import itertools
import threading
import time

import pytest
import torch

from conftest import SHAPE, TEXT, latent, text
from engine import InputError, Request, Ring, Solver, StateStore, TorchDenoiser, custom_schedule, flow_schedule
from engine import request_from_state, run_alone


def factory(cond=None):
    seeds = itertools.count(1)
    return lambda state: request_from_state(state, cond=cond or text(0), seed=next(seeds), source=latent(7))


def fill(ring: Ring) -> None:
    for _ in range(100):
        if ring.occupied >= ring.depth:
            return
        ring.tick()
    raise AssertionError("ring never filled")


def test_live_strength_and_steps_change_reaches_the_next_admission(denoiser):
    store = StateStore(initial={"steps": 6, "strength": 1.0, "depth": 4})
    ring = Ring(denoiser, SHAPE, store=store, factory=factory())
    fill(ring)
    in_flight = ring.in_flight()
    before = {rid: ring.row_latent(rid) for rid in in_flight}
    changed = store.update({"strength": 0.5, "steps": 3})
    change_tick = ring.trace.ticks()[-1].tick

    ring.tick()  # the ring is full: the change must not touch in-flight slots
    for rid, (row, step, sigma) in in_flight.items():
        now_row, now_step, now_sigma = ring.in_flight()[rid]
        assert now_step == step + 1  # kept its place in its own schedule
        assert not torch.equal(ring.row_latent(rid), before[rid])
        assert ring.row_latent(rid).abs().mean() > 0.1  # never zeroed

    done = []
    for _ in range(12):
        done.extend(ring.tick())
    by_id = {c.request.id: c for c in done}
    # nothing in flight was discarded, and each kept the schedule it was born with
    assert set(in_flight) <= set(by_id)
    for rid in in_flight:
        assert by_id[rid].schedule == flow_schedule(6, 1.0, 3.0)
        alone = run_alone(denoiser, by_id[rid].request, SHAPE, depth=4, state=store.snapshot)
        assert torch.equal(by_id[rid].latent, alone.latent)

    later = [a for a in ring.trace.admissions() if a.tick > change_tick]
    assert later, "no admission after the change"
    # onset = the next admission: the very first one already has the new schedule
    assert later[0].params_version >= changed.version
    assert all((a.steps, a.start_sigma) == (3, 0.5) for a in later)
    earlier = [a for a in ring.trace.admissions() if a.tick <= change_tick]
    assert all((a.steps, a.start_sigma) == (6, 1.0) for a in earlier)


def test_retarget_renoises_in_flight_slots_without_dropping_them(denoiser):
    store = StateStore(initial={"steps": 8, "depth": 4})
    ring = Ring(denoiser, SHAPE, store=store, factory=factory())
    fill(ring)
    in_flight = ring.in_flight()
    ring.factory = None
    ring.retarget(lambda r: flow_schedule(4, r.schedule.start, 3.0))
    ring.tick()
    assert ring.counters.retargeted == 4
    assert set(ring.in_flight()) == set(in_flight)
    for rid, (_, step, _) in in_flight.items():
        lat = ring.row_latent(rid)
        assert torch.isfinite(lat).all() and lat.std() > 0.1
        _, new_step, new_sigma = ring.in_flight()[rid]
        # progress fraction is kept: step k of 8 becomes about k/2 of 4, plus this tick
        assert new_step == min(round(step / 8 * 4), 3) + 1
    done = ring.run_until_idle()
    assert {c.request.id for c in done} == set(in_flight)
    assert all(c.schedule.steps == 4 for c in done)


class ProbeDenoiser:
    """v = cond["text"][..., :1] everywhere: 1 on conditional rows, 0 on null rows,
    so a guided step moves x by exactly dt * guidance * velocity_scale."""

    name = "probe"

    def denoise(self, x, sigma, cond):
        return cond["text"][:, :1, None].expand_as(x).clone()


def test_stepstate_change_is_used_by_every_slot_at_the_next_tick(denoiser, null_cond):
    store = StateStore(initial={"steps": 50, "depth": 4})
    ring = Ring(denoiser, SHAPE, store=store, factory=factory(), null_cond=null_cond)
    fill(ring)
    new = store.set("guidance", 3.0)
    ring.tick()
    last = ring.trace.ticks()[-1]
    assert last.state_version == new.version
    assert last.guided and len(last.slots) == 4


def test_stepstate_is_never_applied_mid_tick():
    store = StateStore(initial={"steps": 200, "depth": 8, "guidance": 2.0})
    cond = {"text": torch.ones(TEXT)}
    ring = Ring(ProbeDenoiser(), SHAPE, store=store, factory=factory(cond), admit_per_tick=None,
                null_cond={"text": torch.zeros(TEXT)})
    products: dict[int, float] = {store.snapshot.version: 2.0 * 1.0}
    stop = threading.Event()

    def writer():
        for k in itertools.count():
            if stop.is_set():
                return
            g, s = 1.5 + (k % 7) * 0.5, 0.5 + (k % 5) * 0.25  # both change on every publish
            snap = store.update({"guidance": g, "velocity_scale": s})
            products[snap.version] = g * s
            time.sleep(0)  # yield the GIL only; no pause between publishes

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        observations = []
        for _ in range(150):
            before = ring.rows.lat.clone()
            ring.tick()
            observations.append((ring.trace.ticks()[-1], before, ring.rows.lat.clone()))
    finally:
        stop.set()
        thread.join()
    versions = {t.state_version for t, _, _ in observations}
    assert len(versions) > 20, "the writer did not interleave with the ticks"
    for tick, before, after in observations:
        for slot in tick.slots:
            dt = slot.sigma_next - slot.sigma
            if slot.step == 0:
                continue
            rate = ((after[slot.row] - before[slot.row]) / dt).mean().item()
            assert rate == pytest.approx(products[tick.state_version], rel=1e-3), (
                f"tick {tick.tick} mixed state versions"
            )


def test_depth_changes_keep_every_in_flight_slot(denoiser, null_cond):
    store = StateStore(initial={"guidance": 2.0})
    ring = Ring(denoiser, SHAPE, depth=4, store=store, null_cond=null_cond, admit_per_tick=None)
    requests = [Request(seed=i, schedule=flow_schedule(5 + i % 4), cond=text(i),
                        solver=Solver.SDE if i % 3 == 0 else Solver.EULER) for i in range(14)]
    for r in requests:
        ring.submit(r)
    done = ring.tick() + ring.tick()
    assert ring.occupied == 4
    ring.set_depth(8)
    done += ring.tick()
    assert ring.occupied == 8
    done += ring.tick()
    occupied = ring.occupied
    ring.set_depth(2)  # shrink below occupancy: nothing is dropped, the excess drains
    done += ring.tick()
    assert ring.occupied == occupied - len([c for c in done if c.finished_tick == ring.trace.ticks()[-1].tick])
    assert ring.trace.ticks()[-1].batch >= ring.occupied
    ring.set_depth(16)
    done += ring.run_until_idle()
    ring.set_depth(1)
    assert sorted(c.request.id for c in done) == sorted(r.id for r in requests)
    assert ring.counters.admitted == len(requests)  # nobody was restarted
    assert {t.depth for t in ring.trace} == {2, 4, 8, 16}
    for c in done:
        alone = run_alone(denoiser, c.request, SHAPE, depth=4, state=store.snapshot, null_cond=null_cond)
        assert (c.latent - alone.latent).abs().max().item() <= 1e-5


def test_shrinking_compacts_slots_into_the_new_depth(denoiser):
    ring = Ring(denoiser, SHAPE, depth=8, admit_per_tick=None)
    for i in range(8):
        ring.submit(Request(seed=i, schedule=flow_schedule(2 if i < 5 else 6), cond=text(i)))
    ring.tick()
    ring.tick()  # five two-step slots finish, three six-step ones remain in rows 5..7
    assert sorted(row for row, _, _ in ring.in_flight().values()) == [5, 6, 7]
    before = {rid: ring.row_latent(rid) for rid in ring.in_flight()}
    ring.set_depth(4)
    ring.tick()
    rows = sorted(row for row, _, _ in ring.in_flight().values())
    assert rows == [0, 1, 2] and ring.trace.ticks()[-1].batch == 4
    for rid, lat in before.items():
        assert not torch.equal(ring.row_latent(rid), lat)  # moved and stepped, not reset


def test_bad_input_is_refused_and_the_ring_keeps_serving(denoiser):
    store = StateStore()
    ring = Ring(denoiser, SHAPE, depth=4, store=store, admit_per_tick=None)
    good = [Request(seed=i, schedule=flow_schedule(4), cond=text(i)) for i in range(6)]
    for r in good[:3]:
        ring.submit(r)
    done = ring.tick()

    nan_source = latent(1)
    nan_source[3, 2] = float("nan")
    inf_source = latent(2)
    inf_source[0, 0] = float("inf")
    cases = [
        (lambda: Request(seed=1, schedule=flow_schedule(4, 0.5), cond=text(1), source=nan_source), "source", "NaN"),
        (lambda: Request(seed=1, schedule=flow_schedule(4, 0.5), cond=text(1), source=inf_source), "source", "inf"),
        (lambda: custom_schedule([1.0, 0.4, 0.6, 0.0]), "sigmas", "decrease"),
        (lambda: ring.submit(Request(seed=1, schedule=flow_schedule(4, 0.5), cond=text(1), source=torch.zeros(SHAPE[0] + 1, SHAPE[1]))), "source", "shape"),
        (lambda: ring.submit(Request(seed=1, schedule=flow_schedule(4), cond={"text": torch.zeros(TEXT + 2)})), "cond", "shapes"),
        (lambda: ring.set_depth(0), "depth", "outside"),
        (lambda: ring.set_depth(17), "depth", "outside"),
        (lambda: Ring(denoiser, SHAPE, depth=0), "depth", "outside"),
    ]
    for make, field, fragment in cases:
        with pytest.raises(InputError) as err:
            make()
        assert err.value.field == field
        assert fragment in str(err.value)
        done += ring.tick()  # the ring keeps serving between the bad inputs
    assert ring.counters.rejected == 2
    assert ring.depth == 4
    for r in good[3:]:
        ring.submit(r)
    done += ring.run_until_idle()
    assert sorted(c.request.id for c in done) == sorted(r.id for r in good)
    for c in done:
        alone = run_alone(denoiser, c.request, SHAPE, depth=4)
        assert torch.equal(c.latent, alone.latent)


def test_a_bad_live_request_is_counted_and_skipped(denoiser):
    bad = latent(0)
    bad[0, 0] = float("nan")
    calls = itertools.count()

    def make(state):
        n = next(calls)
        source = bad if n == 1 else latent(n)  # the second request is broken
        return request_from_state(state, cond=text(n), seed=n, source=source)

    ring = Ring(denoiser, SHAPE, store=StateStore(initial={"steps": 3, "strength": 0.6, "depth": 2}), factory=make)
    done = []
    for _ in range(12):
        done += ring.tick()
    assert ring.counters.rejected == 1 and ring.last_error.field == "source"
    assert len(done) >= 4


def test_denoiser_returning_the_wrong_shape_fails_loudly():
    broken = TorchDenoiser(torch.nn.Identity(), lambda x, s, c: x[:, :1])
    with pytest.raises(RuntimeError, match="shape"):
        broken.denoise(torch.zeros(2, 4, 3), torch.zeros(2), {})


class FlakyDenoiser:
    """Returns NaN for rows whose conditioning says so: a model misbehaving on one slot."""

    name = "flaky"

    def __init__(self, inner):
        self.inner = inner

    def denoise(self, x, sigma, cond):
        v = self.inner.denoise(x, sigma, cond)
        poisoned = (cond["text"][:, 0] > 100.0).view(-1, 1, 1)
        return torch.where(poisoned, torch.full_like(v, float("nan")), v)


def test_a_nan_from_the_model_is_counted_and_does_not_poison_the_ring(denoiser):
    ring = Ring(FlakyDenoiser(denoiser), SHAPE, depth=4, admit_per_tick=None)
    bad_cond = {"text": torch.full((TEXT,), 1000.0)}
    good = [Request(seed=i, schedule=flow_schedule(3), cond=text(i)) for i in range(3)]
    for r in good:
        ring.submit(r)
    ring.submit(Request(seed=9, schedule=flow_schedule(3), cond=bad_cond))
    done = ring.run_until_idle()
    assert len(done) == 4 and ring.counters.nonfinite == 3
    assert all(torch.isfinite(c.latent).all() for c in done)
    for c in done:
        if c.request in good:
            assert torch.equal(c.latent, run_alone(denoiser, c.request, SHAPE, depth=4).latent)


def test_a_failing_retarget_leaves_slots_on_their_schedule(denoiser):
    ring = Ring(denoiser, SHAPE, depth=2, admit_per_tick=None)
    for i in range(2):
        ring.submit(Request(seed=i, schedule=flow_schedule(4), cond=text(i)))
    ring.tick()

    def bad(request):
        return flow_schedule(0)  # raises InputError naming steps

    ring.retarget(bad)
    ring.tick()
    assert ring.counters.rejected == 2 and ring.last_error.field == "steps"
    assert all(c.schedule.steps == 4 for c in ring.run_until_idle())


def test_a_refused_live_request_is_not_asked_again_until_something_changes(denoiser):
    """The same state with nothing finished since gives the same refusal: the factory is
    asked once, not every tick, until the state changes or a slot completes."""
    store = StateStore(initial={"depth": 2, "steps": 2})
    calls = []
    refuse = {"on": True}

    def picky(state):
        calls.append(state.version)
        if refuse["on"] and state["seed"] == 7:
            raise InputError("seed", "not this one")
        return request_from_state(state, cond=text(state["seed"]))

    ring = Ring(denoiser, SHAPE, store=store, factory=picky)
    store.set("seed", 7)
    for _ in range(20):
        ring.tick()
    assert ring.counters.rejected == 1 and len(calls) == 1  # once for this state, nothing in flight
    store.set("seed", 8)  # a new state is asked at once
    ring.tick()
    assert ring.counters.admitted == 1 and len(calls) == 2
    store.set("seed", 7)
    ring.tick()  # row 2 is refused at this state...
    refuse["on"] = False  # ...which the factory would now take, but the state is the same
    ring.tick()
    assert ring.counters.rejected == 2
    while ring.counters.completed == 0:
        ring.tick()  # a completion asks again under the same state
    ring.tick()
    assert ring.counters.admitted >= 2 and ring.counters.rejected == 2


def test_the_slot_view_shows_each_slot_in_its_own_schedule(denoiser):
    from pipelines.ring_streams import slot_view

    store = StateStore(initial={"steps": 6, "strength": 1.0, "depth": 4})
    ring = Ring(denoiser, SHAPE, store=store, factory=factory())
    fill(ring)
    store.update({"steps": 3})
    for _ in range(3):
        ring.tick()
    view = slot_view([ring])
    assert [s["row"] for s in view] == sorted(s["row"] for s in view)
    assert {s["steps"] for s in view} == {3, 6}  # slots born before the change keep their 6 steps
    for s in view:
        assert len(s["schedule"]) == s["steps"] + 1 and 0 <= s["step"] < s["steps"]
        assert s["schedule"][s["step"]] == pytest.approx(s["sigma"], abs=1e-3)
        assert s["schedule"] == sorted(s["schedule"], reverse=True)


def test_the_slot_view_reads_safely_while_the_ring_ticks(denoiser):
    """The page's state broadcast reads the slots from its own thread as slots finish and
    new ones take their rows."""
    from pipelines.ring_streams import slot_view

    store = StateStore(initial={"steps": 2, "strength": 1.0, "depth": 3})
    ring = Ring(denoiser, SHAPE, store=store, factory=factory())
    stop = threading.Event()

    def ticking():
        while not stop.is_set():
            ring.tick()

    thread = threading.Thread(target=ticking)
    thread.start()
    views, end = [], time.monotonic() + 20
    try:
        while ring.counters.completed < 30 and time.monotonic() < end:
            views.append(slot_view([ring]))
    finally:
        stop.set()
        thread.join()
    assert ring.counters.completed >= 30 and any(views)
    for view in views:
        for s in view:
            assert len(s["schedule"]) == s["steps"] + 1 and 0 <= s["step"] <= s["steps"]

"""Rings kept by latent shape: sweeping the shape keeps few rings alive, discards
nothing in flight, and the counters summed over live and retired rings stay whole."""

import itertools

import torch

from conftest import CHANNELS, TEXT, text
from engine import Ring, StateStore, request_from_state
from engine.ring_set import RingSet


def ring_set(denoiser, store):
    return RingSet(lambda shape: Ring(denoiser, shape, store=store, null_cond={"text": torch.zeros(TEXT)}))


def test_sweeping_the_shape_keeps_few_rings_alive_and_discards_nothing(denoiser):
    store = StateStore(initial={"steps": 3, "depth": 3})
    rings = ring_set(denoiser, store)
    made, done = [], []
    seeds = itertools.count(1)

    def factory(state):
        request = request_from_state(state, cond=text(0), seed=next(seeds))
        made.append(request.id)
        return request

    rings.use((4, CHANNELS)).factory = factory
    alive, before = [], rings.totals()
    for frames in [*range(4, 24), *range(24, 4, -3)]:  # a new shape every other tick
        rings.use((frames, CHANNELS))
        for _ in range(2):
            rings.tick(lambda ring, completions: done.extend(c.request.id for c in completions))
            totals = rings.totals()
            assert totals.admitted == totals.completed + rings.occupied  # nothing admitted went missing
            assert totals.completed == len(done) and totals.rejected == 0
            assert all(getattr(totals, f) >= getattr(before, f) for f in ("ticks", "admitted", "completed"))
            before = totals
            alive.append(len(rings))
    # a ring stops admitting at a change and drains within `steps` ticks: 3 ticks over changes 2 ticks apart
    assert max(alive) <= 3
    rings.current.factory = None
    rings.drain(lambda ring, completions: done.extend(c.request.id for c in completions))
    assert len(rings) == 1 and rings.occupied == 0
    assert sorted(done) == sorted(made) and rings.totals().admitted == len(made) > 40


def test_a_shape_used_again_while_its_ring_drains_gets_that_ring_back(denoiser):
    store = StateStore(initial={"steps": 4, "depth": 4})
    rings = ring_set(denoiser, store)
    factory = lambda state: request_from_state(state, cond=text(0))  # noqa: E731
    first = rings.use((6, CHANNELS))
    first.factory = factory
    for _ in range(3):
        rings.tick(lambda ring, completions: None)
    second = rings.use((8, CHANNELS))
    assert second.factory is factory and first.factory is None and first.occupied == 3
    rings.tick(lambda ring, completions: None)
    assert rings.use((6, CHANNELS)) is first and first.factory is factory and len(rings) == 2
    for _ in range(8):
        rings.tick(lambda ring, completions: None)
    assert list(rings) == [first]  # the drained ring of the other shape is retired
    assert rings.totals().admitted == rings.totals().completed + first.occupied


def test_a_tick_that_ran_no_slot_says_so(denoiser):
    """A factory that refuses leaves the rings empty: tick() is False, so a live loop
    sleeps instead of spinning on empty ticks; once a request is drawn it is True."""
    from engine import InputError

    store = StateStore(initial={"steps": 2, "depth": 1})
    rings = ring_set(denoiser, store)
    refuse = [True]

    def factory(state):
        if refuse[0]:
            raise InputError("strength", "needs a source")
        return request_from_state(state, cond=text(0), seed=1)

    rings.use((4, CHANNELS)).factory = factory
    ignore = lambda ring, completions: None  # noqa: E731
    assert [rings.tick(ignore) for _ in range(3)] == [False, False, False]
    refuse[0] = False
    store.set("seed", 2)  # a new state: the factory is asked again
    assert rings.tick(ignore) and rings.tick(ignore)  # running, then completing

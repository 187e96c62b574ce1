"""Streaming equals batch: the ring's latents equal each request run alone."""

import pytest
import torch

from conftest import SHAPE, latent, text
from engine import InputError, Request, Ring, Solver, StateStore, flow_schedule, run_alone, tune_max_batch


def mixed_requests(n: int) -> list[Request]:
    """Different seeds, strengths, step counts, solvers and sources."""
    out = []
    for i in range(n):
        strength = (1.0, 0.55, 0.8)[i % 3]
        out.append(
            Request(
                seed=1000 + 7 * i,
                schedule=flow_schedule(2 + (i * 3) % 7, strength, 3.0),
                cond=text(i),
                source=latent(50 + i) if strength < 1.0 else None,
                solver=Solver.SDE if i % 2 else Solver.EULER,
            )
        )
    return out


STATE = {"guidance": 2.5, "velocity_scale": 0.9, "source_blend": [0.8, 0.2, 0.0], "noise_injection": 0.7}


@pytest.mark.parametrize("depth", [1, 4, 8])
def test_ring_is_bit_identical_to_each_request_alone(denoiser, null_cond, depth):
    requests = mixed_requests(10)
    store = StateStore(initial=STATE)
    ring = Ring(denoiser, SHAPE, depth=depth, store=store, null_cond=null_cond, admit_per_tick=None)
    for r in requests:
        ring.submit(r)
    done = {c.request.id: c for c in ring.run_until_idle()}
    assert sorted(done) == sorted(r.id for r in requests)
    # the ring really ran requests side by side
    assert max(len(t.slots) for t in ring.trace) == min(depth, len(requests))
    for r in requests:
        alone = run_alone(denoiser, r, SHAPE, depth=depth, state=store.snapshot, null_cond=null_cond)
        assert torch.equal(done[r.id].latent, alone.latent), f"request {r.id} differs at depth {depth}"


def test_across_batch_shapes_parity_holds_within_tolerance(denoiser, null_cond):
    # CPU kernels round differently at different batch sizes: parity across shapes
    # is stated as <= 1e-5 absolute, not bitwise.
    requests = mixed_requests(6)
    store = StateStore(initial=STATE)
    ring = Ring(denoiser, SHAPE, depth=8, store=store, null_cond=null_cond)
    for r in requests:
        ring.submit(r)
    done = {c.request.id: c for c in ring.run_until_idle()}
    for r in requests:
        alone = run_alone(denoiser, r, SHAPE, depth=1, state=store.snapshot, null_cond=null_cond)
        assert (done[r.id].latent - alone.latent).abs().max().item() <= 1e-5


def test_same_seed_same_latent_other_seed_differs(denoiser):
    sched = flow_schedule(4, 1.0, 3.0)
    a = run_alone(denoiser, Request(seed=5, schedule=sched, cond=text(0)), SHAPE, depth=2)
    b = run_alone(denoiser, Request(seed=5, schedule=sched, cond=text(0)), SHAPE, depth=2)
    c = run_alone(denoiser, Request(seed=6, schedule=sched, cond=text(0)), SHAPE, depth=2)
    assert torch.equal(a.latent, b.latent)
    assert not torch.allclose(a.latent, c.latent)


def test_every_slot_finishing_in_a_tick_is_returned(denoiser):
    ring = Ring(denoiser, SHAPE, depth=4, admit_per_tick=None)
    # admitted together; 3 steps and 3 steps finish in the same tick, 5 later
    for steps in (3, 5, 3):
        ring.submit(Request(seed=steps, schedule=flow_schedule(steps), cond=text(steps)))
    per_tick = [len(ring.tick()) for _ in range(5)]
    assert per_tick == [0, 0, 2, 0, 1]
    assert ring.occupied == 0


def test_ring_buffers_are_preallocated(denoiser):
    ring = Ring(denoiser, SHAPE, depth=4)
    for i in range(6):
        ring.submit(Request(seed=i, schedule=flow_schedule(3), cond=text(i)))
    ptr = ring.rows.lat.data_ptr()
    ring.run_until_idle()
    assert ring.rows.lat.data_ptr() == ptr


def test_prompt_blend_interpolates_conditioning(denoiser):
    a, b = text(1), text(2)
    sched = flow_schedule(3)
    store = StateStore(initial={"prompt_blend": 0.0})
    only_a = run_alone(denoiser, Request(seed=1, schedule=sched, cond=a), SHAPE, depth=2, state=store.snapshot)
    blend0 = run_alone(denoiser, Request(seed=1, schedule=sched, cond=a, cond_b=b), SHAPE, depth=2, state=store.snapshot)
    assert torch.equal(only_a.latent, blend0.latent)
    store.set("prompt_blend", 1.0)
    only_b = run_alone(denoiser, Request(seed=1, schedule=sched, cond=b), SHAPE, depth=2, state=store.snapshot)
    blend1 = run_alone(denoiser, Request(seed=1, schedule=sched, cond=a, cond_b=b), SHAPE, depth=2, state=store.snapshot)
    torch.testing.assert_close(blend1.latent, only_b.latent, atol=1e-5, rtol=0)


def test_source_blend_curve_keeps_the_source_per_frame(denoiser):
    source = latent(9)
    curve = [1.0] * (SHAPE[0] // 2) + [0.0] * (SHAPE[0] // 2)
    store = StateStore(initial={"source_blend": curve})
    req = Request(seed=3, schedule=flow_schedule(4, 0.7), cond=text(3), source=source, solver=Solver.SDE)
    out = run_alone(denoiser, req, SHAPE, depth=1, state=store.snapshot).latent
    half = SHAPE[0] // 2
    assert torch.equal(out[:half], source[:half])
    assert (out[half:] - source[half:]).abs().mean() > 0.05


def test_guidance_without_a_null_condition_is_counted_not_hidden(denoiser):
    store = StateStore(initial={"guidance": 4.0})
    ring = Ring(denoiser, SHAPE, depth=2, store=store)
    ring.submit(Request(seed=1, schedule=flow_schedule(3), cond=text(1)))
    ring.run_until_idle()
    assert ring.counters.guidance_unavailable == 3
    assert not any(t.guided for t in ring.trace)


@pytest.mark.parametrize("depth,max_batch", [(8, 1), (8, 2), (4, 4), (16, 8)])
def test_chunked_denoiser_calls_keep_bit_identical_parity(denoiser, null_cond, depth, max_batch):
    requests = mixed_requests(9)
    store = StateStore(initial=STATE)
    ring = Ring(denoiser, SHAPE, depth=depth, store=store, null_cond=null_cond, admit_per_tick=None,
                max_batch=max_batch)
    for r in requests:
        ring.submit(r)
    done = {c.request.id: c for c in ring.run_until_idle()}
    assert {t.chunk for t in ring.trace if t.batch} == {min(max_batch, depth)}
    for r in requests:
        alone = run_alone(denoiser, r, SHAPE, depth=depth, state=store.snapshot, null_cond=null_cond,
                          max_batch=max_batch)
        assert torch.equal(done[r.id].latent, alone.latent)


def test_single_row_calls_make_parity_bitwise_across_depth_changes(denoiser):
    requests = mixed_requests(8)
    ring = Ring(denoiser, SHAPE, depth=2, admit_per_tick=None, max_batch=1)
    for r in requests:
        ring.submit(r)
    done = ring.tick()
    ring.set_depth(8)
    done += ring.tick() + ring.tick()
    ring.set_depth(3)
    done += ring.run_until_idle()
    assert len(done) == len(requests)
    for c in done:
        assert torch.equal(c.latent, run_alone(denoiser, c.request, SHAPE, depth=1, max_batch=1).latent)


def test_max_batch_must_divide_the_capacity(denoiser):
    with pytest.raises(InputError, match="max_batch"):
        Ring(denoiser, SHAPE, max_batch=3)


def test_tuning_picks_the_fastest_chunk_and_keeps_parity(denoiser):
    ring = Ring(denoiser, SHAPE, depth=8, admit_per_tick=None)
    ring.submit(Request(seed=1, schedule=flow_schedule(3), cond=text(1)))
    ring.tick()
    with pytest.raises(InputError, match="empty"):
        tune_max_batch(ring)  # not while slots are in flight
    ring.run_until_idle()
    per_row = tune_max_batch(ring, repeats=1)
    assert set(per_row) == {1, 2, 4, 8}
    assert ring.max_batch == min(per_row, key=per_row.get)
    req = Request(seed=2, schedule=flow_schedule(3), cond=text(2))
    ring.submit(req)
    (done,) = ring.run_until_idle()
    assert torch.equal(done.latent, run_alone(denoiser, req, SHAPE, depth=8, max_batch=ring.max_batch).latent)

"""Guidance rules: APG as diffusers' AceStepPipeline computes it, per slot in the ring,
switched live; a null condition that replaces only some conditioning keys."""

import pytest
import torch
from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer, normalized_guidance

from conftest import SHAPE, TEXT, latent, text
from engine import (APG, CFG, InputError, LiveGuidance, Request, Ring, Solver, StateStore, flow_schedule, run_alone,
                    tune_max_batch)
from engine.solvers import apg_combine, euler_step, noised

APG_STATE = {"guidance": 3.0, "guidance_rule": "apg"}


def pipeline_apg(v_cond, v_null, guidance, buffer, norm_dim=1):
    """What AceStepPipeline runs on a guided step (its arguments, verbatim)."""
    return normalized_guidance(v_cond, v_null, guidance - 1.0, buffer, eta=0.0, norm_threshold=2.5,
                               use_original_formulation=True, norm_dim=(norm_dim,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout,norm_dim", [((24, 8), 1), ((8, 24), 2)])
def test_apg_combine_equals_diffusers_step_after_step(dtype, layout, norm_dim):
    # bit-identical (torch.equal), output and momentum, over six successive steps
    gen = torch.Generator().manual_seed(0)
    buffer = MomentumBuffer(momentum=-0.75)
    momentum = torch.zeros((3, *layout), dtype=dtype)
    for step in range(6):
        v_cond = (3 * torch.randn((3, *layout), generator=gen)).to(dtype)
        v_null = (3 * torch.randn((3, *layout), generator=gen)).to(dtype)
        if step == 0:
            v_null[1] = v_cond[1]  # a zero difference: its norm is 0, the clip factor 1
        ref = pipeline_apg(v_cond, v_null, 4.5, buffer, norm_dim)
        v, momentum = apg_combine(v_cond, v_null, 4.5, momentum, norm_dim=norm_dim)
        assert torch.equal(v, ref), f"step {step}"
        assert torch.equal(momentum, buffer.running_average), f"step {step}"


def test_apg_wrapper_normalises_over_the_frame_axis():
    g = APG(None, 4, (8, 24), torch.float32, frame_dim=1)  # (channels, frames): time is axis 2 of a batch
    v_cond, v_null = torch.randn(4, 8, 24), torch.randn(4, 8, 24)
    g.scale = 2.0
    out = g.combine(v_cond, v_null, slice(0, 4))
    want, momentum = apg_combine(v_cond, v_null, 2.0, torch.zeros(4, 8, 24), norm_dim=2)
    assert torch.equal(out, want) and torch.equal(g.momentum, momentum)


def requests(n: int, steps: int | None = None) -> list[Request]:
    """Different seeds, strengths, step counts, solvers and sources."""
    out = []
    for i in range(n):
        strength = (1.0, 0.6)[i % 2]
        out.append(Request(seed=300 + i, schedule=flow_schedule(steps or 3 + i % 4, strength, 3.0), cond=text(i),
                           source=latent(80 + i) if strength < 1.0 else None,
                           solver=Solver.SDE if i % 3 == 1 else Solver.EULER))
    return out


def test_apg_run_alone_equals_the_pipeline_loop(denoiser, null_cond):
    # an independent reference: diffusers' own guidance and buffer around the same
    # denoiser call shape ([x; x] with [cond; null]) and the Euler step
    request = Request(seed=11, schedule=flow_schedule(5, 1.0, 3.0), cond=text(3))
    store = StateStore(initial=APG_STATE)
    got = run_alone(denoiser, request, SHAPE, depth=1, state=store.snapshot, null_cond=null_cond).latent

    sigmas = request.schedule.as_tensor(torch.float32)
    noise = torch.randn((1, *SHAPE), generator=request.generator())
    x = noised(torch.zeros((1, *SHAPE)), noise, sigmas[:1])
    cond = {"text": torch.stack([request.cond["text"], null_cond["text"]])}
    buffer = MomentumBuffer(momentum=-0.75)
    for i in range(request.schedule.steps):
        out = denoiser.denoise(torch.cat([x, x]), sigmas[i].repeat(2), cond)
        v = pipeline_apg(out[:1], out[1:], 3.0, buffer)
        x = euler_step(x, v, sigmas[i : i + 1], sigmas[i + 1 : i + 2])
    assert torch.equal(got, x[0])
    cfg = run_alone(denoiser, request, SHAPE, depth=1, state=StateStore(initial={"guidance": 3.0}).snapshot,
                    null_cond=null_cond).latent
    assert not torch.allclose(got, cfg)  # the rule really changed the result


def test_apg_in_a_mixed_ring_is_bit_identical_to_each_request_alone(denoiser, null_cond):
    store = StateStore(initial={**APG_STATE, "noise_injection": 0.6, "source_blend": [0.7, 0.0]})
    ring = Ring(denoiser, SHAPE, depth=4, store=store, null_cond=null_cond, admit_per_tick=None)
    todo = requests(9)  # more than the depth: rows are reused, so momentum must restart at placement
    for r in todo:
        ring.submit(r)
    done = {c.request.id: c for c in ring.run_until_idle()}
    assert max(len(t.slots) for t in ring.trace) == 4 and all(t.guided for t in ring.trace)
    for r in todo:
        alone = run_alone(denoiser, r, SHAPE, depth=4, state=store.snapshot, null_cond=null_cond)
        assert torch.equal(done[r.id].latent, alone.latent), f"request {r.id}"


def test_fixed_rule_classes_equal_the_live_rule(denoiser, null_cond):
    r = requests(1)[0]
    for rule, fixed in (("cfg", CFG), ("apg", APG)):
        store = StateStore(initial={"guidance": 3.0, "guidance_rule": rule})
        ring = Ring(denoiser, SHAPE, depth=2, store=store, null_cond=null_cond, guidance=fixed)
        ring.submit(r)
        (got,) = ring.run_until_idle()
        live = run_alone(denoiser, r, SHAPE, depth=2, state=store.snapshot, null_cond=null_cond)
        assert torch.equal(got.latent, live.latent), rule


def test_momentum_restarts_when_a_request_is_placed_not_when_freed(denoiser):
    null_cond = {"text": torch.full((TEXT,), 0.5)}  # unlike the free rows' zero conditioning
    store = StateStore(initial=APG_STATE)
    ring = Ring(denoiser, SHAPE, depth=4, store=store, null_cond=null_cond)
    tune_max_batch(ring, repeats=1)  # guidance runs on the free rows
    assert ring.guidance.momentum.abs().sum() > 0
    r = requests(1)[0]
    ring.submit(r)
    (got,) = ring.run_until_idle()
    alone = run_alone(denoiser, r, SHAPE, depth=4, state=store.snapshot, null_cond=null_cond,
                      max_batch=ring.max_batch)
    assert torch.equal(got.latent, alone.latent)


class ForgetsOnMove(LiveGuidance):
    """A broken rule for the control case: momentum does not follow its row."""

    def move(self, src, dst):
        super().move(src, dst)
        self.momentum[dst].zero_()


@pytest.mark.parametrize("guidance,keeps", [(LiveGuidance, True), (ForgetsOnMove, False)])
def test_compaction_carries_each_slots_momentum(denoiser, null_cond, guidance, keeps):
    # chunks of 2 rows before and after the shrink: the call shape does not change, so
    # a moved slot must still equal its solo run bit for bit
    store = StateStore(initial=APG_STATE)
    ring = Ring(denoiser, SHAPE, depth=8, store=store, null_cond=null_cond, admit_per_tick=None, max_batch=2,
                guidance=guidance)
    short, long = requests(4, steps=2), requests(8, steps=6)[4:]
    for r in short + long:
        ring.submit(r)
    done = ring.tick() + ring.tick()
    assert {c.request.id for c in done} == {r.id for r in short}
    assert sorted(row for row, _, _ in ring.in_flight().values()) == [4, 5, 6, 7]
    ring.set_depth(4)
    done = ring.run_until_idle()
    assert ring.trace.ticks()[-1].depth == 4 and ring.counters.admitted == 8
    moved = {c.request.id: c for c in done}
    same = [torch.equal(moved[r.id].latent, run_alone(denoiser, r, SHAPE, depth=4, state=store.snapshot,
                                                      null_cond=null_cond, max_batch=2).latent) for r in long]
    assert same == [keeps] * 4


class ProbeDenoiser:
    """v = cond["text"][:, :1] everywhere: 1 on conditional rows, 0 on null rows. CFG
    moves x by dt * guidance; APG's difference lies along v_cond, so it moves by dt."""

    name = "probe"

    def denoise(self, x, sigma, cond):
        return cond["text"][:, :1, None].expand_as(x).clone()


def test_switching_the_rule_is_heard_next_tick_and_flushes_nothing():
    store = StateStore(initial={"steps": 40, "depth": 4, "guidance": 3.0})
    ring = Ring(ProbeDenoiser(), SHAPE, store=store, admit_per_tick=None, null_cond={"text": torch.zeros(TEXT)})
    for i in range(4):
        ring.submit(Request(seed=i, schedule=flow_schedule(40), cond={"text": torch.ones(TEXT)}))

    def rate_per_slot() -> dict[int, float]:
        before, flight = ring.rows.lat.clone(), ring.in_flight()
        assert ring.tick() == []
        after = ring.in_flight()
        assert set(after) == set(flight) and all(after[k][1] == flight[k][1] + 1 for k in flight)  # kept its place
        out = {}
        for s in ring.trace.ticks()[-1].slots:
            out[s.request_id] = ((ring.rows.lat[s.row] - before[s.row]) / (s.sigma_next - s.sigma)).mean().item()
        return out

    ring.tick()  # admits all four
    assert all(v == pytest.approx(3.0, rel=1e-4) for v in rate_per_slot().values())  # cfg
    assert ring.guidance.momentum is None  # no APG tick yet: no momentum is even held
    new = store.set("guidance_rule", "apg")
    rates = rate_per_slot()
    assert ring.trace.ticks()[-1].state_version == new.version
    assert len(rates) == 4 and all(v == pytest.approx(1.0, rel=1e-4) for v in rates.values())
    momentum = ring.guidance.momentum.clone()
    assert momentum[:4].abs().min() > 0
    store.set("guidance_rule", "cfg")
    assert all(v == pytest.approx(3.0, rel=1e-4) for v in rate_per_slot().values())
    assert torch.equal(ring.guidance.momentum, momentum)
    assert ring.counters.admitted == 4 and ring.counters.rejected == 0 and ring.counters.completed == 0


class Recorder:
    """Records the conditioning of every call; predicts zero."""

    name = "recorder"

    def __init__(self):
        self.calls = []

    def denoise(self, x, sigma, cond):
        self.calls.append({k: v.clone() for k, v in cond.items()})
        return torch.zeros_like(x)


def ace_cond(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"text": torch.randn(5, TEXT, generator=g), "context": torch.randn(SHAPE[0], 4, generator=g)}


def test_a_null_naming_only_the_text_keeps_each_rows_own_context():
    rec = Recorder()
    store = StateStore(initial={"guidance": 2.0, "depth": 2})
    ring = Ring(rec, SHAPE, store=store, admit_per_tick=None, null_cond={"text": torch.zeros(5, TEXT)})
    with pytest.raises(InputError, match="cond"):  # the null's own key must keep its shape
        ring.submit(Request(seed=0, schedule=flow_schedule(2), cond={"text": torch.zeros(4, TEXT)}))
    a, b = ace_cond(1), ace_cond(2)
    ring.submit(Request(seed=1, schedule=flow_schedule(2), cond=a))
    ring.submit(Request(seed=2, schedule=flow_schedule(2), cond=b))
    with pytest.raises(InputError, match="cond"):  # once bound, every request carries every key
        ring.submit(Request(seed=3, schedule=flow_schedule(2), cond={"text": torch.zeros(5, TEXT)}))
    ring.run_until_idle()
    (first, *_) = rec.calls
    assert first["text"].shape == (4, 5, TEXT) and first["context"].shape == (4, SHAPE[0], 4)
    assert torch.equal(first["text"][:2], torch.stack([a["text"], b["text"]]))
    assert torch.equal(first["text"][2:], torch.zeros(2, 5, TEXT))
    assert torch.equal(first["context"][2:], first["context"][:2])  # the null half has the rows' context
    assert torch.equal(first["context"][:2], torch.stack([a["context"], b["context"]]))


def test_a_full_null_still_replaces_every_key():
    rec = Recorder()
    null = {"text": torch.zeros(5, TEXT), "context": torch.full((SHAPE[0], 4), -1.0)}
    ring = Ring(rec, SHAPE, depth=1, store=StateStore(initial={"guidance": 2.0}), null_cond=null)
    ring.submit(Request(seed=1, schedule=flow_schedule(2), cond=ace_cond(1)))
    ring.run_until_idle()
    for call in rec.calls:
        assert torch.equal(call["context"][1], null["context"]) and torch.equal(call["text"][1], null["text"])
    with pytest.raises(InputError, match="cond"):  # a full null leaves no key to add
        ring.submit(Request(seed=2, schedule=flow_schedule(2), cond={**ace_cond(2), "extra": torch.zeros(3)}))


class Refining(Recorder):
    """A denoiser that also refines the guided prediction (engine.AfterGuidance)."""

    def __init__(self):
        super().__init__()
        self.after = []

    def denoise(self, x, sigma, cond):
        super().denoise(x, sigma, cond)
        return cond["text"][:, :1, :1].expand_as(x).clone()  # each half's own constant

    def after_guidance(self, v, x, sigma, cond):
        self.after.append((v.clone(), {k: c.clone() for k, c in cond.items()}))
        return v + 100.0


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_after_guidance_sees_the_guided_rows_with_their_own_conditioning(guidance):
    rec = Refining()
    store = StateStore(initial={"guidance": guidance, "depth": 2})
    null = {"text": torch.zeros(5, TEXT)}
    ring = Ring(rec, SHAPE, store=store, admit_per_tick=None, null_cond=null)
    a, b = ace_cond(1), ace_cond(2)
    for seed, cond in ((1, a), (2, b)):
        ring.submit(Request(seed=seed, schedule=flow_schedule(2), cond=cond))
    ring.tick()
    (v, cond), = rec.after
    # one call per chunk, after the halves are combined: the conditional rows only
    assert v.shape == (2, *SHAPE) and torch.equal(cond["text"], torch.stack([a["text"], b["text"]]))
    c = torch.stack([a["text"][0, 0], b["text"][0, 0]])  # each row's conditional prediction (the null's is 0)
    assert torch.allclose(v[:, 0, 0], guidance * c)  # CFG: null + g * (cond - null)
    assert len(rec.calls[0]["text"]) == (4 if guidance != 1.0 else 2)

"""`demon demo`: the streaming core at work on a tiny ACE-Step DiT.

The music issue replaces this with rendering music from the trained house models;
until then the DiT is randomly initialised (its latents are not music) and the demo
shows what the engine does: heterogeneous slots per tick, a live step-class and a
live request-class change with their measured onsets, and parity with a solo run.
"""

from __future__ import annotations

import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from engine import Completion, Ring, StateStore, request_from_state, run_alone
from pipelines.music.dit import build_dit, dit_cond, dit_denoiser, dit_null_cond, latent_shape

FRAME_RATE = 25  # ACE-Step 1.5 latent frames per second


def run_demo(params: dict[str, Any], *, requests: int, seconds: float, out: Path | None) -> int:
    frames = max(2, round(seconds * FRAME_RATE))
    shape = latent_shape(frames)
    store = StateStore(initial=params)
    state = store.snapshot
    model = build_dit()
    denoiser = dit_denoiser(model)
    null = dit_null_cond(frames)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"demo: tiny ACE-Step DiT ({n_params / 1e6:.1f}M parameters, random weights), "
          f"{seconds:g} s of latents {shape}, depth {state['depth']}, {state['steps']} steps, "
          f"guidance {state['guidance']:g}, {requests} requests")

    born = itertools.count()

    def factory(snapshot):
        n = next(born)
        if n >= requests:
            return None
        return request_from_state(snapshot, cond=dit_cond(frames, seed=n), seed=snapshot["seed"] + n)

    ring = Ring(denoiser, shape, store=store, factory=factory, null_cond=null)
    completions: list[Completion] = []
    step_change = request_change = None
    start = time.perf_counter()
    while len(completions) < requests:
        done = ring.tick()
        completions.extend(done)
        t = ring.trace.ticks()[-1]
        slots = " ".join(f"{s.request_id}@{s.sigma:.2f}" for s in t.slots)
        print(f"tick {t.tick:3d}  v{t.state_version}  batch {t.batch}{'x2' if t.guided else ''}  "
              f"model {t.model_s * 1e3:7.1f} ms  engine {t.engine_s * 1e3:5.2f} ms  [{slots}]"
              + (f"  done {list(t.finished)}" if t.finished else ""))
        if t.tick == 3:  # live changes while the ring is full
            step_change = store.set("guidance", 1.0 if state["guidance"] != 1.0 else 2.0)
            request_change = store.set("strength", 0.8 if state["strength"] == 1.0 else 1.0)
            print(f"        live: guidance -> {step_change['guidance']:g} (step class), "
                  f"strength -> {request_change['strength']:g} (request class)")
    wall = time.perf_counter() - start

    ticks = ring.trace.ticks()
    tick_ms = sorted(t.tick_s * 1e3 for t in ticks)
    overhead = sum(t.engine_s for t in ticks) / sum(t.tick_s for t in ticks)
    print(f"completions {len(completions)} in {wall:.1f} s ({len(completions) / wall:.2f}/s), "
          f"tick p50 {statistics.median(tick_ms):.1f} ms p99 {tick_ms[min(len(tick_ms) - 1, int(0.99 * len(tick_ms)))]:.1f} ms, "
          f"engine overhead {overhead:.4f} of tick time")
    first = None
    if step_change is not None:
        first = ring.trace.first_tick_at(step_change.version)
        adm = ring.trace.first_admission_at(request_change.version)
        print(f"onset: guidance change used from tick {first.tick if first else '-'} (published after tick 3); "
              f"strength change first born at tick {adm.tick if adm else '-'} (next admission)")
    # parity: a request born after the live changes saw one StepState all its life
    settled = [c for c in completions if first is None or c.admitted_tick >= first.tick]
    if settled:
        check = settled[-1]
        alone = run_alone(denoiser, check.request, shape, depth=state["depth"], state=store.snapshot, null_cond=null)
        same = torch.equal(alone.latent, check.latent)
        print(f"parity: request {check.request.id} in the ring vs alone: bit-identical {same}")
    if out is not None:
        from safetensors.torch import save_file

        save_file({f"request_{c.request.id}": c.latent.contiguous() for c in completions}, str(out))
        print(f"wrote {len(completions)} latents to {out}")
    sys.stdout.flush()
    return 0

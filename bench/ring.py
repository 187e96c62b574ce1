"""Ring benchmark: engine overhead and throughput against one-at-a-time sampling.

A tiny ACE-Step DiT (the real diffusers class, random weights) denoises 60 s
latents; `--model DIR` runs a complete ACE-Step 1.5 folder's DiT instead (the house
models or a real folder, conditioned on a fixed prompt through its own encoders),
guidance off: one row per slot. For each depth the ring runs
continuously, a new request whenever a slot frees with staggered admission as in live
use, and is measured in steady state. Side by side, in alternating rounds, the same
kind of requests run one at a time through a plain Euler loop at batch 1. The ring
runs twice: one denoiser call over the whole batch, and in chunks of the size
`tune_max_batch` finds fastest per row.

Prints JSON lines (../shared/DESIGN.md, "Measuring"):
  overhead_fraction   engine time / tick time (goal < 0.02 at depth 8)
  throughput_ratio    ring completions/s / one-at-a-time completions/s, equal steps
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import emit

from engine import Ring, StateStore, request_from_state, tune_max_batch
from engine.solvers import euler_step
from pipelines.music.dit import build_dit, dit_cond, dit_denoiser, latent_shape

PROMPT = "lofi piano and drums, 84 bpm, A minor"


def one_at_a_time(denoiser, requests, shape) -> float:
    """Completions/s of a plain sampler: each request alone, batch 1, Euler steps."""
    start = time.perf_counter()
    for req in requests:
        gen = req.generator()
        x = torch.randn((1, *shape), generator=gen)
        sig = req.schedule.as_tensor()
        cond = {k: v[None] for k, v in req.cond.items()}
        for i in range(req.schedule.steps):
            v = denoiser.denoise(x, sig[i : i + 1], cond)
            x = euler_step(x, v, sig[i : i + 1], sig[i + 1 : i + 2])
    return len(requests) / (time.perf_counter() - start)


def make_ring(denoiser, shape, cond, depth, steps, tuned):
    store = StateStore(initial={"depth": depth, "steps": steps, "guidance": 1.0})
    seeds = itertools.count()
    ring = Ring(denoiser, shape, store=store,
                factory=lambda s: request_from_state(s, cond=cond, seed=next(seeds)))
    if tuned:
        ring.submit(request_from_state(store.snapshot, cond=cond))  # tells the ring the cond shapes
        ring.run_until_idle()
        tune_max_batch(ring)
    for _ in range(steps + depth):  # fill the ring and reach the staggered steady state
        ring.tick()
    return ring


def steady_state(ring, measure_ticks):
    ring.trace.clear()
    completed = 0
    start = time.perf_counter()
    for _ in range(measure_ticks):
        completed += len(ring.tick())
    wall = time.perf_counter() - start
    ticks = ring.trace.ticks()
    overhead = sum(t.engine_s for t in ticks) / sum(t.tick_s for t in ticks)
    return completed / wall, overhead, statistics.median(t.tick_s for t in ticks)


def folder_setup(folder: str, seconds: float):
    """(latent shape, the fixed prompt's condition, the DiT) of a model folder, built as a render builds them."""
    from pipelines.music.models import load_music_models
    from pipelines.music.render import MusicJob, conditions, job_frames

    models = load_music_models(folder)
    frames = job_frames(models, seconds)
    cond, _ = conditions(models, MusicJob(PROMPT, seconds, {}), frames)
    return (frames, models.codec.channels), cond, models.denoiser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="latent length (default 60 s, 1500 frames)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--depths", default="1,4,8")
    ap.add_argument("--rounds", type=int, default=2, help="alternating measurement rounds (median)")
    ap.add_argument("--solo-requests", type=int, default=2, help="requests timed one at a time per round")
    ap.add_argument("--model", default=None, help="a complete ACE-Step 1.5 folder (models/music: the house models); "
                                                  "default: the tiny random DiT")
    args = ap.parse_args()

    if args.model is None:
        frames = round(args.seconds * 25)
        shape, cond, denoiser = latent_shape(frames), dit_cond(frames, 0), dit_denoiser(build_dit())
        model = {}
    else:
        shape, cond, denoiser = folder_setup(args.model, args.seconds)
        model = {"model": args.model}
    store = StateStore(initial={"steps": args.steps})
    solo = [request_from_state(store.snapshot, cond=cond, seed=i) for i in range(args.solo_requests)]
    one_at_a_time(denoiser, solo[:1], shape)  # warm up kernels and the allocator

    for depth in [int(d) for d in args.depths.split(",")]:
        rings = {False: make_ring(denoiser, shape, cond, depth, args.steps, False),
                 True: make_ring(denoiser, shape, cond, depth, args.steps, True)}
        measure = max(args.steps, 2 * args.steps // depth * depth)
        base, runs = [], {False: [], True: []}
        for _ in range(args.rounds):
            base.append(one_at_a_time(denoiser, solo, shape))
            for tuned, ring in rings.items():
                runs[tuned].append(steady_state(ring, measure))
        baseline = statistics.median(base)
        for tuned, ring in rings.items():
            cps = statistics.median(r[0] for r in runs[tuned])
            overhead = statistics.median(r[1] for r in runs[tuned])
            tick_s = statistics.median(r[2] for r in runs[tuned])
            extra = {"ring": "tuned" if tuned else "whole-batch", "depth": depth, "steps": args.steps, "seconds": args.seconds,
                     "chunk": ring.max_batch or depth, **model}
            emit("ring", "overhead_fraction", overhead, "fraction", **extra)
            emit("ring", "tick_p50_ms", tick_s * 1e3, "ms", **extra)
            emit("ring", "throughput_ratio", cps / baseline, "x", baseline=baseline, ratio=cps / baseline,
                 completions_per_s=round(cps, 4), **extra)


if __name__ == "__main__":
    main()

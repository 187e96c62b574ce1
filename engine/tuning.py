"""Tuning a ring's denoiser chunk size (`max_batch`) to the machine it runs on."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from .errors import InputError

if TYPE_CHECKING:  # annotations only: the ring does not import this module
    from .ring import Ring

SIZES = (1, 2, 4, 8, 16)


def tune_max_batch(ring: Ring, repeats: int = 2) -> dict[int, float]:
    """Time the ring's denoiser (through its guidance) at chunk sizes 1, 2, 4, ... up
    to the depth, and set `ring.max_batch` to the fastest per row. Returns seconds per
    row for each size tried.

    Only while the ring is empty: a new chunk size changes the call shape, and so the
    bitwise parity reference of work already in flight.
    """
    if ring.occupied:
        raise InputError("max_batch", "can only be tuned while the ring is empty")
    guidance = ring.guidance
    if guidance.shapes is None:
        raise InputError("cond", "shapes are unknown until a request or a null condition is given")
    sizes = [n for n in SIZES if n <= ring.depth]
    params = ring.params.read(ring.store.snapshot)
    gen = torch.Generator().manual_seed(0)
    per_row: dict[int, float] = {}
    for round_ in range(repeats + 1):
        for n in sizes:
            x = torch.randn((n, *ring.latent_shape), generator=gen, dtype=ring.dtype)
            sigma = torch.full((n,), 0.5, dtype=ring.dtype)
            guidance.prepare(n, params)  # the ring is empty: its conditioning rows are scratch
            t0 = time.perf_counter()
            guidance.denoise(x, sigma, slice(0, n))
            if round_ > 0:  # round 0 warms kernels and the allocator up
                per_row[n] = min(per_row.get(n, float("inf")), (time.perf_counter() - t0) / n)
    ring.max_batch = min(per_row, key=per_row.get)
    return per_row

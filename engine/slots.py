"""The ring's rows: who sits in each slot, and the per-row tensors it runs on.

Rows are placed, moved, re-noised and freed here; whatever else keeps per-slot state
(the guidance) is told through its slot hooks, in the same call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .request import Request
from .schedule import MAX_STEPS, Schedule
from .slot_table import RowLife, SlotHooks, SlotTable
from .solvers import noised


@dataclass
class Slot:
    request: Request
    generator: torch.Generator
    schedule: Schedule  # the request's, until a retarget replaces it
    admitted_tick: int


@dataclass(frozen=True)
class SlotProgress:
    request: int
    row: int
    step: int
    steps: int
    sigma: float
    schedule: list[float]  # the slot's sigmas, first to last


class SlotRows:
    def __init__(self, capacity: int, latent_shape: tuple[int, ...], dtype: torch.dtype,
                 hooks: Sequence[SlotHooks] = ()):
        self.capacity = capacity
        self.dtype = dtype
        self.table = table = SlotTable(capacity)
        self.lat = table.column(latent_shape, dtype, RowLife.PAYLOAD)
        self.x0 = table.column(latent_shape, dtype, RowLife.PAYLOAD)  # last clean estimate
        self.src = table.column(latent_shape, dtype, RowLife.PAYLOAD)
        self.sigmas = table.column((MAX_STEPS + 1,), dtype, RowLife.BOOKKEEPING)  # the row's schedule
        self.step = table.column((), torch.int64, RowLife.BOOKKEEPING)
        self.nsteps = table.column((), torch.int64, RowLife.BOOKKEEPING)
        self.occupied = table.column((), torch.bool, RowLife.BOOKKEEPING)
        self.has_src = table.column((), dtype, RowLife.BOOKKEEPING)
        self.v = table.column(latent_shape, dtype, RowLife.SCRATCH)  # the tick's velocity
        self.fresh = table.column(latent_shape, dtype, RowLife.SCRATCH)  # noise drawn just before use
        self.slots: list[Slot | None] = [None] * capacity
        self.hooks = tuple(hooks)

    # ---- queries -------------------------------------------------------------------------

    def count(self) -> int:
        return sum(s is not None for s in self.slots)

    def last_occupied(self) -> int:
        """The highest occupied row, -1 when none is."""
        return max((r for r, s in enumerate(self.slots) if s is not None), default=-1)

    def sigmas_at(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each of rows [0, b)'s current sigma and the next one of its schedule."""
        idx = self.step[:b].unsqueeze(1)
        return self.sigmas[:b].gather(1, idx).squeeze(1), self.sigmas[:b].gather(1, idx + 1).squeeze(1)

    def in_flight(self) -> dict[int, tuple[int, int, float]]:
        """request id -> (row, step, current sigma) for every occupied slot."""
        out = {}
        for row, slot in enumerate(self.slots):
            if slot is not None:
                step = int(self.step[row])
                out[slot.request.id] = (row, step, float(self.sigmas[row, step]))
        return out

    def progress(self) -> list[SlotProgress]:
        """Each occupied slot where it stands in its own schedule, read in one pass (a front-end
        reads this from another thread while the ring ticks: each entry is one slot's own)."""
        out = []
        for row, slot in enumerate(list(self.slots)):
            if slot is None:
                continue
            step, n = int(self.step[row]), int(self.nsteps[row])
            schedule = self.sigmas[row, : n + 1].tolist()
            # a row being placed or freed as it is read is left out rather than shown torn
            if self.slots[row] is slot and 1 <= n and 0 <= step <= n:
                out.append(SlotProgress(slot.request.id, row, step, n, schedule[step], schedule))
        return out

    def row_of(self, request_id: int) -> int:
        for row, slot in enumerate(self.slots):
            if slot is not None and slot.request.id == request_id:
                return row
        raise KeyError(request_id)

    # ---- row changes ---------------------------------------------------------------------

    def place(self, row: int, request: Request, tick: int) -> Slot:
        """Seat `request` in the free `row`: its schedule, source and conditioning, and
        its start latent (the source, or zeros, noised to the first sigma)."""
        gen = request.generator()
        self._load_schedule(row, request.schedule, 0)
        self.occupied[row] = True
        if request.source is not None:
            self.src[row].copy_(request.source)
            self.has_src[row] = 1.0
        else:
            self.src[row].zero_()
            self.has_src[row] = 0.0
        for hook in self.hooks:
            hook.place(row, request)
        self.x0[row].copy_(self.src[row])
        self._renoise(row, gen)
        slot = self.slots[row] = Slot(request, gen, request.schedule, tick)
        return slot

    def move(self, src: int, dst: int) -> None:
        self.table.move(src, dst)
        for hook in self.hooks:
            hook.move(src, dst)
        self.slots[dst], self.slots[src] = self.slots[src], None

    def free(self, row: int) -> Slot:
        slot = self.slots[row]
        self.slots[row] = None
        self.table.clear(row)
        for hook in self.hooks:
            hook.clear(row)
        return slot

    def retarget(self, row: int, schedule: Schedule) -> None:
        """Move the slot onto `schedule` at its progress fraction, re-noised from its
        last x0 estimate to the sigma there: never zeroed or dropped."""
        slot = self.slots[row]
        step, n = int(self.step[row]), int(self.nsteps[row])
        k = min(round(step / n * schedule.steps), schedule.steps - 1)
        self._load_schedule(row, schedule, k)
        self._renoise(row, slot.generator)
        slot.schedule = schedule

    def draw_noise(self, row: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fresh noise for `row` (its `fresh` row, 1 x latent) from the slot's own generator,
        or `generator` while the slot is being seated."""
        noise = self.fresh[row : row + 1]
        gen = generator if generator is not None else self.slots[row].generator
        torch.randn(noise.shape, generator=gen, dtype=self.dtype, out=noise)
        return noise

    def _load_schedule(self, row: int, schedule: Schedule, step: int) -> None:
        self.sigmas[row].zero_()
        self.sigmas[row, : len(schedule.sigmas)] = schedule.as_tensor(self.dtype)
        self.step[row] = step
        self.nsteps[row] = schedule.steps

    def _renoise(self, row: int, generator: torch.Generator) -> None:
        """Latent of `row` = its x0 estimate noised to its current sigma with fresh noise."""
        noise = self.draw_noise(row, generator)
        sigma = self.sigmas[row : row + 1].gather(1, self.step[row : row + 1, None]).squeeze(1)
        self.lat[row : row + 1].copy_(noised(self.x0[row : row + 1], noise, sigma))

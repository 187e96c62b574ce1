"""The solvers the ring can run, keyed by the `Solver` enum, and the tick's solver step.

Rows are grouped by their slot's solver and each group takes its own step. The maths
is elementwise, so a row's result is the same whichever rows share its group; a
group that covers the whole batch runs on the batch itself, without gathering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from .request import Solver
from .slots import SlotRows
from .solvers import euler_step, noise_prediction, per_row, sde_step
from .tick_params import TickParams

Rows = slice | torch.Tensor  # the whole batch, or the indices of one group


@dataclass(frozen=True)
class StepBatch:
    """Rows [0, b) of the tick, each tensor with the batch as its first axis."""

    x: torch.Tensor  # latents at sigma
    v: torch.Tensor  # predicted velocity (guided, scaled)
    x0: torch.Tensor  # clean-sample estimate
    sigma: torch.Tensor
    sigma_next: torch.Tensor
    source: torch.Tensor
    has_source: torch.Tensor  # 1.0 where the row has a source latent
    fresh: torch.Tensor  # this tick's noise, drawn for the rows whose solver wants it


@dataclass(frozen=True)
class SolverSpec:
    step: Callable[[StepBatch, Rows, TickParams], torch.Tensor]
    draws_noise: bool  # fresh noise is drawn from the slot's generator before each step


def _euler(t: StepBatch, rows: Rows, params: TickParams) -> torch.Tensor:
    return euler_step(t.x[rows], t.v[rows], t.sigma[rows], t.sigma_next[rows])


def _sde(t: StepBatch, rows: Rows, params: TickParams) -> torch.Tensor:
    x, v, sigma = t.x[rows], t.v[rows], t.sigma[rows]
    blend = params.source_blend * per_row(t.has_source[rows], x)
    return sde_step(
        t.x0[rows], noise_prediction(x, v, sigma), t.fresh[rows], t.sigma_next[rows],
        eta=params.noise_injection, source=t.source[rows], blend=blend,
    )


SOLVERS: Mapping[Solver, SolverSpec] = {
    Solver.EULER: SolverSpec(_euler, draws_noise=False),
    Solver.SDE: SolverSpec(_sde, draws_noise=True),
}

# A free row has sigma = sigma_next = 0, so the Euler step leaves it as it is: it joins
# the Euler rows, and the whole batch is stored without masking.
FREE_ROW = Solver.EULER


def solve(rows: SlotRows, b: int, x: torch.Tensor, v: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor,
          sigma_next: torch.Tensor, params: TickParams) -> torch.Tensor:
    """The next latent of rows [0, b) of `rows`, each by its slot's solver. Rows whose
    solver re-noises first draw their noise from their own generator."""
    slots = rows.slots[:b]
    for row, slot in enumerate(slots):
        if slot is not None and SOLVERS[slot.request.solver].draws_noise:
            rows.draw_noise(row)
    batch = StepBatch(x, v, x0, sigma, sigma_next, rows.src[:b], rows.has_src[:b], rows.fresh[:b])
    return step_rows(batch, [None if s is None else s.request.solver for s in slots], params)


def step_rows(batch: StepBatch, solvers: Sequence[Solver | None], params: TickParams) -> torch.Tensor:
    """The next latent of every row; `solvers[r]` is row r's solver, None where free."""
    groups: dict[Solver, list[int]] = {}
    for row, solver in enumerate(solvers):
        groups.setdefault(FREE_ROW if solver is None else solver, []).append(row)
    if len(groups) == 1:
        (solver,) = groups
        return SOLVERS[solver].step(batch, slice(None), params)
    new = torch.empty_like(batch.x)
    for solver, rows in groups.items():
        index = torch.tensor(rows)
        new[index] = SOLVERS[solver].step(batch, index, params)
    return new

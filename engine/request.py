"""Request: everything one generation needs, fixed when it is born."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import torch

from .errors import InputError
from .params import Propagation
from .schedule import Schedule, flow_schedule
from .state import StepState

_ids = itertools.count(1)
MAX_SEED = 2**63 - 1


class Solver(enum.Enum):
    EULER = "euler"  # deterministic flow ODE
    SDE = "sde"  # re-noise from x0 with source blend and noise injection


@dataclass(frozen=True, eq=False)
class Request:
    """One generation: seed, conditioning, its own schedule, an optional source.

    `cond` maps names to per-row tensors (no batch axis) handed to the denoiser;
    `cond_b`, if given, is prompt B with the same shapes, blended in by the
    `prompt_blend` step parameter. `source` is a clean latent for X-to-X; it is
    noised to the schedule's start sigma and, with the SDE solver, blended back per
    frame. `params` keeps the request-class values it was born with.
    """

    seed: int
    schedule: Schedule
    cond: Mapping[str, torch.Tensor] = field(default_factory=dict)
    cond_b: Mapping[str, torch.Tensor] | None = None
    source: torch.Tensor | None = None
    solver: Solver = Solver.EULER
    params: Mapping[str, Any] = field(default_factory=dict)
    params_version: int = -1
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError("seed", f"must be an integer in 0..{MAX_SEED}, got {self.seed!r}")
        if not isinstance(self.schedule, Schedule):
            raise InputError("schedule", f"expected a Schedule, got {type(self.schedule).__name__}")
        if not isinstance(self.solver, Solver):
            raise InputError("solver", f"expected a Solver, got {self.solver!r}")
        if self.source is not None:
            _check_tensor("source", self.source)
        for name, tensor in self.cond.items():
            _check_tensor(f"cond.{name}", tensor)
        if self.cond_b is not None:
            if set(self.cond_b) != set(self.cond):
                raise InputError("cond_b", f"must have the keys of cond {sorted(self.cond)}, got {sorted(self.cond_b)}")
            for name, tensor in self.cond_b.items():
                _check_tensor(f"cond_b.{name}", tensor)
                if tensor.shape != self.cond[name].shape:
                    raise InputError(f"cond_b.{name}", f"shape {tuple(tensor.shape)} differs from cond's {tuple(self.cond[name].shape)}")

    def generator(self) -> torch.Generator:
        """The request's own CPU generator: the same seed always draws the same noise."""
        return torch.Generator(device="cpu").manual_seed(self.seed)


def _check_tensor(name: str, tensor: Any) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise InputError(name, f"expected a tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise InputError(name, f"expected a floating-point tensor, got {tensor.dtype}")
    if not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise InputError(name, f"contains NaN or inf ({bad} of {tensor.numel()} values)")


def request_from_state(
    state: StepState,
    *,
    cond: Mapping[str, torch.Tensor] | None = None,
    cond_b: Mapping[str, torch.Tensor] | None = None,
    source: torch.Tensor | None = None,
    seed: int | None = None,
) -> Request:
    """A request born now: its schedule, solver and seed come from `state`."""
    schedule = flow_schedule(state["steps"], state["strength"], state["shift"])
    params = state.of(Propagation.REQUEST)
    return Request(
        seed=state["seed"] if seed is None else seed,
        schedule=schedule,
        cond=dict(cond or {}),
        cond_b=cond_b,
        source=source,
        solver=Solver(state["solver"]),
        params=MappingProxyType(params),
        params_version=state.version,
    )


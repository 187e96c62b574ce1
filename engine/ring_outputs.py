"""What the ring reports: each finished request, and its running counters."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .request import Request
from .schedule import Schedule


@dataclass(frozen=True)
class Completion:
    request: Request
    latent: torch.Tensor  # (*latent_shape), owned by the caller
    schedule: Schedule  # the schedule it finished on (differs from the request's after a retarget)
    admitted_tick: int
    finished_tick: int


@dataclass
class RingCounters:
    ticks: int = 0
    admitted: int = 0
    completed: int = 0
    rejected: int = 0  # submissions refused for bad input
    retargeted: int = 0  # in-flight slots re-noised onto a new schedule
    guidance_unavailable: int = 0  # ticks where guidance != 1 but no null condition exists
    nonfinite: int = 0  # slot steps whose result was NaN/inf and was not applied

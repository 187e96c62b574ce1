"""Per-tick trace: which slots ran, at which sigmas, under which StepState version,
and how the tick's time split between the model and the engine."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class SlotTrace:
    row: int
    request_id: int
    step: int  # index of the step this tick ran (0-based)
    sigma: float
    sigma_next: float


@dataclass(frozen=True)
class Admission:
    tick: int
    row: int
    request_id: int
    params_version: int  # StepState version the request was born from (-1: built by hand)
    steps: int
    start_sigma: float


@dataclass(frozen=True)
class TickTrace:
    tick: int
    state_version: int
    batch: int  # rows handed to the denoiser (padded shape, before CFG doubling)
    depth: int
    chunk: int  # rows per denoiser call (the batch runs in batch/chunk calls)
    guided: bool  # whether classifier-free guidance ran this tick
    slots: tuple[SlotTrace, ...]
    admitted: tuple[Admission, ...]
    finished: tuple[int, ...]  # request ids
    model_s: float
    tick_s: float

    @property
    def engine_s(self) -> float:
        return self.tick_s - self.model_s


class Trace:
    """A bounded record of the latest ticks, safe to read from another thread."""

    def __init__(self, maxlen: int = 4096):
        self._ticks: collections.deque[TickTrace] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, tick: TickTrace) -> None:
        with self._lock:
            self._ticks.append(tick)

    def ticks(self) -> list[TickTrace]:
        with self._lock:
            return list(self._ticks)

    def __iter__(self) -> Iterator[TickTrace]:
        return iter(self.ticks())

    def __len__(self) -> int:
        return len(self._ticks)

    def last(self) -> TickTrace | None:
        with self._lock:
            return self._ticks[-1] if self._ticks else None

    def admissions(self) -> list[Admission]:
        return [a for t in self.ticks() for a in t.admitted]

    def first_tick_at(self, version: int) -> TickTrace | None:
        """The first tick that ran with StepState `version` or newer (step/frame onset)."""
        return next((t for t in self.ticks() if t.state_version >= version), None)

    def first_admission_at(self, version: int) -> Admission | None:
        """The first request born from StepState `version` or newer (request onset)."""
        return next((a for a in self.admissions() if a.params_version >= version), None)

    def clear(self) -> None:
        with self._lock:
            self._ticks.clear()

"""Measured onsets: the time from a parameter change to the first output that carries it.

Whoever publishes a change records it (its name, propagation class, the StepState
version that first holds it, and when); the live engine reports each output it hears
with the versions that output carries, per class. A change is resolved by the first
output of its class whose version reaches it.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Callable, Iterable

from .params import Propagation

MAX_PENDING = 4096  # unresolved changes kept per class; older ones are forgotten (and counted)
PER_NAME = 256  # onsets kept per parameter for its median
PER_CLASS = 100_000  # onsets kept per class, for benchmarks


@dataclass(frozen=True)
class Change:
    name: str
    version: int  # StepState version that first holds the change
    at: float  # time.perf_counter() of the change


class OnsetTracker:
    """Thread-safe: writers record from control threads, the engine reports from its own."""

    def __init__(self, max_pending: int = MAX_PENDING):
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: dict[Propagation, collections.deque[Change]] = {p: collections.deque() for p in Propagation}
        self._onsets: dict[str, collections.deque[float]] = {}
        self._class_onsets = {p: collections.deque(maxlen=PER_CLASS) for p in Propagation}

    def changed(self, changes: Iterable[tuple[str, Propagation]], version: int, at: float) -> int:
        """Record changes first held by `version`; returns how many older ones this forgot."""
        forgotten = 0
        with self._lock:
            for name, propagation in changes:
                queue = self._pending[propagation]
                if len(queue) >= self.max_pending:
                    queue.popleft()
                    forgotten += 1
                queue.append(Change(name, version, at))
        return forgotten

    def heard(self, propagation: Propagation, version: int, at: float,
              only: Callable[[str], bool] | None = None) -> list[tuple[str, float]]:
        """Output carrying every change of `propagation` up to `version` is heard at `at`.

        Resolves those changes and returns (name, onset seconds) for each. With `only`,
        just the changes of the names it accepts: one class may be applied at two places
        (a live music gain at the device, a crossfade at decode), each reporting its own.
        """
        out = []
        with self._lock:
            queue = self._pending[propagation]
            skipped = []
            while queue and queue[0].version <= version:
                change = queue.popleft()
                if only is not None and not only(change.name):
                    skipped.append(change)
                    continue
                onset = max(0.0, at - change.at)
                out.append((change.name, onset))
                self._onsets.setdefault(change.name, collections.deque(maxlen=PER_NAME)).append(onset)
                self._class_onsets[propagation].append(onset)
            queue.extendleft(reversed(skipped))  # still pending, in their order
        return out

    def class_onsets(self, propagation: Propagation) -> list[float]:
        """Every measured onset (seconds) of one propagation class, oldest first."""
        with self._lock:
            return list(self._class_onsets[propagation])

    def onsets_ms(self) -> dict[str, float]:
        """Median measured onset per parameter, in milliseconds."""
        with self._lock:
            return {name: round(1000.0 * sorted(v)[len(v) // 2], 1) for name, v in self._onsets.items() if v}

"""The one control surface every front-end (OSC, MIDI, web, CLI) talks to.

It validates against the parameter registry, publishes to the StateStore, runs
named triggers, and remembers each change so the engine can report its measured
onset: the time from the change to the first output block that carries it.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from engine import InputError, Propagation, StateStore, StepState

MAX_PENDING = 4096  # unresolved changes kept per class; older ones are forgotten (and counted)


@dataclass(frozen=True)
class Change:
    name: str
    version: int  # StepState version that first holds the change
    at: float  # time.perf_counter() of the change


@dataclass
class ControlCounters:
    accepted: int = 0
    clamped: int = 0  # accepted after pulling an out-of-range number into range
    rejected: int = 0  # refused: unknown name, wrong type, NaN...
    triggers: int = 0
    onsets_forgotten: int = 0


class ControlSession:
    def __init__(self, store: StateStore, triggers: Mapping[str, Callable[[], None]] | None = None):
        self.store = store
        self.registry = store.registry
        self.triggers = dict(triggers or {})
        self.counters = ControlCounters()
        self.last_error: InputError | None = None
        self._lock = threading.Lock()
        self._pending: dict[Propagation, collections.deque[Change]] = {p: collections.deque() for p in Propagation}
        self._onsets: dict[str, collections.deque[float]] = {}
        self._class_onsets: dict[Propagation, collections.deque[float]] = {
            p: collections.deque(maxlen=100_000) for p in Propagation}

    # ---- writes ----------------------------------------------------------------------

    def set(self, name: str, value: Any, *, clamp: bool = True) -> StepState:
        return self.update({name: value}, clamp=clamp)

    def update(self, changes: Mapping[str, Any], *, clamp: bool = True) -> StepState:
        """Publish all changes as one StepState version; an InputError publishes none."""
        try:
            strict_ok = True
            for name, value in changes.items():
                try:
                    self.registry.coerce(name, value)
                except InputError:
                    if not clamp:
                        raise
                    strict_ok = False
            snapshot = self.store.update(changes, clamp=clamp)
        except InputError as err:
            self.counters.rejected += 1
            self.last_error = err
            raise
        self.counters.accepted += 1
        self.counters.clamped += 0 if strict_ok else 1
        now = time.perf_counter()
        with self._lock:
            for name in changes:
                queue = self._pending[self.registry[name].propagation]
                if len(queue) >= MAX_PENDING:
                    queue.popleft()
                    self.counters.onsets_forgotten += 1
                queue.append(Change(name, snapshot.version, now))
        return snapshot

    def trigger(self, name: str) -> None:
        action = self.triggers.get(name)
        if action is None:
            self.counters.rejected += 1
            self.last_error = InputError(f"trigger/{name}", f"unknown trigger; known: {', '.join(sorted(self.triggers))}")
            raise self.last_error
        self.counters.triggers += 1
        action()

    # ---- reads -----------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The current values, JSON-ready (curves as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.store.snapshot.values.items()}

    # ---- onsets ----------------------------------------------------------------------

    def heard(self, propagation: Propagation, version: int, at: float) -> list[tuple[str, float]]:
        """Output carrying every change of `propagation` up to `version` is heard at `at`.

        Resolves those changes and returns (name, onset seconds) for each.
        """
        out = []
        with self._lock:
            queue = self._pending[propagation]
            while queue and queue[0].version <= version:
                change = queue.popleft()
                onset = max(0.0, at - change.at)
                out.append((change.name, onset))
                self._onsets.setdefault(change.name, collections.deque(maxlen=256)).append(onset)
                self._class_onsets[propagation].append(onset)
        return out

    def class_onsets(self, propagation: Propagation) -> list[float]:
        """Every measured onset (seconds) of one propagation class, oldest first."""
        with self._lock:
            return list(self._class_onsets[propagation])

    def onsets_ms(self) -> dict[str, float]:
        """Median measured onset per parameter, in milliseconds."""
        with self._lock:
            return {name: round(1000.0 * sorted(v)[len(v) // 2], 1) for name, v in self._onsets.items() if v}

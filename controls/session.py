"""The one control surface every front-end (OSC, MIDI, web, CLI) talks to.

It validates against the parameter registry, publishes to the StateStore, runs the
engine's named triggers, and records each change with the engine's OnsetTracker, so
the engine can report its measured onset: the time from the change to the first
output block that carries it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from engine import InputError, StateStore, StepState
from engine.onsets import OnsetTracker

# A trigger may answer with changes (a retake's new seed): the session publishes them
# like any other, so they are counted and their onsets measured. Any other answer
# (None, or what a lambda's last call returned) publishes nothing.
Trigger = Callable[[], Any]


@dataclass
class ControlCounters:
    accepted: int = 0
    clamped: int = 0  # accepted after pulling an out-of-range number into range
    rejected: int = 0  # refused: unknown name, wrong type, NaN...
    triggers: int = 0
    onsets_forgotten: int = 0


class ControlSession:
    def __init__(self, store: StateStore, triggers: Mapping[str, Trigger] | None = None,
                 onsets: OnsetTracker | None = None):
        self.store = store
        self.registry = store.registry
        self.triggers = dict(triggers or {})
        self.onsets = onsets if onsets is not None else OnsetTracker()  # the engine's, where it measures them
        self.counters = ControlCounters()
        self.last_error: InputError | None = None

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
        self.counters.onsets_forgotten += self.onsets.changed(
            ((name, self.registry[name].propagation) for name in changes), snapshot.version, time.perf_counter())
        return snapshot

    def trigger(self, name: str) -> None:
        action = self.triggers.get(name)
        if action is None:
            self.counters.rejected += 1
            self.last_error = InputError(f"trigger/{name}", f"unknown trigger; known: {', '.join(sorted(self.triggers))}")
            raise self.last_error
        self.counters.triggers += 1
        changes = action()
        if isinstance(changes, Mapping) and changes:
            self.update(changes)

    # ---- reads -----------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        """The current values, JSON-ready (curves as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.store.snapshot.values.items()}

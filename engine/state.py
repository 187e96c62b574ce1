"""StepState: immutable snapshots of every parameter's current value.

Writers (MIDI, OSC, web threads) publish a whole new snapshot; readers take the
latest one with a single attribute read. The ring takes it once per tick, so a
change is never half-applied inside a batch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from .params import CORE_PARAMS, Propagation, Registry


@dataclass(frozen=True)
class StepState:
    """One published version of the parameter values. Never mutated."""

    version: int
    values: Mapping[str, Any]
    registry: Registry = CORE_PARAMS

    def of(self, propagation: Propagation) -> dict[str, Any]:
        """The values of every parameter of one propagation class."""
        return {name: self.values[name] for name in self.registry.names(propagation)}

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


class StateStore:
    """Holds the latest StepState; publishing validates against the registry."""

    def __init__(self, registry: Registry = CORE_PARAMS, initial: Mapping[str, Any] | None = None):
        self.registry = registry
        values = registry.defaults()
        for name, value in (initial or {}).items():
            values[name] = registry.coerce(name, value)
        self._lock = threading.Lock()  # serialises writers only; readers never lock
        self._snapshot = StepState(0, MappingProxyType(values), registry)

    @property
    def snapshot(self) -> StepState:
        return self._snapshot

    def set(self, name: str, value: Any, *, clamp: bool = False) -> StepState:
        return self.update({name: value}, clamp=clamp)

    def update(self, changes: Mapping[str, Any], *, clamp: bool = False) -> StepState:
        """Publish all `changes` as one new version, or none of them if one is bad."""
        coerced = {name: self.registry.coerce(name, value, clamp=clamp) for name, value in changes.items()}
        with self._lock:
            values = dict(self._snapshot.values)
            values.update(coerced)
            snapshot = StepState(self._snapshot.version + 1, MappingProxyType(values), self.registry)
            self._snapshot = snapshot
        return snapshot

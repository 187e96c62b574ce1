"""Rings kept by latent shape: a new shape starts a new ring while the older ones drain.

A stream whose window can change shape live (a loop length, a chunk size) runs one
Ring per shape, since a ring's rows are preallocated at one shape. A ring's key is
that shape, or the shape followed by whatever else fixes its buffers (the length of
a conditioning sequence, which the guidance stores per row): the maker reads it.
New work goes to
the current ring; an older ring admits nothing more (its request factory moves to
the current one) but finishes what it holds, so nothing in flight is dropped. Once
an older ring holds nothing it is retired: dropped, its counters added to the
totals. So memory does not grow with the number of shapes ever used, and the
totals never go backwards.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable, Iterator

from .ring import Ring
from .ring_outputs import Completion, RingCounters

Collect = Callable[[Ring, list[Completion]], None]


class RingSet:
    def __init__(self, make: Callable[[tuple[int, ...]], Ring]):
        self._make = make  # a new ring of the given key (its latent shape, and what else fixes it)
        self.current: Ring | None = None
        self.key: tuple[int, ...] | None = None  # the current ring's
        # (live rings with their keys, counters summed over the retired ones), replaced whole:
        # a reader on another thread (counters, the page's view) sees every ring counted once
        self._state: tuple[tuple[tuple[tuple[int, ...], Ring], ...], RingCounters] = ((), RingCounters())

    def use(self, key: tuple[int, ...]) -> Ring:
        """The ring new work of `key` goes to: the live ring of that key, or a new one."""
        key = tuple(int(n) for n in key)
        old = self.current
        if old is not None and self.key == key:
            return old
        rings, retired = self._state
        ring = next((r for k, r in rings if k == key), None)
        if ring is None:
            ring = self._make(key)
            self._state = (rings + ((key, ring),), retired)
        if old is not None:
            ring.factory, old.factory = old.factory, None
        self.current, self.key = ring, key
        return ring

    def busy(self) -> list[Ring]:
        """The rings with work: slots in flight, requests queued, or a factory to draw from."""
        return [r for r in self if r.occupied or r.queued or r.factory is not None]

    def tick(self, collect: Collect) -> bool:
        """Tick every busy ring, oldest first, handing its completions to `collect` before
        the next one ticks; then retire the drained ones. False when no ring ran a slot
        (a factory that refused, or none to draw from): the caller may then sleep rather
        than spin on empty ticks."""
        ran = False
        for ring in self.busy():
            done = ring.tick()
            collect(ring, done)
            ran = ran or bool(done) or ring.occupied > 0
        self._retire()
        return ran

    def drain(self, collect: Collect) -> None:
        """Run every ring until it holds nothing (the end of a stream)."""
        for ring in self:
            collect(ring, ring.run_until_idle())
        self._retire()

    def _retire(self) -> None:
        rings, retired = self._state
        gone = [r for _, r in rings if r is not self.current and not (r.occupied or r.queued)]
        if gone:
            keep = tuple((k, r) for k, r in rings if all(r is not g for g in gone))
            self._state = (keep, summed(retired, *(r.counters for r in gone)))

    # ---- what front-ends read ----------------------------------------------------------

    def totals(self) -> RingCounters:
        """Every counter summed over all the rings this set has run, retired ones included."""
        rings, retired = self._state
        return summed(retired, *(r.counters for _, r in rings))

    @property
    def occupied(self) -> int:
        return sum(r.occupied for r in self)

    def __iter__(self) -> Iterator[Ring]:
        return iter([r for _, r in self._state[0]])

    def __len__(self) -> int:
        return len(self._state[0])


def summed(*counters: RingCounters) -> RingCounters:
    return RingCounters(**{f.name: sum(getattr(c, f.name) for c in counters) for f in fields(RingCounters)})

"""What the pipelines that stream items through the ring share (video frames, voice chunks, music loops)."""

from __future__ import annotations

from typing import Any, Generic, Iterable, Iterator, TypeVar

from engine import Completion, Ring, StateStore

Carried = TypeVar("Carried")
Result = TypeVar("Result")


def depth_follows_steps(store: StateStore) -> None:
    """One item in and one out per tick needs as many slots as steps (up to the ring's
    capacity; beyond it items queue, which is not a live setting)."""
    state = store.snapshot
    depth = min(state["steps"], int(store.registry["depth"].maximum))
    if state["depth"] != depth:
        store.set("depth", depth)


def slot_view(rings: Iterable[Ring]) -> list[dict[str, Any]]:
    """The occupied slots of `rings`, by row, as the page draws them: where each stands in
    its own schedule (step of steps, its sigma, the schedule's sigmas)."""
    return [{"row": p.row, "request": p.request, "step": p.step, "steps": p.steps, "sigma": round(p.sigma, 4),
             "schedule": [round(s, 3) for s in p.schedule]}
            for ring in rings for p in sorted(ring.progress(), key=lambda p: p.row)]


class InOrder(Generic[Carried, Result]):
    """Items numbered as they go in; their results, which finish out of order (several
    in one tick, from more than one ring), come out strictly in that order: the
    decoders downstream are causal and carry their state from one item to the next."""

    def __init__(self) -> None:
        self.entered = 0
        self.released = 0
        self._carried: dict[int, Carried] = {}  # number -> what the item takes from going in to coming out
        self._number_of: dict[int, int] = {}  # request id -> number
        self._done: dict[int, Result] = {}  # number -> result waiting for its turn

    def enter(self, carried: Carried) -> int:
        number = self.entered
        self._carried[number] = carried
        self.entered += 1
        return number

    def awaits(self, number: int, request_id: int) -> None:
        """Item `number` comes back as the ring's request `request_id`."""
        self._number_of[request_id] = number

    def finish(self, number: int, result: Result) -> None:
        self._done[number] = result

    def complete(self, completion: Completion, result: Result) -> None:
        self.finish(self._number_of.pop(completion.request.id), result)

    def release(self) -> Iterator[tuple[Carried, Result]]:
        """(carried, result) of every item whose turn has come, in order."""
        while self.released in self._done:
            number = self.released
            self.released += 1
            yield self._carried.pop(number), self._done.pop(number)

    @property
    def idle(self) -> bool:
        """Nothing held: memory does not grow with the length of the stream."""
        return not (self._carried or self._number_of or self._done)

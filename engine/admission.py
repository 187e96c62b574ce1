"""Admission: submitted requests wait in a queue, the live request factory makes one
when the queue is empty, and each takes the next free row from the head; a depth
change compacts slots so that in-flight work is kept."""

from __future__ import annotations

import collections
from typing import Callable, Mapping

import torch

from .errors import InputError
from .request import Request
from .slots import SlotRows
from .state import StepState
from .trace import Admission

RequestFactory = Callable[[StepState], "Request | None"]


class Admitter:
    def __init__(
        self,
        rows: SlotRows,
        latent_shape: tuple[int, ...],
        *,
        depth: int,
        check_cond: Callable[[Mapping[str, torch.Tensor]], None],
        reject: Callable[[InputError], None],
        factory: RequestFactory | None = None,
        admit_per_tick: int | None = 1,
        max_queue: int = 1024,
        completed: Callable[[], int] = lambda: 0,
    ):
        self.rows = rows
        self.latent_shape = latent_shape
        self.depth = depth
        self.factory = factory
        self.admit_per_tick = admit_per_tick
        self.max_queue = max_queue
        self.queue: collections.deque[Request] = collections.deque()
        self.head = 0  # the row the next admission tries first
        self._check_cond = check_cond  # the guidance's: it stores the conditioning
        self._reject = reject  # counts the refusal and keeps it as the ring's last error
        self._completed = completed  # the ring's completions so far
        # (state version, completions) of the factory's last refusal: the same state with
        # nothing finished since gives the same refusal, so it is not asked again (a
        # refused live request would otherwise be refused, and counted, every tick)
        self._refused: tuple[int, int] | None = None

    def submit(self, request: Request) -> int:
        try:
            self._validate(request)
            if len(self.queue) >= self.max_queue:
                raise InputError("queue", f"admission queue is full ({self.max_queue} requests)")
        except InputError as err:
            self._reject(err)
            raise
        self.queue.append(request)
        return request.id

    def apply_depth(self, depth: int) -> None:
        if depth == self.depth:
            return
        if depth < self.depth:
            self._compact(depth)
        self.depth = depth
        self.head %= depth

    def admit(self, state: StepState, tick: int) -> tuple[Admission, ...]:
        """Seat waiting requests in free rows for `tick`, from the head on."""
        limit = self.admit_per_tick or self.rows.capacity
        admitted = []
        start = self.head
        for offset in range(self.depth):
            if len(admitted) >= limit:
                break
            row = (start + offset) % self.depth
            if self.rows.slots[row] is not None:
                continue
            request = self._next_request(state)
            if request is None:
                break
            sched = self.rows.place(row, request, tick).schedule
            self.head = (row + 1) % self.depth
            admitted.append(Admission(tick, row, request.id, request.params_version, sched.steps, sched.start))
        return tuple(admitted)

    def _next_request(self, state: StepState) -> Request | None:
        if self.queue:
            return self.queue.popleft()
        if self.factory is None:
            return None
        key = (state.version, self._completed())
        if key == self._refused:
            return None
        try:
            request = self.factory(state)
            if request is not None:
                self._validate(request)
        except InputError as err:
            # A bad live request must not stop the tick loop: count it, keep serving.
            self._reject(err)
            self._refused = key
            return None
        self._refused = None
        return request

    def _validate(self, request: Request) -> None:
        if not isinstance(request, Request):
            raise InputError("request", f"expected a Request, got {type(request).__name__}")
        if request.source is not None and tuple(request.source.shape) != self.latent_shape:
            raise InputError(
                "source",
                f"latent shape {tuple(request.source.shape)} does not match the ring's {self.latent_shape}",
            )
        self._check_cond(request.cond)

    def _compact(self, depth: int) -> None:
        """Move slots that sit at rows >= depth into free rows below it."""
        free = [r for r in range(depth) if self.rows.slots[r] is None]
        for src in range(depth, self.rows.capacity):
            if self.rows.slots[src] is None or not free:
                continue
            self.rows.move(src, free.pop(0))

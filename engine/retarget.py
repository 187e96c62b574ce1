"""Retargeting: moving every in-flight slot onto a new schedule.

Any thread may ask; the ring thread applies the latest request at the start of its
next tick, so a tick never sees slots half moved.
"""

from __future__ import annotations

import threading
from typing import Callable

from .errors import InputError
from .request import Request
from .schedule import Schedule
from .slots import SlotRows

ScheduleFor = Callable[[Request], Schedule]


class PendingRetarget:
    def __init__(self) -> None:
        self._schedule_for: ScheduleFor | None = None
        self._lock = threading.Lock()

    def ask(self, schedule_for: ScheduleFor) -> None:
        with self._lock:
            self._schedule_for = schedule_for

    def apply(self, rows: SlotRows, reject: Callable[[InputError], None]) -> int:
        """Retarget every occupied row of `rows`; returns how many moved. A schedule
        that cannot be made is refused through `reject` and its slot keeps its own."""
        with self._lock:
            schedule_for, self._schedule_for = self._schedule_for, None
        if schedule_for is None:
            return 0
        moved = 0
        for row, slot in enumerate(rows.slots):
            if slot is None:
                continue
            try:
                new = schedule_for(slot.request)
                if not isinstance(new, Schedule):
                    raise InputError("schedule", f"retarget gave {type(new).__name__}, not a Schedule")
            except InputError as err:
                reject(err)
                continue
            rows.retarget(row, new)
            moved += 1
        return moved

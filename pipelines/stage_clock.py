"""Where a frame's time goes: seconds per named stage, summed over the frames a stream ran.

A stream (video SR's decode, colour conversion, networks, blend and encode) times each
stage with `with clock("name"):`; the benchmark and the render's stats read milliseconds
per frame from it. The cost is two perf_counter reads per stage.
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator


class StageClock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - began

    def ms_per_frame(self, frames: int) -> dict[str, float]:
        """Each stage's milliseconds per frame, in the order stages first ran."""
        return {stage: 1000 * s / frames for stage, s in self.seconds.items()} if frames else {}

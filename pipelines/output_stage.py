"""Output-class controls applied where samples leave for the device.

Decoded audio runs a whole lead (often more than a second) ahead of the playhead, so a
gain applied at decode is heard that lead later. The sink's consumer (the audio
callback, or the null sink's clock) instead reads the newest gain for every block it
hands to the device: a change is heard one device block later, whatever the lead. A
gain change ramps linearly across that block, so a jump makes no click.

The consumer never waits or allocates: `source` is a plain read of the newest
snapshot, and the ramp is written into a preallocated buffer.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

# (gain, version of the state it was read from); called once per device block
OutputSource = Callable[[], tuple[float, int]]
STAMPS = 256  # versions remembered between two reports (a report comes every few blocks)


class OutputStage:
    def __init__(self, frames: int = 512):
        self.source: OutputSource | None = None
        self.gain = 1.0  # the gain the last block ended at
        self.version = -1  # the state version the last block was read from
        # when the first block of each new version left: a preallocated ring the engine
        # reads in order (heard_since), so each change is resolved at its own version's
        # block, not at a later one's
        self._versions = np.zeros(STAMPS, np.int64)
        self._times = np.zeros(STAMPS, np.float64)
        self.stamps = 0  # stamps written in all
        self._ramp = np.empty(0, np.float32)
        self._ensure(frames)

    def _ensure(self, frames: int) -> None:
        if len(self._ramp) < frames:  # only when the device changes its block size
            self._ramp = np.empty(frames, np.float32)
            self._steps = np.arange(1, frames + 1, dtype=np.float32)

    def apply(self, block: np.ndarray) -> None:
        """Scale a (frames, channels) block in place by the newest gain."""
        if self.source is None:
            return
        gain, version = self.source()
        if version != self.version:
            self.version = version
            i = self.stamps % STAMPS
            self._versions[i], self._times[i] = version, time.perf_counter()
            self.stamps += 1
        start = self.gain
        if gain == start:
            if gain != 1.0:
                block *= gain
            return
        n = len(block)
        self._ensure(n)
        ramp = self._ramp[:n]
        np.multiply(self._steps[:n], (gain - start) / n, out=ramp)  # reaches `gain` on the last frame
        ramp += start
        block *= ramp[:, None]
        self.gain = gain

    @property
    def heard(self) -> tuple[int, float] | None:
        """(version, when its first block left) of the newest version, or None."""
        if not self.stamps:
            return None
        i = (self.stamps - 1) % STAMPS
        return int(self._versions[i]), float(self._times[i])

    def heard_since(self, seen: int) -> tuple[list[tuple[int, float]], int]:
        """The stamps written after the first `seen` (at most the ring's worth), oldest
        first, and the count to pass next time."""
        end = self.stamps
        return [(int(self._versions[k % STAMPS]), float(self._times[k % STAMPS]))
                for k in range(max(seen, end - STAMPS), end)], end

"""A preallocated single-producer single-consumer ring of audio samples.

The engine thread writes decoded blocks; the audio callback reads exactly one block
per call. The callback never allocates or waits: it copies a block out (two slices
when it wraps) or, when too little is buffered, writes silence and counts it. Each
index is written by one side only, and a Python int assignment is atomic, so no lock
is needed.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    def __init__(self, capacity: int, channels: int = 1):
        if capacity < 1 or channels < 1:
            raise ValueError(f"capacity and channels must be positive, got {capacity}, {channels}")
        self.capacity = int(capacity)
        self._buf = np.zeros((self.capacity, channels), dtype=np.float32)
        self._written = 0  # total frames written (producer only)
        self._read = 0  # total frames read (consumer only)
        self.starved = 0  # callbacks that found less than a block and wrote silence

    def available(self) -> int:
        return self._written - self._read

    def free(self) -> int:
        return self.capacity - self.available()

    def write(self, samples: np.ndarray) -> int:
        """Append what fits of (n,) or (n, channels) samples; returns frames written."""
        data = samples.reshape(len(samples), -1)
        n = min(len(data), self.free())
        self._copy_in(self._written, data[:n])
        self._written += n
        return n

    def _copy_in(self, start: int, data: np.ndarray) -> None:
        """(n, channels) frames into the buffer at total index `start`, wrapping."""
        at = start % self.capacity
        first = min(len(data), self.capacity - at)
        self._buf[at : at + first] = data[:first]
        self._buf[: len(data) - first] = data[first:]

    def _copy_out(self, start: int, n: int) -> np.ndarray:
        """A copy of the `n` buffered frames at total index `start`, unwrapped."""
        at = start % self.capacity
        head = min(n, self.capacity - at)
        return np.concatenate([self._buf[at : at + head], self._buf[: n - head]])

    @property
    def written(self) -> int:
        """Total frames the producer has written (the index the next write lands at)."""
        return self._written

    def peek(self, start: int, n: int) -> np.ndarray:
        """Producer only: a copy of the `n` frames written at total index `start` on (they
        must still be buffered: not yet overwritten)."""
        if start < self._written - self.capacity or start + n > self._written:
            raise ValueError(f"frames [{start}, {start + n}) are not buffered ({self._written} written)")
        return self._copy_out(start, n)

    def replace(self, start: int, samples: np.ndarray, guard: int) -> bool:
        """Producer only: write (n,) or (n, channels) samples over the frames written at
        total index `start` on, dropping what was written after them, in one step: the
        write index moves once, so the consumer never finds the buffer short between
        the two. False, changing nothing, if the consumer is within `guard` frames of
        `start` (it may be copying a block there: the read index is read once) or the
        samples do not fit."""
        data = samples.reshape(len(samples), -1)
        n = len(data)
        if self._read + guard > start or start > self._written or start + n - self._read > self.capacity:
            return False
        self._copy_in(start, data)
        self._written = start + n
        return True

    @property
    def played(self) -> int:
        """Total frames the consumer has taken."""
        return self._read

    def played_since(self, since: int) -> tuple[np.ndarray, int]:
        """A copy of the frames the consumer took from total index `since` on (at most
        the ring's capacity back), and the index it reached: for readers that follow
        what the device played."""
        end = self._read
        start = max(since, end - self.capacity + 1)
        return self._copy_out(start, max(0, end - start)), end

    def read_into(self, out: np.ndarray) -> bool:
        """Fill `out` (frames, channels) with the next block, or silence if short."""
        n = len(out)
        if self.available() < n:
            out.fill(0.0)
            self.starved += 1
            return False
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        out[first:] = self._buf[: n - first]
        self._read += n
        return True

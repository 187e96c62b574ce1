"""A one-line progress bar on stderr (only when stderr is a terminal or forced)."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    def __init__(self, stream=None, width: int = 30, force: bool = False):
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = force or self.stream.isatty()
        self._last = 0.0

    def update(self, stage: str, done: int, total: int) -> None:
        """`total` 0 means unknown."""
        now = time.monotonic()
        if not self.enabled or ((total <= 0 or done < total) and now - self._last < 0.1):
            return
        self._last = now
        if total <= 0:  # a stream of unknown length: a count only
            self.stream.write(f"\r{stage:8} {done}")
            self.stream.flush()
            return
        filled = int(self.width * done / max(total, 1))
        self.stream.write(f"\r{stage:8} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}")
        self.stream.flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

"""Per-client message rate limits: a token bucket each, so a flood from one sender is
dropped and counted before it costs the engine anything beyond reading the datagram.

A controller's burst (a fader swept from end to end) fits in the bucket; a sustained
flood is held to `rate` per second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Hashable


@dataclass
class TokenBucket:
    rate: float  # messages per second, sustained
    burst: float  # messages accepted at once from a full bucket
    tokens: float = field(default=-1.0)  # starts full
    stamp: float = field(default=-1.0)

    def take(self, now: float) -> bool:
        """True if one message may pass at time `now` (seconds, monotonic)."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class RateLimits:
    """One bucket per sender (an address, a connection), at most `max_senders` remembered:
    a flood of spoofed source addresses cannot grow the table without bound."""

    def __init__(self, rate: float, burst: float, max_senders: int = 4096,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.max_senders, self.clock = rate, burst, max_senders, clock
        self._buckets: dict[Hashable, TokenBucket] = {}

    def allow(self, sender: Hashable) -> bool:
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= self.max_senders:
                self._buckets.pop(next(iter(self._buckets)))  # the oldest sender makes room
            bucket = self._buckets[sender] = TokenBucket(self.rate, self.burst)
        return bucket.take(self.clock())

    def forget(self, sender: Hashable) -> None:
        self._buckets.pop(sender, None)

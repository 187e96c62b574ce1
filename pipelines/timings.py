"""Recent work times summarised as the live counters report them (p50/p99 and the like)."""

from __future__ import annotations

from typing import Iterable


def quantile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile as the order statistic at or below it (no interpolation); None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def p50_p99_ms(seconds: Iterable[float]) -> tuple[float | None, float | None]:
    """Median and 99th percentile of times in seconds, in ms to 0.1 (None when there are none)."""
    ordered = sorted(seconds)
    if not ordered:
        return None, None
    return round(1000.0 * quantile(ordered, 0.5), 1), round(1000.0 * quantile(ordered, 0.99), 1)

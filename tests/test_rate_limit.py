"""The per-sender token buckets that hold OSC and websocket floods to a rate."""

import pytest

from controls.rate_limit import RateLimits


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_burst_passes_then_the_rate_holds_and_the_bucket_refills():
    clock = Clock()
    limits = RateLimits(rate=100, burst=10, clock=clock)
    assert sum(limits.allow("a") for _ in range(50)) == 10  # the burst, then nothing at the same instant
    clock.now = 0.5  # half a second refills 50, capped at the burst
    assert sum(limits.allow("a") for _ in range(50)) == 10
    passed = 0
    for i in range(1000):  # a sustained flood at 1,000/s for one second: the full bucket, then the rate
        clock.now = 1.0 + i / 1000
        passed += limits.allow("a")
    assert 10 + 95 <= passed <= 10 + 101


def test_senders_have_their_own_buckets_and_the_table_is_bounded():
    clock = Clock()
    limits = RateLimits(rate=1, burst=2, max_senders=3, clock=clock)
    assert [limits.allow("a") for _ in range(3)] == [True, True, False]
    assert limits.allow("b")  # another sender is not held back by the first
    for sender in "cdefg":
        limits.allow(sender)
    assert len(limits._buckets) == 3
    assert limits.allow("a")  # forgotten, so it starts again with a full bucket


@pytest.mark.parametrize("rate,burst", [(0, 5), (10, 0)])
def test_a_limit_that_passes_nothing_is_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimits(rate, burst)

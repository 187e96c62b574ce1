"""Freed heap pages go back to the OS after a live shape change (pipelines/memory.py)."""

import gc
import sys

import pytest

from pipelines.memory import release_freed_memory


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_freed_heap_pages_are_handed_back():
    blocks = [bytes(2000) + i.to_bytes(4, "little") for i in range(60_000)]  # ~120 MB on malloc's heap
    pin = blocks[-1]  # the top of the heap stays in use, so only a trim can return the rest
    del blocks
    gc.collect()
    before = rss_mb()
    assert release_freed_memory()
    assert before - rss_mb() > 60, (before, rss_mb())
    assert pin


def test_a_retired_ring_is_freed_at_once_not_when_the_collector_gets_round_to_it(engine):
    """Loop-length changes retire rings; their buffers must go when they retire (a ring
    refers to itself, so only a collection frees it: one runs at each retire)."""
    import time
    import weakref

    live, web = engine
    # this engine's rings only: another test's engine in this process may hold a ring of its own
    made_here = [weakref.ref(r) for r in live.rings]
    for change in ({"loop_seconds": 2.0}, {"loop_seconds": 2.5}, {"depth": 4, "loop_seconds": 3.0}):
        made = live.counters.rings
        web.session.update(change)
        end = time.monotonic() + 30
        while time.monotonic() < end and not (live.counters.rings > made and len(live.rings) == 1):
            made_here += [weakref.ref(r) for r in live.rings]
            time.sleep(0.05)
        made_here += [weakref.ref(r) for r in live.rings]
        assert live.counters.rings > made and len(live.rings) == 1, change
    time.sleep(0.5)  # a tick after the last retire
    alive = {id(r()) for r in made_here if r() is not None}
    assert len(alive) == 1, f"{len(alive)} of this engine's rings alive, {live.counters.rings} made"

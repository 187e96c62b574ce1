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

"""A higher scheduling priority for the threads that feed the audio device.

The feeder decodes the blocks the device plays next; when the machine is busy (a
training, a browser, the tick loop's own torch threads) it must win the CPU first, or
the output starves. Linux takes a nice value per thread (by its native id); lowering it
below 0 needs CAP_SYS_NICE or an RLIMIT_NICE allowance. Where the OS refuses, one line
says so and the thread runs at the normal priority.
"""

from __future__ import annotations

import os
import sys
import threading

PRODUCER_NICE = -10  # ahead of ordinary work (0), behind the audio server's own real-time threads
_said: set[str] = set()
_lock = threading.Lock()


def raise_priority(role: str, nice: int = PRODUCER_NICE) -> bool:
    """Give the calling thread `nice`; True if it took. A refusal is said once per role."""
    try:
        if not sys.platform.startswith("linux"):  # elsewhere PRIO_PROCESS takes a process, not a thread
            raise OSError("per-thread priorities are Linux's")
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(nice, os.getpriority(os.PRIO_PROCESS, tid)))
        return True
    except (PermissionError, OSError, AttributeError) as err:
        with _lock:
            if role not in _said:
                _said.add(role)
                reason = getattr(err, "strerror", None) or str(err)
                print(f"{role}: runs at normal priority (the OS refused nice {nice}: {reason}); "
                      "a busy machine may starve the output", file=sys.stderr, flush=True)
        return False

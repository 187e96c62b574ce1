"""The audio producer's scheduling priority: raised where the OS allows, one line where not."""

import os
import threading

from pipelines import thread_priority
from pipelines.thread_priority import raise_priority


def in_a_thread(fn):
    out = {}

    def run():
        out["result"] = fn()
        out["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out


def test_the_calling_thread_alone_gets_the_priority():
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def lowered_then_raised():
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), here + 5)  # always allowed
        return raise_priority("test producer", nice=here + 2)

    got = in_a_thread(lowered_then_raised)
    # raising a priority needs CAP_SYS_NICE (or an RLIMIT_NICE allowance): where refused, it stays
    assert got == {"result": True, "nice": here + 2} or got == {"result": False, "nice": here + 5}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # this thread untouched


def test_a_priority_already_higher_is_never_lowered():
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert in_a_thread(lambda: raise_priority("test producer", nice=here + 3)) == {"result": True, "nice": here}


def test_a_refusal_is_said_once_and_the_thread_runs_on(monkeypatch, capsys):
    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(thread_priority.os, "setpriority", refuse)
    monkeypatch.setattr(thread_priority, "_said", set())
    assert not raise_priority("test feeder") and not raise_priority("test feeder")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "test feeder: runs at normal priority" in err[0] and "Permission denied" in err[0]

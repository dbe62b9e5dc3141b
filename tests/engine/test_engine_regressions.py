"""Engine bugs found by the stress harness, each kept fixed by a test.

- `interrupt()` was starved while hits kept streaming in: the wake-up fd was read only when a wait
  found nothing else to do.
- `kill()` hung when the program had been resumed and then stopped on its own (a clone child's first
  stop, nobody waiting): that child's status was set aside as someone else's and it was never let go.
"""

from __future__ import annotations

import os
import time

import pytest

import ptstub
from ptstub.events import BreakpointHit, Interrupted
from ptstub.target import ResumeAction


@pytest.mark.timeout(60, method="thread")
def test_interrupt_is_reported_while_hits_stream_in(fixture_path) -> None:
    program = fixture_path("stress")
    with ptstub.launch([program, "--threads", "8", "--calls", "3000000", "--syscall", "none"]) as inf:
        inf.insert_breakpoint(inf.symbol("hit_target"))
        for _ in range(50):  # let the hits flow: every thread is busy hitting the breakpoint
            assert isinstance(inf.cont(timeout=10), BreakpointHit)
        inf.interrupt()
        for _ in range(200):  # pending hits may be reported first; the interrupt must follow
            event = inf.cont(timeout=10)
            if isinstance(event, Interrupted):
                break
            assert isinstance(event, BreakpointHit)
        else:
            pytest.fail("interrupt() was never reported while hits kept coming")


@pytest.mark.timeout(60, method="thread")
def test_kill_after_an_unwaited_resume_is_prompt(fixture_path) -> None:
    program = fixture_path("stress")
    inf = ptstub.launch([program, "--threads", "1", "--calls", "5", "--syscall", "read"])
    pid = inf.pid
    inf.resume(default=ResumeAction())
    deadline = time.monotonic() + 10
    while _state(pid) != "t":  # the leader stops at its clone event; nobody waits for it
        assert time.monotonic() < deadline, "the program never reached its first thread creation"
        time.sleep(0.005)  # polling for a state change, bounded by the deadline
    started = time.monotonic()
    inf.kill()
    inf.close()
    assert time.monotonic() - started < 2.0, "kill() waited for a status that could not come"
    assert not os.path.exists(f"/proc/{pid}") or _state(pid) in ("Z", "X", "")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return ""

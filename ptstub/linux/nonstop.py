"""Non-stop run control of one process (GDB's `QNonStop:1`): threads run and stop one by one.

The engine's non-stop calls (csrc/ptcore_nonstop.c) resume only the stopped threads given an action,
wait for one thread's event while the others run on, and stop one thread with PTRACE_INTERRUPT
(ptrace(2)). Every function takes the process's engine (`pt_engine *`); `Inferior` delegates its
non-stop members of the `Target` seam here.
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Mapping

from ptstub.linux.ffi import check, check_thread, lib
from ptstub.target import ResumeAction

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.linux.actions import ResumePlan


def resume_threads(e: Any, plan: ResumePlan, actions: Mapping[int, ResumeAction]) -> None:
    """Start the stopped threads named in `actions` (`ResumePlan.write_stopped`); the others keep their state."""
    plan.write_stopped(e, actions)
    check(lib.pt_resume_some(e), "resume")


def event_ready(e: Any, timeout_ms: int, wake_fd: int | None) -> bool:
    """Wait for one thread's event (True: the engine reports it); False on timeout, when `wake_fd` is
    readable, or when no thread runs and nothing is pending (-ECHILD)."""
    rc = lib.pt_wait_one(e, timeout_ms, -1 if wake_fd is None else wake_fd)
    if rc == 1:
        return True
    if rc != -errno_mod.ECHILD:
        check(rc, "wait")
    return False


def stop_thread(e: Any, tid: int) -> bool:
    """Ask running thread `tid` to stop (its stop is reported as `Interrupted`); False when it was not
    running, so nothing will be reported for it. NoSuchThreadError when it is not a thread here."""
    rc = lib.pt_stop_thread(e, tid)
    if rc == -errno_mod.ESRCH:
        check_thread(rc, "stop", tid)
    return rc == 1


def is_running(e: Any, tid: int) -> bool:
    index = lib.pt_find_thread(e, tid)
    return index >= 0 and e.threads[index].state == lib.PT_RUNNING

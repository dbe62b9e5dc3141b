"""The engine's event records as typed `StopEvent`s (ptstub.events).

The engine keeps one pending event per thread (`ev_kind`, `ev_pc`, `ev_sig`, `ev_data` of `pt_thread`,
csrc/ptcore.h) and names the one to report (`e->reported`); `take_event` consumes it
(`pt_take_event`) and gives its typed value. What an event changes in the process's Python-side
records happens here too: a reported signal is held until GDB decides on it (`ResumePlan`), an exec
forgets the old image's breakpoints. The process's end is `process_end`, from its wait status
(wait(2): WIFEXITED/WIFSIGNALED).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ptstub.errors import TargetError
from ptstub.events import (
    BreakpointHit,
    Exec,
    Exited,
    Forked,
    Interrupted,
    Killed,
    SignalReceived,
    StepDone,
    StopEvent,
    SyscallStop,
    ThreadExited,
    VforkDone,
)
from ptstub.linux.ffi import check, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.linux.actions import ResumePlan
    from ptstub.linux.breakpoints import BreakpointTable


def take_event(e: Any, breakpoints: BreakpointTable, plan: ResumePlan, executable: Callable[[], str]) -> StopEvent:
    """The event of the thread the engine reports (`e.reported`, not NULL), taken from its record;
    `executable()` names the program an exec loaded."""
    t = e.reported
    kind, tid, pc = lib.pt_take_event(e, t), t.tid, t.ev_pc
    if kind == lib.PT_EV_BREAKPOINT:
        return BreakpointHit(tid, pc, engine_verdict=int(t.ev_data))
    if kind == lib.PT_EV_STEP:
        return StepDone(tid, pc)
    if kind == lib.PT_EV_SIGNAL:
        plan.held_signals[tid] = t.ev_sig
        return SignalReceived(tid, pc, t.ev_sig)
    if kind == lib.PT_EV_INTERRUPT:
        return Interrupted(tid, pc)
    if kind == lib.PT_EV_HWTRAP:
        return breakpoints.hardware_event(tid, pc, t.ev_data)
    if kind == lib.PT_EV_EXEC:
        breakpoints.forget()  # the old image and its int3 bytes are gone
        plan.held_signals.clear()  # so are the other threads
        return Exec(tid, pc, executable())
    if kind in (lib.PT_EV_FORK, lib.PT_EV_VFORK):
        return Forked(tid, pc, int(t.ev_data), kind == lib.PT_EV_VFORK)
    if kind == lib.PT_EV_VFORK_DONE:
        return VforkDone(tid, pc)
    if kind == lib.PT_EV_SYSCALL:
        return SyscallStop(tid, pc, int(t.ev_data), bool(t.ev_sig))
    if kind == lib.PT_EV_THREAD_EXITED:  # pt_take_event made its record PT_GONE
        status = int(t.ev_data)
        return ThreadExited(tid, os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0)
    raise TargetError(f"engine reported unknown event kind {kind}")


def process_end(pid: int, status: int) -> Exited | Killed:
    """The end of process `pid` from its wait status."""
    if os.WIFSIGNALED(status):
        return Killed(pid, os.WTERMSIG(status))
    return Exited(pid, os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0)


def select_attach_signal(e: Any) -> bool:
    """Make a signal stop collected while attaching the one the engine reports; False if there is none.

    gdbserver reports a signal that arrives with the attach in place of the attach's SIGSTOP, and GDB
    then says the program received it (gdb.threads/attach-into-signal.exp)."""
    for i in range(e.nthreads):
        t = e.threads[i]
        if t.ev_kind == lib.PT_EV_SIGNAL and t.state == lib.PT_STOPPED:
            check(lib.pt_select_report(e, t.tid), "report")
            return True
    return False

"""Typed stop events: what the all-stop engine reports once every thread is stopped.

One frozen value per kind of stop. The engine produces them; the RSP session turns them into stop
replies and the stress harness into statistics. Thread-level events carry the tid of the thread that
is reported; process-level ones (exit, kill) carry only the status.
"""

from __future__ import annotations

import signal as _signal
from enum import Enum

from ptstub.values import frozen


class WatchKind(Enum):
    """What a hardware watchpoint triggers on (GDB's `watch`, `rwatch`, `awatch`)."""

    WRITE = "watch"
    READ = "rwatch"
    ACCESS = "awatch"


@frozen
class BreakpointHit:
    """A thread stopped on a breakpoint; `pc` already rewound to the breakpoint's address."""

    tid: int
    pc: int
    hardware: bool = False
    # What the engine decided here when the breakpoint has target-side conditions or commands
    # installed in it (ptstub.engine_conditions.Verdict); 0: nothing, the session evaluates them.
    engine_verdict: int = 0


@frozen
class WatchpointHit:
    """A hardware watchpoint triggered; `address` is the watched address that was accessed."""

    tid: int
    pc: int
    address: int
    kind: WatchKind


@frozen
class StepDone:
    """A single-step (or range step) of `tid` finished."""

    tid: int
    pc: int


@frozen
class SignalReceived:
    """A signal is about to be delivered to `tid`; it is delivered on resume unless suppressed."""

    tid: int
    pc: int
    signal: int

    @property
    def name(self) -> str:
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"SIG{self.signal}"


@frozen
class Interrupted:
    """The world was stopped on request (`Inferior.interrupt()`, Ctrl-C); `tid` is the thread shown."""

    tid: int
    pc: int


@frozen
class Exec:
    """A thread called execve successfully; the process now runs `path` (thread table reset)."""

    tid: int
    pc: int
    path: str


@frozen
class Forked:
    """A thread forked (or vforked); the child is stopped and traced, as GDB's fork events expect."""

    tid: int
    pc: int
    child_pid: int
    vfork: bool = False


@frozen
class VforkDone:
    """The vfork child released the parent's memory (exec or exit)."""

    tid: int
    pc: int


@frozen
class SyscallStop:
    """A caught system call: entry (`returned=False`) or return."""

    tid: int
    pc: int
    number: int
    returned: bool


@frozen
class ThreadExited:
    """A thread other than the leader ended (reported only with `set_options(thread_exits=True)`)."""

    tid: int
    code: int


@frozen
class Exited:
    """The process exited normally with `code`."""

    pid: int
    code: int


@frozen
class Killed:
    """The process was terminated by `signal`."""

    pid: int
    signal: int


ThreadStop = (
    BreakpointHit | WatchpointHit | StepDone | SignalReceived | Interrupted | Exec | Forked | VforkDone | SyscallStop
)
ProcessEnd = Exited | Killed
StopEvent = ThreadStop | ThreadExited | ProcessEnd

"""Typed stop events: what the all-stop engine reports once every thread is stopped.

One frozen value per kind of stop. The engine produces them; the RSP session turns them into stop
replies and the stress harness into statistics. Thread-level events carry the tid of the thread that
is reported; process-level ones (exit, kill) carry only the status.
"""

from __future__ import annotations

from enum import Enum, IntEnum

from ptstub.values import frozen


def signal_name(number: int) -> str:
    """`SIGSEGV` for 11, `SIG<n>` for a number without a name of its own (a real-time signal).

    The one user of the `signal` module's `Signals` enum, imported here when first needed: the stub's
    modules take their signal numbers and `signal()` from `_signal`, since building `signal`'s three
    enums cost ~1 ms at every start."""
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


class WatchKind(Enum):
    """What a hardware watchpoint triggers on (GDB's `watch`, `rwatch`, `awatch`)."""

    WRITE = "watch"
    READ = "rwatch"
    ACCESS = "awatch"


class Verdict(IntEnum):
    """What the backend decided at a hit of a breakpoint it judges (`Target.judge_breakpoint`), carried by
    the `BreakpointHit` it reports (`engine_verdict`; `PT_JUDGE_*` of csrc/agenthit.h)."""

    NONE = 0  # nothing installed there: the session judges, as before
    REPORT = 1  # a condition held (or failed: counted as true) and there are no commands
    PASS = 2  # never reported: the hit was passed in the backend
    FAILED = 3  # a command failed: the session tells the user once, and the hit is not reported


@frozen
class BreakpointHit:
    """A thread stopped on a breakpoint; `pc` already rewound to the breakpoint's address."""

    tid: int
    pc: int
    hardware: bool = False
    # What the backend decided here when it judges the breakpoint's target-side conditions and
    # commands (a `Verdict`); 0: nothing, the session evaluates them.
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
        return signal_name(self.signal)


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

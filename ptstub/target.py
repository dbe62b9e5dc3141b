"""The seam between the RSP session and a backend: what a debug target must offer.

`Session` (and the stress harness) call only this protocol; `ptstub.linux.Inferior` implements it.
Everything here speaks in tids, addresses, raw register bytes and typed stop events, never RSP syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from ptstub.events import StopEvent
from ptstub.values import frozen

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # a structural type for mypy; at run time a plain base with the documented methods


class ResumeKind(Enum):
    """How one thread is to run on the next resume."""

    CONTINUE = "c"
    STEP = "s"
    RANGE_STEP = "r"  # step while start <= pc < end (GDB's vCont;r)


@frozen
class ResumeAction:
    """What one thread does on resume; `signal` 0 means deliver nothing."""

    kind: ResumeKind = ResumeKind.CONTINUE
    signal: int = 0
    range_start: int = 0
    range_end: int = 0


class ThreadState(Enum):
    """A traced thread's state as the engine sees it (docs/kernel-facts.md §2)."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    EXITING = "exiting"
    GONE = "gone"


@frozen
class ThreadInfo:
    """One live thread: its tid, its name (/proc comm) and the CPU it last ran on.

    `thread_pointer` is its fs_base, which glibc and musl on x86-64 make the thread's `pthread_t`
    (`pthread_self()`); 0 while unknown (before the C library set up TLS, or never read)."""

    tid: int
    name: str
    core: int
    state: ThreadState
    thread_pointer: int = 0


class BreakpointKind(Enum):
    """The Z-packet breakpoint kinds (Z0..Z4)."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE_WATCH = 2
    READ_WATCH = 3
    ACCESS_WATCH = 4


class Target(Protocol):
    """A stopped-or-running debuggee as the session needs it."""

    @property
    def pid(self) -> int: ...

    @property
    def alive(self) -> bool: ...

    def threads(self) -> list[ThreadInfo]: ...

    def resume(self, actions: Mapping[int, ResumeAction], default: ResumeAction | None = None) -> None:
        """Start the threads named in `actions` (and every other thread with `default`); others stay stopped."""
        ...

    def wait(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        """Block until a stop (all threads stopped) or until `wake_fd` is readable / `timeout` passes (None)."""
        ...

    def interrupt(self) -> None:
        """Ask for a stop of the whole process; the next `wait` reports it as `Interrupted`."""
        ...

    def cancel_interrupt(self) -> None:
        """Withdraw an `interrupt()` that no `wait` has acted on yet."""
        ...

    # Non-stop mode (GDB's `QNonStop:1`): threads run and stop one by one.
    def resume_threads(self, actions: Mapping[int, ResumeAction]) -> None:
        """Start the stopped threads named in `actions`; running threads keep running, others stay stopped."""
        ...

    def wait_event(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        """The next event of one thread, the others left as they are; None on timeout, `wake_fd`
        readable, or when nothing runs and nothing is pending."""
        ...

    def stop_thread(self, tid: int) -> bool:
        """Ask a running thread to stop (reported as `Interrupted`); False if it was not running."""
        ...

    def is_running(self, tid: int) -> bool: ...

    def any_running(self) -> bool: ...

    def read_memory(self, address: int, length: int) -> bytes: ...

    def write_memory(self, address: int, data: bytes) -> None: ...

    def read_gpr(self, tid: int) -> bytes:
        """The raw `struct user_regs_struct` of `tid` (216 bytes on x86-64)."""
        ...

    def write_gpr(self, tid: int, data: bytes) -> None: ...

    def read_xstate(self, tid: int) -> bytes:
        """The raw NT_X86_XSTATE regset (FXSAVE legacy area + XSAVE header + extended state)."""
        ...

    def write_xstate(self, tid: int, data: bytes) -> None: ...

    def insert_breakpoint(
        self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1
    ) -> None: ...

    def remove_breakpoint(
        self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1
    ) -> None: ...

    def read_auxv(self) -> bytes: ...

    def read_siginfo(self, tid: int) -> bytes: ...

    def write_siginfo(self, tid: int, data: bytes) -> None: ...

    def executable(self) -> str: ...

    def kill(self) -> None: ...

    def detach(self, pass_signal: Callable[[int], bool] | None = None) -> None:
        """Let the process go; a signal the last stop reported goes with it if `pass_signal` says so."""

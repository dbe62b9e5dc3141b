"""The seam between the RSP session and a backend: what a debug target must offer.

Three protocols, each implemented in `ptstub.linux` and handed to the session by whoever builds it
(`ptstub.cli`):

- `Target`: one traced process (`ptstub.linux.Inferior`).
- `ProcessGroup`: every process the session serves, resumed and waited for together, so that GDB's
  all-stop contract holds across processes (`ptstub.linux.group.LinuxProcessGroup`).
- `HostServices`: what the session asks of the machine rather than of a process (`info os` tables,
  the executable of a pid it does not trace, whether a libthread_db can be found).

The session calls nothing else; it never imports `ptstub.linux` (tests/unit/test_seam.py checks it).
Everything here speaks in tids, addresses, raw register bytes and typed stop events, never RSP syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
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


@frozen
class AgentCode:
    """A software breakpoint's target-side conditions and commands (GDB's `Z0,addr,kind;X...;cmds:...`,
    agent-expression bytecode), with what a backend needs to run them at the hit by itself."""

    conditions: tuple[bytes, ...]  # the hit is reported when one holds (none: always)
    commands: tuple[bytes, ...]  # run at a hit whose condition holds; such a hit is not reported
    registers: tuple[tuple[int, int], ...]  # by GDB number: (offset, size) in `read_gpr`'s bytes; size 0: absent
    output_fd: int  # where a command's printf writes


class LibraryEntry(Protocol):
    """One entry of the dynamic linker's list (`struct link_map`), as `qXfer:libraries-svr4` shows it."""

    @property
    def name(self) -> bytes: ...

    @property
    def lm(self) -> int: ...

    @property
    def l_addr(self) -> int: ...

    @property
    def l_ld(self) -> int: ...


class Target(Protocol):
    """One debuggee process, stopped or running, as the session needs it."""

    @property
    def pid(self) -> int: ...

    @property
    def alive(self) -> bool: ...

    @property
    def ended(self) -> bool:
        """The process ended outside a wait of its own (another process's wait saw it) and that end is
        not reported yet: `take_event` gives it."""
        ...

    @property
    def ready(self) -> bool:
        """The last `resume` found an event to report and started nothing."""
        ...

    def close(self) -> None:
        """Release the backend's resources (a launched process still alive is killed)."""
        ...

    # Threads.
    def threads(self) -> list[ThreadInfo]:
        """Live threads in creation order. Names are read as `refresh_names` says."""
        ...

    @property
    def world_resumes(self) -> int:
        """Resumes of every thread so far: a thread list asked for twice between two of them is a
        second request of one stop (ptstub.session.threadlist)."""
        ...

    def refresh_names(self) -> None:
        """Read every thread's name again at the next `threads()` (otherwise only new threads' names and
        that of the thread of the last event are read: docs/design-notes.md, "Thread names")."""
        ...

    def thread_ids(self) -> list[int]: ...

    def has_thread(self, tid: int) -> bool: ...

    def thread_ended(self, tid: int) -> bool:
        """`tid` was a thread of this process and is gone."""
        ...

    # Options GDB negotiates.
    def set_options(
        self,
        *,
        fork_events: bool | None = None,
        catch_syscalls: bool | None = None,
        thread_exits: bool | None = None,
    ) -> None:
        """Change what the backend reports; an option left None keeps its value."""
        ...

    def set_pass_signals(self, signals: Collection[int]) -> None:
        """Signals delivered to the program without a stop (GDB's QPassSignals)."""
        ...

    # All-stop run control.
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

    def stop(self) -> StopEvent:
        """Stop every running thread now and return what is reported."""
        ...

    def take_event(self) -> StopEvent:
        """The event a group wait found pending in this process (its end, when `ended`)."""
        ...

    def take_pending_signal(self) -> StopEvent | None:
        """A signal stop that came with an attach: reported in place of the attach's SIGSTOP."""
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

    def reinsert_breakpoint(self, address: int) -> None:
        """Write the int3 of an inserted software breakpoint again (a vfork child's detach restored the
        original byte in the shared memory)."""
        ...

    def remove_breakpoint(
        self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1
    ) -> None: ...

    def judge_breakpoint(self, address: int, code: AgentCode | None) -> bool:
        """Have the backend judge the hits of the software breakpoint at `address` with `code` (None:
        no longer). True when it does: a hit it passes never reaches the session, one it reports
        carries its `Verdict` (`BreakpointHit.engine_verdict`). False: the session judges them."""
        ...

    def read_auxv(self) -> bytes: ...

    def read_siginfo(self, tid: int) -> bytes: ...

    def write_siginfo(self, tid: int, data: bytes) -> None: ...

    def loaded_libraries(self) -> tuple[int, Sequence[LibraryEntry]]:
        """The address of the main program's `link_map` (0 before ld.so ran) and the libraries."""
        ...

    def tls_address(self, tid: int, offset: int, lm: int) -> int:
        """The address of offset `offset` in the TLS block of module `lm` for thread `tid`."""
        ...

    def executable(self) -> str: ...

    def adopt_fork_child(self, child_pid: int) -> Target:
        """The stopped, traced child of a reported fork, as a process of its own."""
        ...

    def kill(self) -> None: ...

    def detach(self, pass_signal: Callable[[int], bool] | None = None) -> None:
        """Let the process go; a signal the last stop reported goes with it if `pass_signal` says so."""


class ProcessGroup(Protocol):
    """Every process one session serves, by pid in the order they came; run and waited for together
    (all-stop across processes), and non-stop's wait over all of them. One process is run with the
    `Target` calls alone; the group's run calls are used once a second process is served (a fork
    child GDB keeps, a second vRun/vAttach). `ServedProcesses` gives the table."""

    def __len__(self) -> int: ...

    def __contains__(self, pid: object) -> bool: ...

    def get(self, pid: int) -> Target | None: ...

    def members(self) -> list[Target]:
        """Every process served, in the order they came."""
        ...

    def start_over(self, target: Target | None) -> None:
        """Serve `target` alone (or nothing): a new program run or attached in its place."""
        ...

    def serve(self, process: Target, beside: Target | None = None) -> None:
        """Serve `process` from now on, beside `beside` (already served: the backend `join`s them)."""
        ...

    def forget(self, pid: int) -> None:
        """Stop serving `pid` (ended, detached or killed); nothing if it is not served."""
        ...

    def join(self, served: Target, process: Target) -> None:
        """The backend's part of `serve`: `process` runs and waits beside `served` from now on."""
        ...

    def resume(self, plans: Sequence[tuple[Target, Mapping[int, ResumeAction]]]) -> list[Target]:
        """Resume each process with its actions; the processes to wait for. A process with an event
        already pending starts nothing and is the only one returned (the others are stopped again)."""
        ...

    def wait(
        self, running: list[Target], served: Sequence[Target], wake_fd: int | None
    ) -> tuple[Target, StopEvent] | None:
        """Block until one of `running` reports, every process stopped; None when `wake_fd` is readable
        first (they run on). A process of `served` that ended while held reports too. Raises
        `TargetError(ECHILD)` when nothing can report. `running` loses the processes that cannot."""
        ...

    def next_event(self, processes: Sequence[Target], wake_fd: int, first: int = 0) -> tuple[Target, StopEvent] | None:
        """Non-stop: the next event of one thread of any of `processes`, looked for from
        `processes[first]` on; None when `wake_fd` is readable first or nothing can happen."""
        ...


class ServedProcesses:
    """The table of a `ProcessGroup`: the processes served by pid, in the order they came. A backend's
    group derives from it and gives `join` and the run calls."""

    def __init__(self) -> None:
        self._by_pid: dict[int, Target] = {}

    def __len__(self) -> int:
        return len(self._by_pid)

    def __contains__(self, pid: object) -> bool:
        return pid in self._by_pid

    def get(self, pid: int) -> Target | None:
        return self._by_pid.get(pid)

    def members(self) -> list[Target]:
        return list(self._by_pid.values())

    def start_over(self, target: Target | None) -> None:
        self._by_pid = {target.pid: target} if target is not None else {}

    def serve(self, process: Target, beside: Target | None = None) -> None:
        if beside is not None:
            self.join(beside, process)
        self._by_pid[process.pid] = process

    def forget(self, pid: int) -> None:
        self._by_pid.pop(pid, None)

    def join(self, served: Target, process: Target) -> None:
        raise NotImplementedError


class HostServices(Protocol):
    """What the session asks of the machine ptstub runs on, not of a traced process."""

    def osdata(self, table: str) -> bytes | None:
        """The `info os` table `table` (`qXfer:osdata:read`) as its XML document; None if unknown."""
        ...

    def executable_of(self, pid: int) -> str:
        """The executable of a process ptstub does not trace (`qXfer:exec-file:read:PID`)."""
        ...

    def thread_db_findable(self, search_path: str | None) -> bool:
        """Whether a libthread_db would be found along `search_path` (None: the default path)."""
        ...

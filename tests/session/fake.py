"""A typed fake debug target for the session's packet transcripts: no ptrace, no process.

`FakeProcess` keeps threads, registers, a page of memory and the breakpoints the session asked for, and
hands out the stop events a test scripts (`events`), as a real engine would once every thread stopped.
It implements the same members the session calls on a real process, so a transcript that passes here
pins what the session answers, independently of the kernel.
"""

from __future__ import annotations

import errno
import struct
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence

from ptstub.errors import MemoryAccessError, NoSuchThreadError, ProcessGoneError, TargetError
from ptstub.events import Exited, Interrupted, StopEvent
from ptstub.target import (
    AgentCode,
    BreakpointKind,
    LibraryEntry,
    ProcessGroup,
    ResumeAction,
    ServedProcesses,
    Target,
    ThreadInfo,
    ThreadState,
)

MEMORY_BASE = 0x400000
MEMORY_SIZE = 0x1000
XSTATE_SIZE = 2440


def make_gpr(rip: int, seed: int = 0) -> bytes:
    """A `user_regs_struct` whose registers are recognisable values and whose rip is `rip`."""
    values = [0x1000 * (seed + 1) + i for i in range(27)]
    values[16] = rip
    return struct.pack("<27Q", *values)


def make_xstate() -> bytes:
    xs = bytearray(XSTATE_SIZE)
    struct.pack_into("<QQ", xs, 464, 0x207, 0)  # XCR0 in the sw_reserved bytes: x87, SSE, AVX, PKRU
    struct.pack_into("<Q", xs, 512, 0x207)
    return bytes(xs)


class FakeProcess:
    """One process of stopped (or running) threads; events come from `events`, in order."""

    def __init__(self, pid: int, tids: Collection[int] = (), executable: str = "/bin/fake") -> None:
        self.pid = pid
        self._alive = True
        self._executable = executable
        self.gpr: dict[int, bytes] = {tid: make_gpr(MEMORY_BASE + 0x10, tid - pid) for tid in (pid, *tids)}
        self.xstate = {tid: make_xstate() for tid in self.gpr}
        self.running: set[int] = set()
        self.names: dict[int, str] = {}  # tid -> its name, where not "main" / "workerN"
        self.pointers: dict[int, int] = {}  # tid -> its fs_base (pthread_t; 0: TLS not set up), where not the default
        self.register_reads = 0  # read_gpr and read_xstate calls
        self.memory = bytearray(bytes(range(256)) * (MEMORY_SIZE // 256))
        self.breakpoints: set[tuple[int, BreakpointKind, int]] = set()
        self.reinserted: list[int] = []
        self.judged: list[tuple[int, AgentCode | None]] = []  # judge_breakpoint calls, in order
        self.judges = False  # whether judge_breakpoint takes the code (the hits' verdicts are scripted)
        self.events: deque[StopEvent] = deque()
        self.resumes: list[dict[int, ResumeAction]] = []
        self.options: dict[str, bool] = {}
        self.pass_signals: frozenset[int] = frozenset()
        self.siginfo = bytes(128)
        self.gone: set[int] = set()
        self.killed = self.detached = self.closed = False
        self.interrupted = False
        self.pending_signal: StopEvent | None = None
        self.children: dict[int, FakeProcess] = {}
        self._ended: StopEvent | None = None

    # ---------------------------------------------------------------- state
    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def ended(self) -> bool:
        return self._ended is not None

    @property
    def ready(self) -> bool:
        return False

    def end(self, event: StopEvent) -> None:
        """The process ends outside any wait (SIGKILL from outside): `take_event` reports it."""
        self._alive = False
        self._ended = event

    def close(self) -> None:
        self.closed = True

    def executable(self) -> str:
        return self._executable

    # ---------------------------------------------------------------- threads
    def thread_ids(self) -> list[int]:
        return list(self.gpr)

    def has_thread(self, tid: int) -> bool:
        return tid in self.gpr

    def thread_ended(self, tid: int) -> bool:
        return tid in self.gone

    world_resumes = 0  # the fake reads no names: nothing to refresh

    def refresh_names(self) -> None:
        pass

    def threads(self) -> list[ThreadInfo]:
        return [
            ThreadInfo(
                tid,
                self.names.get(tid, "main" if tid == self.pid else f"worker{tid - self.pid}"),
                tid % 2,
                ThreadState.RUNNING if tid in self.running else ThreadState.STOPPED,
                self.pointers.get(tid, 0x7F0000000000 + tid * 0x1000),
            )
            for tid in self.gpr
        ]

    def _thread(self, tid: int) -> int:
        if tid not in self.gpr:
            raise NoSuchThreadError(tid)
        return tid

    # ---------------------------------------------------------------- registers, memory
    def read_gpr(self, tid: int) -> bytes:
        self.register_reads += 1
        return self.gpr[self._thread(tid)]

    def write_gpr(self, tid: int, data: bytes) -> None:
        self.gpr[self._thread(tid)] = data

    def read_xstate(self, tid: int) -> bytes:
        self.register_reads += 1
        return self.xstate[self._thread(tid)]

    def write_xstate(self, tid: int, data: bytes) -> None:
        self.xstate[self._thread(tid)] = data

    def read_memory(self, address: int, length: int) -> bytes:
        start = address - MEMORY_BASE
        if start < 0 or start >= MEMORY_SIZE:
            raise MemoryAccessError(f"cannot read {address:#x}", 5)
        return bytes(self.memory[start : start + length])

    def write_memory(self, address: int, data: bytes) -> None:
        start = address - MEMORY_BASE
        if start < 0 or start + len(data) > MEMORY_SIZE:
            raise MemoryAccessError(f"cannot write {address:#x}", 5)
        self.memory[start : start + len(data)] = data

    def read_siginfo(self, tid: int) -> bytes:
        self._thread(tid)
        return self.siginfo

    def write_siginfo(self, tid: int, data: bytes) -> None:
        self._thread(tid)
        self.siginfo = data

    def read_auxv(self) -> bytes:
        return struct.pack("<4Q", 6, 4096, 0, 0)  # AT_PAGESZ, AT_NULL

    def loaded_libraries(self) -> tuple[int, list[LibraryEntry]]:
        return 0, []

    def tls_address(self, tid: int, offset: int, lm: int) -> int:
        return 0x7F0000000000 + tid * 0x1000 + offset

    # ---------------------------------------------------------------- breakpoints
    def insert_breakpoint(self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1) -> None:
        if kind is BreakpointKind.SOFTWARE:
            self.read_memory(address, 1)  # an unmapped address fails as with ptrace
        self.breakpoints.add((address, kind, length))

    def reinsert_breakpoint(self, address: int) -> None:
        self.reinserted.append(address)

    def remove_breakpoint(self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1) -> None:
        self.breakpoints.discard((address, kind, length))

    def judge_breakpoint(self, address: int, code: AgentCode | None) -> bool:
        """Records what the session hands over (`judged`); judges only when `judges` says so (a
        backend that cannot leaves conditions and commands with the session)."""
        self.judged.append((address, code))
        return self.judges and code is not None

    # ---------------------------------------------------------------- options
    def set_options(
        self,
        *,
        fork_events: bool | None = None,
        catch_syscalls: bool | None = None,
        thread_exits: bool | None = None,
    ) -> None:
        for name, value in (
            ("fork_events", fork_events),
            ("catch_syscalls", catch_syscalls),
            ("thread_exits", thread_exits),
        ):
            if value is not None:
                self.options[name] = value

    def set_pass_signals(self, signals: Collection[int]) -> None:
        self.pass_signals = frozenset(signals)

    # ---------------------------------------------------------------- all-stop run control
    def resume(self, actions: Mapping[int, ResumeAction], default: ResumeAction | None = None) -> None:
        if not self._alive:
            raise ProcessGoneError()
        self.resumes.append(dict(actions))
        self.running = set(actions)

    def wait(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        if self.interrupted and not self.events:
            self.interrupted = False
            self.events.append(Interrupted(self.pid, self._pc(self.pid)))
        if not self.events:
            return None
        return self._deliver(self.events.popleft(), every_thread=True)

    def _deliver(self, event: StopEvent, every_thread: bool) -> StopEvent:
        if every_thread:
            self.running.clear()
        else:
            self.running.discard(getattr(event, "tid", 0))
        if isinstance(event, Exited) or type(event).__name__ == "Killed":
            self._alive = False
        return event

    def _pc(self, tid: int) -> int:
        return int.from_bytes(self.gpr[tid][128:136], "little")

    def interrupt(self) -> None:
        self.interrupted = True

    def cancel_interrupt(self) -> None:
        self.interrupted = False

    def stop(self) -> StopEvent:
        self.running.clear()
        return Interrupted(self.pid, self._pc(self.pid))

    def take_pending_signal(self) -> StopEvent | None:
        pending, self.pending_signal = self.pending_signal, None
        return pending

    def take_event(self) -> StopEvent:
        assert self._ended is not None
        event, self._ended = self._ended, None
        return event

    # ---------------------------------------------------------------- non-stop
    def resume_threads(self, actions: Mapping[int, ResumeAction]) -> None:
        self.resumes.append(dict(actions))
        self.running |= set(actions)

    def wait_event(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        if not self.events:
            return None
        return self._deliver(self.events.popleft(), every_thread=False)

    def stop_thread(self, tid: int) -> bool:
        if tid not in self.running:
            return False
        self.events.append(Interrupted(tid, self._pc(tid)))
        return True

    def is_running(self, tid: int) -> bool:
        return tid in self.running

    def any_running(self) -> bool:
        return bool(self.running)

    # ---------------------------------------------------------------- lifecycle
    def adopt_fork_child(self, child_pid: int) -> FakeProcess:
        child = self.children.get(child_pid) or FakeProcess(child_pid)
        self.children[child_pid] = child
        return child

    def kill(self) -> None:
        self.killed = True
        self._alive = False
        self.running.clear()

    def detach(self, pass_signal: Callable[[int], bool] | None = None) -> None:
        self.detached = True
        self._alive = False
        self.running.clear()


class FakeProcessGroup(ServedProcesses):
    """The processes of a session served together: events come from each process's script, the
    processes looked at in the order the session gives."""

    def __init__(self) -> None:
        super().__init__()
        self.joined: list[tuple[int, int]] = []

    def join(self, served: Target, process: Target) -> None:
        self.joined.append((served.pid, process.pid))

    def resume(self, plans: Sequence[tuple[Target, Mapping[int, ResumeAction]]]) -> list[Target]:
        for process, actions in plans:
            process.resume(actions)
        return [process for process, _ in plans]

    def wait(
        self, running: list[Target], served: Sequence[Target], wake_fd: int | None
    ) -> tuple[Target, StopEvent] | None:
        for process in [*running, *(p for p in served if p not in running and p.ended)]:
            event = process.take_event() if process.ended else process.wait(None, wake_fd)
            if event is not None:
                for other in running:
                    if other is not process:
                        other.stop()
                return process, event
        if not running:
            raise TargetError("no thread is running", errno.ECHILD)
        return None

    def next_event(self, processes: Sequence[Target], wake_fd: int, first: int = 0) -> tuple[Target, StopEvent] | None:
        count = len(processes)
        for index in range(count):
            process = processes[(first + index) % count]
            event = process.take_event() if process.ended else process.wait_event(None, wake_fd)
            if event is not None:
                return process, event
        return None


def _is_a_target(process: FakeProcess) -> Target:
    return process  # mypy: the fake offers every member of the seam


def _is_a_group(group: FakeProcessGroup) -> ProcessGroup:
    return group

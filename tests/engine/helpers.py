"""Helpers for the engine tests: launching with guaranteed clean-up, the fixtures' output protocol,
a breakpoint loop that checks every stop, and checks straight from /proc that every thread is stopped.

The output protocol (`ptstub-count:`, `ptstub-syscall:`, ...) is documented in fixtures/README.md.
/proc/PID/task/TID/stat is the kernel's own view: a thread in a ptrace stop shows state `t`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pytest

import ptstub
from ptstub.events import BreakpointHit, Exited, Killed, StopEvent

WALL = 0x40000000  # __WALL: wait for any child, clone or not (waitpid(2))
# Task flags set inside do_exit(): coredump_task_exit() sets PF_POSTCOREDUMP before the PTRACE_EVENT_EXIT
# stop, exit_signals() sets PF_EXITING after it. Such a thread never runs user code again.
PF_EXITING = 0x4
PF_POSTCOREDUMP = 0x8

COUNT_LINE = re.compile(r"^ptstub-count: (\S+) (\d+) (\d+)$", re.MULTILINE)
SYSCALL_LINE = re.compile(r"^ptstub-syscall: (\S+) (\S+)$", re.MULTILINE)
ELAPSED_LINE = re.compile(r"^ptstub-elapsed-ms: (\d+)$", re.MULTILINE)
FROZEN_LINE = re.compile(r"^ptstub-frozen: (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class FixtureReport:
    """What a fixture printed (fixtures/README.md)."""

    counts: Counter[tuple[str, int]]  # (symbol, tid) -> calls
    syscall: tuple[str, str] | None  # (kind, result)
    elapsed_ms: int | None
    frozen: tuple[str, ...]
    text: str


def parse_report(text: str) -> FixtureReport:
    counts: Counter[tuple[str, int]] = Counter()
    for symbol, tid, count in COUNT_LINE.findall(text):
        counts[(symbol, int(tid))] += int(count)
    syscall = SYSCALL_LINE.search(text)
    elapsed = ELAPSED_LINE.search(text)
    return FixtureReport(
        counts=counts,
        syscall=(syscall.group(1), syscall.group(2)) if syscall else None,
        elapsed_ms=int(elapsed.group(1)) if elapsed else None,
        frozen=tuple(FROZEN_LINE.findall(text)),
        text=text,
    )


def time_limit(seconds: float) -> pytest.MarkDecorator:
    """A test's time limit that also ends a test stuck inside the C engine.

    pytest-timeout's default (SIGALRM) only acts when control returns to Python; a C wait loop that
    retries on EINTR never does. The thread method dumps every stack and ends the pytest process (the
    launched program dies with it: PTRACE_O_EXITKILL).
    """
    return pytest.mark.timeout(seconds, method="thread")


# ------------------------------------------------------------------------------------------ processes
def kill_and_reap(pid: int) -> None:
    """Last resort after an Inferior is closed: if `pid` is still our unreaped child, SIGKILL and reap it."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG | WALL)
    except ChildProcessError:
        return  # already reaped (the normal case): never signal a pid that may have been reused
    if done:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while True:
        try:
            _, status = os.waitpid(pid, WALL)
        except ChildProcessError:
            return
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            return


@contextlib.contextmanager
def launched(argv: list[str], stdout: IO[Any] | int | None = None, **kwargs: Any) -> Iterator[ptstub.Inferior]:
    """`ptstub.launch` as a context manager: the Inferior is closed (killed) and the pid reaped."""
    inf = ptstub.launch(argv, stdout=stdout, **kwargs)
    try:
        with inf:
            yield inf
    finally:
        kill_and_reap(inf.pid)


def read_proc_mem(pid: int, address: int, length: int) -> bytes:
    """Memory of `pid` read straight from /proc/PID/mem, bypassing ptstub (and its breakpoint shadow)."""
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        mem.seek(address)
        return mem.read(length)


def task_ids(pid: int) -> list[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return []


def task_state(pid: int, tid: int) -> tuple[str, int] | None:
    """(state letter, task flags) of one thread, from /proc/PID/task/TID/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[6])


def unstopped_threads(pid: int) -> list[str]:
    """Threads of `pid` that are neither in a ptrace stop (`t`), nor dead, nor on their way out.

    A thread the engine resumed from its PTRACE_EVENT_EXIT stop runs kernel exit code (PF_POSTCOREDUMP
    or PF_EXITING set) and may look running; such threads do not count. Another thread that looks
    running is read a second time before it counts.
    """

    def suspicious(tid: int) -> tuple[str, int] | None:
        seen = task_state(pid, tid)
        if seen is None or seen[0] in "tZX" or seen[1] & (PF_EXITING | PF_POSTCOREDUMP):
            return None
        return seen

    bad = []
    for tid in task_ids(pid):
        if suspicious(tid) is None:
            continue
        seen = suspicious(tid)  # the second look
        if seen is not None:
            bad.append(f"tid {tid} state {seen[0]} flags {seen[1]:#x}")
    return bad


def tracer_pids(pid: int) -> dict[int, int]:
    """TracerPid of every thread of `pid`."""
    result = {}
    for tid in task_ids(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("TracerPid:"):
                        result[tid] = int(line.split()[1])
    return result


def check_released(pid: int) -> None:
    """No thread of `pid` is traced, in a ptrace stop or in a group-stop."""
    assert set(tracer_pids(pid).values()) == {0}, f"still traced after detach: {tracer_pids(pid)}"
    states = {tid: seen[0] for tid in task_ids(pid) if (seen := task_state(pid, tid))}
    assert not {tid: s for tid, s in states.items() if s in "tT"}, f"threads left stopped after detach: {states}"


# ------------------------------------------------------------------------------------------ the loop
@dataclass
class RunResult:
    """What `run_breakpoints` saw until the process ended."""

    end: StopEvent
    hits: Counter[tuple[str, int]] = field(default_factory=Counter)
    frozen_values: list[int] = field(default_factory=list)
    main_in_syscall: int = 0  # stops at which the main thread was inside one of `main_syscalls`

    @property
    def stops(self) -> int:
        return sum(self.hits.values())


def run_breakpoints(
    inf: ptstub.Inferior,
    symbols: list[str],
    *,
    frozen: str | None = None,
    main_syscalls: frozenset[int] = frozenset(),
    check_stopped_every: int = 0,
    check_thread_table: bool = False,
    timeout: float = 10.0,
) -> RunResult:
    """Break on `symbols`, `cont()` until the process ends, and check every stop on the way.

    Per breakpoint stop: the pc is one of ours and equals the thread's rip; `frozen` (an 8-byte global)
    reads the same before and after that; every `check_stopped_every`-th stop, /proc shows every thread
    stopped, and with `check_thread_table` `threads()` lists the reporting thread and every thread
    the kernel shows in a ptrace stop. Any event other than a breakpoint hit or the process's end fails.
    """
    names = {inf.symbol(name): name for name in symbols}
    for address in names:
        inf.insert_breakpoint(address)
    frozen_address = inf.symbol(frozen) if frozen else None
    hits: Counter[tuple[str, int]] = Counter()
    frozen_values: list[int] = []
    in_syscall = 0
    while True:
        event = inf.cont(timeout=timeout)
        if isinstance(event, Exited | Killed):
            return RunResult(event, hits, frozen_values, in_syscall)
        n = sum(hits.values())
        assert isinstance(event, BreakpointHit), f"unexpected {event!r} after {n} breakpoint stops"
        assert event.pc in names, f"hit at {event.pc:#x}, not at a breakpoint of ours {[hex(a) for a in names]}"
        hits[(names[event.pc], event.tid)] += 1
        if frozen_address is not None:
            before = inf.read_memory(frozen_address, 8)
        rip = inf.get_regs(event.tid)["rip"]
        assert rip == event.pc, f"stop {n}: thread {event.tid} rip {rip:#x} != reported pc {event.pc:#x}"
        if main_syscalls:
            in_syscall += inf.get_regs(inf.pid)["orig_rax"] in main_syscalls
        if frozen_address is not None:
            after = inf.read_memory(frozen_address, 8)
            assert before == after, (
                f"stop {n}: {frozen} changed while every thread was stopped: "
                f"{int.from_bytes(before, 'little')} -> {int.from_bytes(after, 'little')}"
            )
            frozen_values.append(int.from_bytes(after, "little"))
        if check_stopped_every and n % check_stopped_every == 0:
            running = unstopped_threads(inf.pid)
            assert not running, f"stop {n} ({event!r}) reported, but threads are not stopped: {running}"
            if check_thread_table:
                check_thread_table_matches(inf, event.tid, n)


def check_thread_table_matches(inf: ptstub.Inferior, reporting_tid: int, n: int) -> None:
    """`threads()` holds the reporting thread and every thread the kernel has in a ptrace stop."""
    known = {t.tid for t in inf.threads()}
    assert reporting_tid in known, f"stop {n}: reporting thread {reporting_tid} is not in threads() {sorted(known)}"
    stopped = {tid for tid in task_ids(inf.pid) if (seen := task_state(inf.pid, tid)) and seen[0] == "t"}
    assert stopped <= known, f"stop {n}: threads stopped by ptrace but unknown to the engine: {stopped - known}"

"""The all-stop checks made at a stop, in the engine face: frozen variables and thread states.

At every reported stop each `--frozen` variable is read twice, at the start and at the end of the
harness's work on that stop, with nothing resumed in between (and a sched_yield(2) between, so a
writer outside the traced process gets the CPU on a busy machine); the two values must be equal. When a
stop is reported without any stop-all since the previous one (the engine handing out events it kept
pending, docs/kernel-facts.md §2.4), nothing has run in between either, so the first read must also equal the
last read of the previous stop. Every few stop-alls the harness also reads each thread's state in
/proc/PID/task/TID/stat (proc(5)): a thread the engine holds stopped must be in tracing stop `t`.

Reads go through /proc/PID/mem with pread(2), the cheapest way to read another process's memory
from Python (~3 µs), since this runs at every hit when frozen checks are asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ptstub.stress.model import Violation, ViolationKind

WORD = 8
STATE_CHECK_EVERY = 16  # stop-alls between two /proc thread-state sweeps (one sweep: ~8 µs per thread)
STOPPED_STATES = frozenset("tZX")  # tracing stop; or past its exit (zombie / dead), which cannot run


@dataclass(frozen=True, slots=True)
class FrozenVar:
    """A variable to keep still: `name` as given, its address, and whether it is a pointer to follow."""

    name: str
    address: int
    indirect: bool = False
    size: int = WORD


def parse_frozen(spec: str) -> tuple[str, bool]:
    """`*name` checks what the pointer `name` points to; `name` checks the variable itself."""
    return (spec[1:], True) if spec.startswith("*") else (spec, False)


class FrozenChecker:
    """Reads the frozen variables of one process at each stop and records violations."""

    def __init__(
        self,
        pid: int,
        variables: list[FrozenVar],
        thread_ids: Callable[[], list[int]],
        violate: Callable[[Violation], None],
    ) -> None:
        self._pid = pid
        self._vars = variables
        self._thread_ids = thread_ids
        self._violate = violate
        self._fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        self._previous: list[bytes | None] = [None] * len(variables)
        self._last_stops = -1
        self._stop_alls = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _read(self, var: FrozenVar) -> bytes | None:
        try:
            address = var.address
            if var.indirect:
                address = int.from_bytes(os.pread(self._fd, WORD, address), "little")
                if not address:
                    return None  # the pointer is not set yet
            data = os.pread(self._fd, var.size, address)
        except OSError:
            return None  # unmapped (EIO) or the process is gone (ESRCH)
        return data if len(data) == var.size else None

    def check(self, tid: int, pc: int, n_stops: int) -> None:
        """Called at a reported stop; `n_stops` is the engine's stop-all counter at that moment."""
        firsts = [self._read(v) for v in self._vars]
        same_stop = n_stops == self._last_stops
        if same_stop:
            for var, first, previous in zip(self._vars, firsts, self._previous, strict=True):
                if first is not None and previous is not None and first != previous:
                    self._changed(var, tid, pc, previous, first, "between two reports of one stop (nothing resumed)")
        else:
            self._stop_alls += 1
            if self._stop_alls % STATE_CHECK_EVERY == 1:
                self._check_thread_states(tid, pc)
        os.sched_yield()  # let anything else runnable (a writer outside the process) run during the stop
        seconds = [self._read(v) for v in self._vars]
        for var, first, second in zip(self._vars, firsts, seconds, strict=True):
            if first is not None and second is not None and first != second:
                self._changed(var, tid, pc, first, second, "while every thread was stopped")
        self._previous = seconds
        self._last_stops = n_stops

    def _changed(self, var: FrozenVar, tid: int, pc: int, before: bytes, after: bytes, when: str) -> None:
        b, a = int.from_bytes(before, "little"), int.from_bytes(after, "little")
        self._violate(Violation(ViolationKind.FROZEN, f"{var.name} changed {when}: {b} -> {a}", tid=tid, address=pc))

    def _check_thread_states(self, tid: int, pc: int) -> None:
        for other in self._thread_ids():
            state = thread_state(self._pid, other)
            if state and state not in STOPPED_STATES:
                self._violate(
                    Violation(
                        ViolationKind.RUNNING,
                        f"thread {other} is in state {state!r} while the world is stopped for thread {tid}",
                        tid=other,
                        address=pc,
                    )
                )


def thread_state(pid: int, tid: int) -> str:
    """The one-letter state of /proc/PID/task/TID/stat ('' if the thread is gone)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    fields = data.rsplit(b")", 1)[-1].split()
    return fields[0].decode() if fields else ""

"""The output protocol of stress programs, and the checks the harness runs on it after the program ends.

A program run under `ptstub stress` may print, at exit, lines the harness compares with what it saw:

    ptstub-count: <function> <tid> <count> [short-lived]
                                               calls of <function> made by thread <tid>; `short-lived`
                                               marks a thread that lived for a small part of the run
    ptstub-syscall: <name> <result>            its long blocking call: ok | eintr=N | short=MS | error=NAME
    ptstub-frozen: <symbol>                    a global that must not change while the world is stopped
    ptstub-frozen-ptr: <symbol>                a global pointer to such a value (checked as `*symbol`)

Any other line is the program's own. Counts are compared exactly when every hit was watched, and as
"at most" when the run ended early (`--hits` / `--duration`) and later calls were no longer seen.
Lines naming the same (function, tid) add up: under thread churn the kernel reuses tids (pid_max is
32768 by default), so two short-lived threads of one run can share one. Once a program prints counts
for a function, a thread it does not name is taken to have made no call: a hit the harness saw there
is a phantom (a stub that reports a stale or wrong thread).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ptstub.stress.model import ProgramEnd, SyscallResult, ThreadHits, Violation, ViolationKind

COUNT = "ptstub-count:"
SYSCALL = "ptstub-syscall:"
FROZEN = "ptstub-frozen:"
FROZEN_PTR = "ptstub-frozen-ptr:"
SHORT_LIVED = "short-lived"


@dataclass(frozen=True, slots=True)
class ProgramOutput:
    """The protocol lines of one run, and the program's last other lines (for a failure message)."""

    counts: dict[tuple[str, int], int]
    short_lived: frozenset[int]
    syscalls: tuple[SyscallResult, ...]
    frozen: tuple[str, ...]
    tail: tuple[str, ...]


def parse_output(text: str, tail_lines: int = 10) -> ProgramOutput:
    """Pick the protocol lines out of a program's stdout; malformed protocol lines count as other output."""
    counts: dict[tuple[str, int], int] = {}
    short_lived: set[int] = set()
    syscalls: list[SyscallResult] = []
    frozen: list[str] = []
    other: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if _is_count(fields):
            key = (fields[1], int(fields[2]))
            counts[key] = counts.get(key, 0) + int(fields[3])
            if len(fields) == 5:
                short_lived.add(key[1])
        elif len(fields) == 3 and fields[0] == SYSCALL:
            syscalls.append(SyscallResult(fields[1], fields[2]))
        elif len(fields) == 2 and fields[0] == FROZEN:
            frozen.append(fields[1])
        elif len(fields) == 2 and fields[0] == FROZEN_PTR:
            frozen.append(f"*{fields[1]}")
        elif not line.startswith("ptstub-"):
            other.append(line)
    return ProgramOutput(counts, frozenset(short_lived), tuple(syscalls), tuple(frozen), tuple(other[-tail_lines:]))


def _is_count(fields: list[str]) -> bool:
    if len(fields) not in (4, 5) or fields[0] != COUNT or not (fields[2].isdigit() and fields[3].isdigit()):
        return False
    return len(fields) == 4 or fields[4] == SHORT_LIVED


def thread_hits(
    seen: Mapping[tuple[str, int], int], output: ProgramOutput, functions: Iterable[str]
) -> tuple[ThreadHits, ...]:
    """Per (function, thread) of the broken-on `functions`: hits seen and the program's own count.

    A function the program printed counts for has a count for every thread: 0 for a thread it did not
    name (so a phantom hit there is caught); a function it printed nothing for has None everywhere.
    """
    wanted = set(functions)
    keys = set(seen) | {key for key in output.counts if key[0] in wanted}
    counted = {function for function, _ in output.counts}
    return tuple(
        ThreadHits(
            function,
            tid,
            seen.get((function, tid), 0),
            output.counts.get((function, tid), 0) if function in counted else None,
            tid in output.short_lived,
        )
        for function, tid in sorted(keys)
    )


def check_counts(rows: Iterable[ThreadHits], exact: bool) -> list[Violation]:
    """A hit lost (program counted more) or a phantom hit (harness saw more) is a violation."""
    violations = []
    for row in rows:
        if row.program_count is None:
            continue
        if row.hits > row.program_count:
            what = f"harness saw {row.hits} hits of {row.function} but the program counted {row.program_count}"
        elif exact and row.hits < row.program_count:
            lost = row.program_count - row.hits
            what = (
                f"program counted {row.program_count} calls of {row.function} but the harness saw "
                f"{row.hits} ({lost} lost)"
            )
        else:
            continue
        violations.append(Violation(ViolationKind.HIT_COUNT, what, tid=row.tid))
    return violations


def check_syscalls(results: Iterable[SyscallResult]) -> list[Violation]:
    """The main thread's blocking call must have completed as if nobody had stopped it."""
    violations = []
    for r in results:
        if r.ok:
            continue
        key, _, value = r.result.partition("=")
        if key == "eintr":
            what = f"{r.name} returned EINTR {value} time(s) (the stops leaked EINTR into the program)"
        elif key == "short":
            what = f"{r.name} returned early, after {value} ms (a timed wait was cut short by the stops)"
        elif key == "error":
            what = f"{r.name} failed with {value}"
        else:
            what = f"{r.name} reported {r.result!r}"
        violations.append(Violation(ViolationKind.EINTR, what))
    return violations


def check_end(end: ProgramEnd, expected: int, tail: tuple[str, ...]) -> list[Violation]:
    """The program must exit by itself with `expected`; its last output lines go into the message."""
    if end.how in ("unknown", "killed-by-harness"):
        return []
    if end.how == "exited" and end.code == expected:
        return []
    said = f"; its last output: {' | '.join(tail[-3:])}" if tail else ""
    return [Violation(ViolationKind.EXIT, f"program {end.describe()}, expected status {expected}{said}")]

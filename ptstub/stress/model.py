"""The stress harness's values: what a run is asked to do, what it saw, and what went wrong.

Everything here is a frozen dataclass or an enum so a `Report` can be compared, serialised to JSON
and rendered as text or JUnit without touching a process. The numbers are computed once, when the
report is built (`fairness`, `latency`), never per hit: the hot loop only counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

DEFAULT_TIMEOUT = 10.0


class StressSetupError(Exception):
    """The run could not start because of its input (program, symbol, option, stub command): exit 2."""


class ViolationKind(Enum):
    """Which all-stop invariant (or harness expectation) a violation breaks."""

    FROZEN = "frozen"  # a --frozen variable changed while every thread was stopped
    RUNNING = "thread-running"  # /proc shows a thread running while the world is stopped
    HIT_COUNT = "hit-count"  # the program's own per-thread count disagrees with the hits seen
    EINTR = "syscall"  # a blocking call saw EINTR / returned early / failed because of the stops
    EXIT = "exit-status"  # the program did not exit with its normal status
    DEADLOCK = "deadlock"  # no hit or other stop within the timeout
    STUB = "stub"  # stub mode: the stub under test crashed, closed the connection or never listened
    ENGINE = "engine-error"  # the debugger under test failed an operation the run needed


INVARIANT_TITLES = {
    ViolationKind.FROZEN: "frozen variables keep their value while stopped",
    ViolationKind.RUNNING: "no thread runs while stopped",
    ViolationKind.HIT_COUNT: "no hit is lost (program's own counts)",
    ViolationKind.EINTR: "no EINTR or early return caused by the stops",
    ViolationKind.EXIT: "the program exits with its normal status",
    ViolationKind.DEADLOCK: "no deadlock (progress within the timeout)",
    ViolationKind.STUB: "the stub serves the whole run",
    ViolationKind.ENGINE: "the debugger completes every operation",
}


@dataclass(frozen=True, slots=True)
class StressConfig:
    """One stress run. `stub` None runs under ptstub's engine in this process; else through GDB and CMD.

    `breaks` and `frozen` name symbols of the main executable or give `0x` addresses; a frozen name
    written `*name` is a pointer whose target is checked (e.g. a counter in shared memory).
    `hits` / `duration` end the measured phase early (then counts are checked as "at most").
    """

    argv: tuple[str, ...]
    breaks: tuple[str, ...]
    frozen: tuple[str, ...] = ()
    hits: int | None = None
    duration: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    seed: int | None = None
    expect_exit: int = 0
    stub: str | None = None
    gdb: str = "gdb"
    listen_timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: in which thread, at which address, and what was seen."""

    kind: ViolationKind
    message: str
    tid: int | None = None
    address: int | None = None

    def describe(self) -> str:
        where = []
        if self.tid is not None:
            where.append(f"thread {self.tid}")
        if self.address is not None:
            where.append(f"at {self.address:#x}")
        prefix = f"{' '.join(where)}: " if where else ""
        return f"{self.kind.value}: {prefix}{self.message}"


@dataclass(frozen=True, slots=True)
class ThreadHits:
    """Hits seen for one (breakpoint, thread), and what the program itself counted (None if it did not say).

    `short_lived`: the program marked the thread as one that lived for a small part of the run (thread
    churn); such threads are left out of the fairness figures and summed apart (`Churn`).
    """

    function: str
    tid: int
    hits: int
    program_count: int | None = None
    short_lived: bool = False


@dataclass(frozen=True, slots=True)
class Churn:
    """The hits of the short-lived threads, counted apart: how many threads, hits seen, the program's sum."""

    threads: int
    hits: int
    program_count: int | None


@dataclass(frozen=True, slots=True)
class Fairness:
    """How evenly hits spread over the threads that hit: min, max and Jain's index (1.0 = perfectly even)."""

    threads: int
    min_hits: int
    max_hits: int
    jain: float


@dataclass(frozen=True, slots=True)
class Latency:
    """Stop-all latency (first event to every thread stopped) over `samples` stop-alls, microseconds."""

    samples: int
    p50_us: float
    p99_us: float
    max_us: float


@dataclass(frozen=True, slots=True)
class SyscallResult:
    """A `ptstub-syscall: NAME RESULT` line of the program: `ok`, `eintr=N`, `short=MS` or `error=NAME`."""

    name: str
    result: str

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass(frozen=True, slots=True)
class ThreadDump:
    """One thread's state when a deadlock was declared."""

    tid: int
    name: str
    state: str
    rip: int | None
    rsp: int | None
    symbol: str
    syscall: str = ""

    def describe(self) -> str:
        rip = f"rip={self.rip:#x}" if self.rip is not None else "rip=?"
        rsp = f"rsp={self.rsp:#x}" if self.rsp is not None else "rsp=?"
        extra = f" in {self.syscall}" if self.syscall else ""
        sym = f" <{self.symbol}>" if self.symbol else ""
        return f"thread {self.tid} ({self.name}) {self.state}: {rip}{sym} {rsp}{extra}"


@dataclass(frozen=True, slots=True)
class ProgramEnd:
    """How the program ended: `exited` (code), `killed` (signal), `killed-by-harness` or `unknown`."""

    how: str
    code: int | None = None
    signal: int | None = None

    def describe(self) -> str:
        if self.how == "exited":
            return f"exited with status {self.code}"
        if self.how == "killed":
            return f"killed by signal {self.signal}" if self.signal is not None else "killed by a signal"
        if self.how == "killed-by-harness":
            return "killed by the harness"
        return "end unknown"


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """A breakpoint as given (`spec`) and where it landed (None when GDB resolved it)."""

    spec: str
    address: int | None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a run measured and every violation it found; `passed` is the verdict."""

    mode: str  # "engine" or "stub"
    argv: tuple[str, ...]
    stub: str | None
    breakpoints: tuple[Breakpoint, ...]
    frozen: tuple[str, ...]
    hits: int
    elapsed_s: float
    threads: tuple[ThreadHits, ...]
    stops: int
    end: ProgramEnd
    counts: str  # "exact", "at-most" or "not-printed": how the program's own counts were compared
    syscalls: tuple[SyscallResult, ...] = ()
    latency: Latency | None = None
    signals: tuple[tuple[str, int], ...] = ()
    violations: tuple[Violation, ...] = ()
    violation_totals: tuple[tuple[ViolationKind, int], ...] = ()
    dump: tuple[ThreadDump, ...] = ()
    notes: tuple[str, ...] = ()
    eintr_fixups: int = 0
    fairness: Fairness | None = field(default=None)  # over the long-lived threads
    churn: Churn | None = None  # the short-lived threads, when the program marked any
    churn_latency: Latency | None = None  # stop-alls reported at a short-lived thread's hit

    @property
    def passed(self) -> bool:
        return not self.violation_totals

    @property
    def hits_per_s(self) -> float:
        return self.hits / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def stops_per_s(self) -> float:
        return self.stops / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def total(self, kind: ViolationKind) -> int:
        return dict(self.violation_totals).get(kind, 0)

    def summary(self) -> str:
        """One line: the verdict and, on failure, the first violation of each kind."""
        if self.passed:
            return f"PASS: {self.hits} hits, all invariants held"
        firsts: dict[ViolationKind, Violation] = {}
        for v in self.violations:
            firsts.setdefault(v.kind, v)
        parts = [
            f"{firsts[k].describe()} ({n}x)" if n > 1 else firsts[k].describe()
            for k, n in self.violation_totals
            if k in firsts
        ]
        return "FAIL: " + "; ".join(parts)


def churn(rows: Sequence[ThreadHits]) -> Churn | None:
    """The short-lived threads' rows summed (None when there are none)."""
    short = [row for row in rows if row.short_lived]
    if not short:
        return None
    counts = [row.program_count for row in short if row.program_count is not None]
    return Churn(len({row.tid for row in short}), sum(row.hits for row in short), sum(counts) if counts else None)


def fairness(per_thread: Sequence[int]) -> Fairness | None:
    """Min / max / Jain's fairness index (sum x)^2 / (n * sum x^2) over threads with at least one hit."""
    xs = [x for x in per_thread if x > 0]
    if not xs:
        return None
    jain = sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))
    return Fairness(len(xs), min(xs), max(xs), round(jain, 4))


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency(samples_ns: Sequence[int]) -> Latency | None:
    """p50 / p99 / max of stop-all durations in nanoseconds, as microseconds."""
    if not samples_ns:
        return None
    ordered = sorted(samples_ns)
    return Latency(len(ordered), percentile(ordered, 0.5) / 1000, percentile(ordered, 0.99) / 1000, ordered[-1] / 1000)


class ViolationLog:
    """Collects violations: every one is counted, the first `keep` of each kind are kept in full."""

    def __init__(self, keep: int = 10) -> None:
        self._keep = keep
        self._totals: dict[ViolationKind, int] = {}
        self._kept: list[Violation] = []

    def add(self, violation: Violation) -> None:
        n = self._totals.get(violation.kind, 0)
        self._totals[violation.kind] = n + 1
        if n < self._keep:
            self._kept.append(violation)

    def bump(self, kind: ViolationKind, count: int) -> None:
        """Count `count` more violations of `kind` whose details were not kept."""
        if count > 0:
            self._totals[kind] = self._totals.get(kind, 0) + count

    def extend(self, violations: Sequence[Violation]) -> None:
        for v in violations:
            self.add(v)

    @property
    def kept(self) -> tuple[Violation, ...]:
        return tuple(self._kept)

    @property
    def totals(self) -> tuple[tuple[ViolationKind, int], ...]:
        return tuple((k, self._totals[k]) for k in ViolationKind if k in self._totals)

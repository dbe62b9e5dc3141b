"""Turning what a run saw into a `Report`: the checks that need the program's end and its output.

Both faces (the in-process engine run and the GDB-driven stub run) fill one `RunRecord` while they
run; `build_report` then parses the program's protocol lines (`protocol.py`), compares counts,
syscall results and the exit status, and computes fairness and latency figures once. Threads the
program marks `short-lived` (thread churn) are kept out of the fairness index and the headline latency:
one that lived for 100 µs and hit once would otherwise drag Jain's index towards 1/n. Their hits are
summed apart (`Report.churn`), and so are the stop-alls their hits reported (`Report.churn_latency`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ptstub.stress import protocol
from ptstub.stress.model import (
    Breakpoint,
    ProgramEnd,
    Report,
    StressConfig,
    ThreadDump,
    Violation,
    ViolationLog,
    churn,
    fairness,
    latency,
)


@dataclass
class RunRecord:
    """What a runner saw; mutable while the run goes on, read once by `build_report`."""

    mode: str
    breakpoints: tuple[Breakpoint, ...] = ()
    functions: tuple[str, ...] = ()  # the names the program's ptstub-count lines use for them
    seen: dict[tuple[str, int], int] = field(default_factory=dict)
    hits: int = 0
    elapsed_s: float = 0.0
    stops: int = 0
    latency_ns: list[int] = field(default_factory=list)
    latency_tids: list[int] = field(default_factory=list)  # the thread whose hit each sample's stop reported
    end: ProgramEnd = field(default_factory=lambda: ProgramEnd("unknown"))
    complete: bool = True  # every hit of the program's life was watched (no --hits/--duration cut)
    violations: ViolationLog = field(default_factory=ViolationLog)
    dump: tuple[ThreadDump, ...] = ()
    notes: list[str] = field(default_factory=list)
    signals: dict[str, int] = field(default_factory=dict)
    eintr_fixups: int = 0

    def violate(self, violation: Violation) -> None:
        self.violations.add(violation)


def build_report(config: StressConfig, record: RunRecord, output_text: str) -> Report:
    """Run the end-of-run checks on `record` and the program's stdout, and freeze the result."""
    output = protocol.parse_output(output_text)
    rows = protocol.thread_hits(record.seen, output, record.functions)
    printed = any(row.program_count is not None for row in rows)
    if printed:
        record.violations.extend(protocol.check_counts(rows, exact=record.complete))
    record.violations.extend(protocol.check_syscalls(output.syscalls))
    record.violations.extend(protocol.check_end(record.end, config.expect_exit, output.tail))
    long_ns, short_ns = _split_latency(record, output.short_lived)
    notes = list(record.notes)
    undeclared = [name for name in output.frozen if name not in config.frozen]
    if undeclared:
        notes.append(f"the program declares frozen variable(s) not checked: {', '.join(undeclared)} (--frozen)")
    return Report(
        mode=record.mode,
        argv=config.argv,
        stub=config.stub,
        breakpoints=record.breakpoints,
        frozen=config.frozen,
        hits=record.hits,
        elapsed_s=record.elapsed_s,
        threads=rows,
        stops=record.stops,
        end=record.end,
        counts=("exact" if record.complete else "at-most") if printed else "not-printed",
        syscalls=output.syscalls,
        latency=latency(long_ns),
        signals=tuple(sorted(record.signals.items())),
        violations=record.violations.kept,
        violation_totals=record.violations.totals,
        dump=record.dump,
        notes=tuple(notes),
        eintr_fixups=record.eintr_fixups,
        fairness=fairness([row.hits for row in rows if not row.short_lived]),
        churn=churn(rows),
        churn_latency=latency(short_ns),
    )


def _split_latency(record: RunRecord, short_lived: frozenset[int]) -> tuple[list[int], list[int]]:
    """Stop-all samples reported at long-lived threads' hits, and at short-lived threads' hits.

    A stop-all is one sample whichever thread hit; keeping the ones a short-lived thread's hit reported
    apart lets the headline figure be compared with a run without churn.
    """
    if not short_lived or len(record.latency_tids) != len(record.latency_ns):
        return record.latency_ns, []
    long_ns: list[int] = []
    short_ns: list[int] = []
    for ns, tid in zip(record.latency_ns, record.latency_tids, strict=True):
        (short_ns if tid in short_lived else long_ns).append(ns)
    return long_ns, short_ns

"""Rendering a `Report`: the text a person reads, JSON for scripts, JUnit XML for CI systems.

The text ends with one verdict line (`PASS ...` / `FAIL ...`) so a CI log's last line says it all.
The JUnit file has one test case per invariant (docs/kernel-facts.md §2's all-stop contract as the harness
checks it), failed with the violations of that kind, or skipped when the run could not check it.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from typing import Any
from xml.etree import ElementTree as ET

from ptstub.stress.model import INVARIANT_TITLES, Report, ViolationKind

MAX_THREAD_LINES = 16
MAX_VIOLATION_LINES = 3  # per kind in the text; --json has up to 10 of each kind


def render_text(report: Report) -> str:
    """The human report: figures first, then violations, the deadlock dump and notes, then the verdict."""
    lines = [f"ptstub stress ({_face(report)})", f"  program      {' '.join(report.argv)}"]
    lines.append(f"  breakpoints  {', '.join(_breakpoint(b.spec, b.address) for b in report.breakpoints)}")
    if report.frozen:
        lines.append(f"  frozen       {', '.join(report.frozen)} (read twice at every stop)")
    lines.append(f"  hits         {report.hits:,} in {report.elapsed_s:.3f} s = {report.hits_per_s:,.0f} hits/s")
    lines.extend(_thread_lines(report))
    lines.append(_stop_line(report))
    if report.churn_latency is not None:
        lat = report.churn_latency
        lines.append(
            f"               stop-all latency at short-lived threads' hits ({lat.samples:,} stop-alls): "
            f"p50 {lat.p50_us:,.1f} µs, p99 {lat.p99_us:,.1f} µs, max {lat.max_us:,.1f} µs"
        )
    lines.append(f"  program end  {report.end.describe()}; own counts: {_counts(report)}")
    for result in report.syscalls:
        lines.append(f"  syscall      {result.name}: {result.result}")
    if report.signals:
        lines.append(f"  signals      {', '.join(f'{name} x{n}' for name, n in report.signals)}")
    lines.extend(_violation_lines(report))
    if report.dump:
        lines.append(
            "  threads at the deadlock" + (" (from /proc; the stub owns them)" if report.mode == "stub" else "")
        )
        lines.extend(f"    {d.describe()}" for d in report.dump)
    lines.extend(f"  note: {note}" for note in report.notes)
    lines.append(report.summary())
    return "\n".join(lines) + "\n"


def _face(report: Report) -> str:
    return f"through GDB and the stub `{report.stub}`" if report.mode == "stub" else "ptstub engine, in process"


def _breakpoint(spec: str, address: int | None) -> str:
    return f"{spec} ({address:#x})" if address is not None and not spec.startswith("0x") else spec


def _thread_lines(report: Report) -> list[str]:
    f = report.fairness
    lines = []
    if f is None:
        lines.append(
            "  threads      no long-lived thread hit a breakpoint"
            if report.churn
            else "  threads      no thread hit a breakpoint"
        )
    else:
        lines.append(
            f"  threads      {f.threads} hit: min {f.min_hits:,} / max {f.max_hits:,} per thread, "
            f"Jain's fairness index {f.jain:.3f}" + (" (long-lived threads)" if report.churn else "")
        )
    rows = [row for row in report.threads if not row.short_lived]
    for row in rows[:MAX_THREAD_LINES]:
        own = f" (program: {row.program_count:,})" if row.program_count is not None else ""
        lines.append(f"    {row.function} thread {row.tid}: {row.hits:,}{own}")
    if len(rows) > MAX_THREAD_LINES:
        lines.append(f"    ... {len(rows) - MAX_THREAD_LINES} more (see --json)")
    if report.churn is not None:
        c = report.churn
        own = f" (program: {c.program_count:,})" if c.program_count is not None else ""
        lines.append(
            f"  short-lived  {c.threads:,} threads: {c.hits:,} hits{own}, counted apart from the fairness index"
        )
    return lines


def _stop_line(report: Report) -> str:
    line = f"  stops        {report.stops:,} = {report.stops_per_s:,.0f} stops/s"
    lat = report.latency
    if lat is not None:
        where = " at long-lived threads' hits" if report.churn_latency else ""
        line += (
            f"; stop-all latency{where} p50 {lat.p50_us:,.1f} µs, p99 {lat.p99_us:,.1f} µs, max {lat.max_us:,.1f} µs"
        )
    if report.eintr_fixups:
        line += f"; {report.eintr_fixups:,} EINTR restarts made transparent"
    return line


def _counts(report: Report) -> str:
    if report.counts == "not-printed":
        return "not printed by the program (no ptstub-count: lines)"
    how = "exact" if report.counts == "exact" else "at most (the run ended early)"
    bad = report.total(ViolationKind.HIT_COUNT)
    return f"compared {how}, {'mismatch' if bad else 'match'}"


def _violation_lines(report: Report) -> list[str]:
    if report.passed:
        return ["  violations   none"]
    lines = ["  violations"]
    for kind, total in report.violation_totals:
        shown = [v for v in report.violations if v.kind is kind][:MAX_VIOLATION_LINES]
        lines.append(f"    {kind.value}: {total} ({INVARIANT_TITLES[kind]} - failed)")
        lines.extend(f"      {v.describe()}" for v in shown)
        if total > len(shown):
            lines.append(f"      ... {total - len(shown)} more")
    return lines


def to_json(report: Report) -> dict[str, Any]:
    """A JSON-ready dict: every field of the report plus the verdict and the rates."""
    data = _plain(dataclasses.asdict(report))
    data.update(
        passed=report.passed, summary=report.summary(), hits_per_s=report.hits_per_s, stops_per_s=report.stops_per_s
    )
    data["violation_totals"] = {kind.value: n for kind, n in report.violation_totals}
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_json(report: Report, path: str) -> None:
    with open(path, "w") as f:
        json.dump(to_json(report), f, indent=2)
        f.write("\n")


def _checked(report: Report, kind: ViolationKind) -> str | None:
    """Why an invariant was not checked in this run (None when it was)."""
    if kind is ViolationKind.FROZEN and not report.frozen:
        return "no --frozen variable was given"
    if kind is ViolationKind.RUNNING and (report.mode == "stub" or not report.frozen):
        return "checked only in engine mode with --frozen"
    if kind is ViolationKind.HIT_COUNT and report.counts == "not-printed":
        return "the program printed no ptstub-count: lines"
    if kind is ViolationKind.EINTR and not report.syscalls:
        return "the program printed no ptstub-syscall: line"
    if kind is ViolationKind.STUB and report.mode != "stub":
        return "engine mode"
    return None


def to_junit(report: Report) -> ET.ElementTree:
    """One <testsuite> with a <testcase> per invariant, and the text report as <system-out>."""
    kinds = [k for k in ViolationKind if k is not ViolationKind.ENGINE or report.total(k)]
    suite = ET.Element(
        "testsuite",
        name="ptstub stress",
        tests=str(len(kinds)),
        failures=str(sum(1 for k in kinds if report.total(k))),
        errors="0",
        skipped=str(sum(1 for k in kinds if _checked(report, k) and not report.total(k))),
        time=f"{report.elapsed_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("hits", report.hits),
        ("hits_per_s", f"{report.hits_per_s:.1f}"),
        ("stops", report.stops),
        ("program", " ".join(report.argv)),
        ("mode", report.mode),
        ("stub", report.stub or ""),
    ):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for kind in kinds:
        case = ET.SubElement(suite, "testcase", classname="ptstub.stress", name=INVARIANT_TITLES[kind])
        total = report.total(kind)
        if total:
            details = [v.describe() for v in report.violations if v.kind is kind]
            failure = ET.SubElement(
                case,
                "failure",
                type=kind.value,
                message=f"{total} violation(s): {details[0]}" if details else f"{total} violation(s)",
            )
            failure.text = "\n".join(details)
        elif (why := _checked(report, kind)) is not None:
            ET.SubElement(case, "skipped", message=why)
    ET.SubElement(suite, "system-out").text = render_text(report)
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.ElementTree(root)


def write_junit(report: Report, path: str) -> None:
    tree = to_junit(report)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)

#!/usr/bin/env python3
"""GDB in the loop with many idle threads: ptstub against GNU gdbserver, side by side in one run.

Workload: `fixtures/stress --threads 1 --calls HITS --syscall none --idle N`: one worker calls
`hit_target()` HITS times while N threads sit in `read()` on a pipe for the whole run (and the fixture's
counter thread increments a global). GDB 13 runs `break hit_target` with `commands; silent; continue`.

Figures per N (min / median / max over --repeats, ratio of the medians, ptstub / gdbserver):
  hits/s    from the worker's own clock: (HITS - 1) / (first to last hit_target() call), printed by the
            fixture as `stress-span-us`, so starting N threads, connecting and exiting are left out
ptstub's per-hit breakdown (median over the hits of every repeat, µs; a separate, instrumented run):
  cycle       one full resume to the next: the wall time of one hit
  resume-all  `Inferior.resume` of every thread (GDB's `vCont;c`)
  stop-all    the engine's own measure of the stop-all that follows (first event to every thread stopped)
  GDB's turn  from that stop to the next resume-all: every request GDB makes while the world is stopped
              (reading registers, the breakpoint step-over, the thread list), GDB's own work included
  threads     of GDB's turn: ptstub's time answering `qXfer:threads:read` (all chunks), and the wall time
              from the first chunk's request to the last one's answer (GDB's round trips included)

The instrumented ptstub is this script run as `bench_idle.py --profiled-stub OUT -- PTSTUB-ARGS`: it
wraps `Inferior.resume`, `Inferior.wait` and `TransferObjects.handle_read_object` with clock reads, serves GDB
through `ptstub.cli.main`, and writes the samples to OUT as JSON when the session ends.

--baseline DIR runs another ptstub tree (a checkout with its C helper built in place:
`python setup.py build_ext --inplace`) the same way, hits/s and breakdown, for a before/after in one run.

Usage: bench/bench_idle.py [--idle 100,1000,4000] [--hits 200] [--repeats 3] [--baseline DIR] [--json FILE]
The machine is shared and noisy: compare within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_gdb import HITS_SCRIPT, build_fixtures, gdb_batch, launch_stub, print_table, stop_stub  # noqa: E402

STUBS = ("ptstub", "gdbserver")
BREAKDOWN = ("cycle", "resume-all", "stop-all", "GDB's turn", "threads: ptstub", "threads: exchange")


def workload(program: str, idle: int, hits: int) -> list[str]:
    calls = ["--threads", "1", "--calls", str(hits), "--syscall", "none", "--idle", str(idle)]
    return ["--once", "127.0.0.1:0", program, *calls]


BASELINE: Path | None = None  # --baseline: another ptstub tree, run as the stub "baseline"


def run_loop(stub: str, program: str, idle: int, hits: int, profile: str | None = None) -> float:
    """One GDB breakpoint loop of `hits` stops; hits/s from the worker's own first-to-last-hit time."""
    script = __file__ if stub != "baseline" or BASELINE is None else str(BASELINE / "bench" / "bench_idle.py")
    command = [sys.executable, script, "--profiled-stub", profile, "--"] if profile else None
    if stub == "baseline" and command is None and BASELINE is not None:
        command = ["env", f"PYTHONPATH={BASELINE}", sys.executable, "-m", "ptstub"]
    with tempfile.TemporaryFile() as out:
        proc, port, _, _ = launch_stub(stub, workload(program, idle, hits), command, stdout=out)
        try:
            gdb_batch(port, program, [], HITS_SCRIPT)
            proc.wait(timeout=120)
        finally:
            stop_stub(proc)
        out.seek(0)
        text = out.read().decode(errors="replace")
    span = re.search(r"^stress-span-us: \d+ (\d+)$", text, re.M)
    counted = re.search(rf"^ptstub-count: hit_target \d+ {hits}$", text, re.M)
    if span is None or counted is None:
        raise RuntimeError(f"{stub}: the program did not complete its {hits} calls:\n{text[-500:]}")
    return (hits - 1) / (int(span.group(1)) / 1e6)


# ------------------------------------------------------------------------------ the instrumented stub
class _Probe:
    """Clock readings of one ptstub session, per hit of the breakpoint loop."""

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {name: [] for name in BREAKDOWN}
        self.full_resume_at = 0  # when the last resume of every thread started
        self.stopped_at = 0  # when the wait after it returned a stop
        self.threads_ns = 0
        self.exchange = (0, 0)
        self.last_resume_all = False

    def on_resume(self, start: int, end: int, every_thread: bool) -> None:
        self.last_resume_all = every_thread
        if not every_thread:
            return  # GDB's single-thread step over the breakpoint: part of GDB's turn
        if self.full_resume_at and self.stopped_at:
            self.samples["cycle"].append(start - self.full_resume_at)
            self.samples["GDB's turn"].append(start - self.stopped_at)
            self.samples["threads: ptstub"].append(self.threads_ns)
            self.samples["threads: exchange"].append(self.exchange[1] - self.exchange[0])
        self.samples["resume-all"].append(end - start)
        self.full_resume_at, self.stopped_at, self.threads_ns, self.exchange = start, 0, 0, (0, 0)

    def on_wait(self, stop_ns: int | None) -> None:
        if self.last_resume_all and not self.stopped_at:
            self.stopped_at = time.perf_counter_ns()
            if stop_ns is not None:
                self.samples["stop-all"].append(stop_ns)

    def on_threads_read(self, start: int, end: int, first_chunk: bool) -> None:
        self.threads_ns += end - start
        self.exchange = (start if first_chunk else self.exchange[0], end)


def profiled_stub(out_path: str, args: list[str]) -> int:
    """Serve GDB with ptstub (`ptstub ARGS`) and the probes in place; the samples go to `out_path`."""
    from ptstub import cli
    from ptstub.linux.inferior import Inferior
    from ptstub.rsp.features import TransferObject
    from ptstub.session.objects import TransferObjects

    probe = _Probe()
    clock = time.perf_counter_ns
    resume, wait, read_object = Inferior.resume, Inferior.wait, TransferObjects.handle_read_object

    def timed_resume(self: Any, actions: Any = None, default: Any = None) -> None:
        start = clock()
        resume(self, actions, default)
        # GDB's step over the breakpoint names one thread; its `vCont;c` reaches every thread
        probe.on_resume(start, clock(), default is not None or len(actions or ()) > 1)

    def timed_wait(self: Any, *a: Any, **k: Any) -> Any:
        stops = self._e.n_stops
        event = wait(self, *a, **k)
        if event is not None:
            probe.on_wait(self._e.last_stop_ns if self._e.n_stops != stops else None)
        return event

    def timed_read_object(self: Any, c: Any) -> bytes:
        start = clock()
        reply = read_object(self, c)
        if c.object is TransferObject.THREADS:
            probe.on_threads_read(start, clock(), c.offset == 0)
        return reply

    Inferior.resume, Inferior.wait, TransferObjects.handle_read_object = timed_resume, timed_wait, timed_read_object  # type: ignore[method-assign]
    try:
        return cli.main(args)
    finally:
        Path(out_path).write_text(json.dumps(probe.samples))


def breakdown(program: str, idle: int, hits: int, stub: str = "ptstub") -> tuple[float, dict[str, list[int]]]:
    """An instrumented ptstub loop: (hits/s, the per-hit samples in ns)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        rate = run_loop(stub, program, idle, hits, profile=path)
        return rate, json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


# ------------------------------------------------------------------------------ the run
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", default="1000", help="idle thread counts, comma-separated (default 1000)")
    parser.add_argument("--hits", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", help="another ptstub tree, run as a third stub")
    parser.add_argument("--json")
    opts = parser.parse_args()
    global BASELINE
    BASELINE = Path(opts.baseline).resolve() if opts.baseline else None
    stubs = (*STUBS, "baseline") if BASELINE else STUBS
    counts = [int(n) for n in opts.idle.split(",")]
    program = str(build_fixtures() / "stress")
    started = time.monotonic()
    load = os.getloadavg()[0]
    results: dict[str, dict[str, list[float]]] = {}
    profiles: dict[str, dict[int, dict[str, list[int]]]] = {}
    for idle in counts:
        for repeat in range(opts.repeats):
            for stub in stubs if repeat % 2 == 0 else stubs[::-1]:  # alternate, so drifting load hits all alike
                rate = run_loop(stub, program, idle, opts.hits)
                results.setdefault(f"hits/s {idle} idle", {}).setdefault(stub, []).append(rate)
            for stub in stubs[:1] + stubs[2:]:
                _, samples = breakdown(program, idle, opts.hits, stub)
                for name, values in samples.items():
                    profiles.setdefault(stub, {}).setdefault(idle, {n: [] for n in BREAKDOWN})[name].extend(values)
    table = print_table(results, 18, 26, "{:.4g}/{:.4g}/{:.4g}")
    if BASELINE:
        for name, by_stub in results.items():
            base = statistics.median(by_stub["baseline"])
            print(
                f"{name:<18} baseline {'{:.4g}/{:.4g}/{:.4g}'.format(*summary3(by_stub['baseline'])):>20}"
                f"  ptstub/baseline {statistics.median(by_stub['ptstub']) / base:.2f}x"
            )
    for stub, by_idle in profiles.items():
        print(f"\n{stub}:", end="")
        table[f"{stub} per hit"] = print_breakdown(by_idle)
    print(
        f"# {opts.repeats} repeats x {opts.hits} hits; load {load:.1f} -> {os.getloadavg()[0]:.1f}; "
        f"took {time.monotonic() - started:.0f} s"
    )
    if opts.json:
        Path(opts.json).write_text(json.dumps(table, indent=2))
    return 0


def summary3(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def print_breakdown(profiles: dict[int, dict[str, list[int]]]) -> dict[str, Any]:
    """The per-hit medians in µs, one line per idle count; the thread-list line also gives its share."""
    print(f"\nptstub per hit, median µs  {'  '.join(f'{name:>17}' for name in BREAKDOWN)}")
    table: dict[str, Any] = {}
    for idle, samples in profiles.items():
        medians = {name: statistics.median(v) / 1000 if v else float("nan") for name, v in samples.items()}
        table[str(idle)] = medians
        print(f"{idle:>6} idle threads       {'  '.join(f'{medians[name]:>17,.0f}' for name in BREAKDOWN)}")
    return table


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--profiled-stub" and sys.argv[3] == "--":
        sys.exit(profiled_stub(sys.argv[2], sys.argv[4:]))
    sys.exit(main())

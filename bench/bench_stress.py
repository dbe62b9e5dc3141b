#!/usr/bin/env python3
"""bench_stress.py: `ptstub stress` against the C reference tracer, and its `--stub` mode for ptstub against
GNU gdbserver, in one run.

Prints min/median/max over --repeats and the ratio of the medians:
  - engine face: `ptstub stress fixtures/stress --break hit_target --duration S` hits/s with 1 and 8
    worker threads (a busy counter thread is stopped and resumed at every stop, as in bench_engine.py),
    against `ref_tracer hits` doing the same all-stop cycle in C (target >= 0.8x);
  - churn face: the same with `--churn S` (S spawner threads creating and joining short-lived threads that
    each call hit_target() once; 1 worker), `ptstub stress` against `ref_tracer hits` on the same command
    line: every hit of every thread counts, short-lived ones included (target >= 0.67x, i.e. ptstub within
    1.5x of the C tracer's time per hit);
  - stub face: `ptstub stress --stub CMD` on the bundled program (GDB 13 in the loop, the counter read
    twice per stop) with ptstub's server against gdbserver (target >= 1.3x).
The machine is shared and noisy: compare within one run only; the runs of each figure are interleaved.

Usage:  python3 bench/bench_stress.py [--repeats N] [--seconds S] [--only engine,churn,stub] [--churn 8,50]
                                      [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_engine import (  # noqa: E402
    BenchError,
    Row,
    Series,
    Tools,
    build,
    c_hits,
    fmt_row,
    interleave,
    kv,
    measure,
    run_tool,
)

CALLS = 10_000_000  # per worker: the timed part ends at --seconds, long before
STUB_CALLS = 400  # per worker in --stub mode (GDB in the loop: a few hundred hits/s)


def ptstub_command() -> list[str]:
    exe = Path(sys.executable).with_name("ptstub")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("ptstub")
    return [found] if found else [sys.executable, "-m", "ptstub"]


def stress_json(argv: list[str], timeout: float) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        run_tool([*argv, "--json", out.name], timeout, "ptstub stress")
        return json.loads(Path(out.name).read_text())


def program(tools: Tools, threads: int, churn: int = 0) -> list[str]:
    argv = [tools.stress, "--threads", str(threads), "--calls", str(CALLS), "--syscall", "none"]
    return argv + (["--churn", str(churn)] if churn else [])


def engine_hits(tools: Tools, threads: int, seconds: float, churn: int = 0) -> float:
    argv = [*ptstub_command(), "stress", *program(tools, threads, churn)]
    argv += ["--break", "hit_target", "--duration", str(seconds), "--timeout", "30"]
    return float(stress_json(argv, seconds + 120)["hits_per_s"])


def c_churn_hits(tools: Tools, seconds: float, churn: int) -> float:
    """`ref_tracer hits` on the churn program: the same all-stop cycle, threads born and gone meanwhile."""
    argv = [tools.ref_tracer, "hits", *tools.bp_args, "--seconds", str(seconds), "--", *program(tools, 1, churn)]
    out = run_tool(argv, seconds + 120)
    return float(kv(out.strip().splitlines()[-1])["hits_per_s"])


def stub_hits(stub: str, threads: int) -> float:
    command = {
        "ptstub": " ".join(ptstub_command()) + " --once 127.0.0.1:{port} {prog} {args}",
        "gdbserver": "gdbserver --once 127.0.0.1:{port} {prog} {args}",
    }[stub]
    argv = [*ptstub_command(), "stress", "--stub", command, "--stress-threads", str(threads)]
    argv += ["--stress-calls", str(STUB_CALLS), "--stress-syscall", "nanosleep", "--timeout", "60"]
    return float(stress_json(argv, 600)["hits_per_s"])


def engine_rows(tools: Tools, cfg: argparse.Namespace) -> list[Row]:
    cfg.hit_seconds = cfg.seconds  # what c_hits reads
    rows = []
    for threads in (1, 8):
        row = Row(f"ptstub stress hits/s, {threads} worker{'s' if threads > 1 else ''}", "hit/s", True, ">=0.8")
        steps = [
            lambda t=threads, r=row: measure(r.c, lambda: c_hits(tools, cfg, t)),
            lambda t=threads, r=row: measure(r.ptstub, lambda: engine_hits(tools, t, cfg.seconds)),
        ]
        for rep in range(cfg.repeats):
            interleave(steps, rep)
        row.note = f"{cfg.repeats} x {cfg.seconds:g} s; reference: ref_tracer hits"
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


def churn_rows(tools: Tools, cfg: argparse.Namespace) -> list[Row]:
    rows = []
    for churn in cfg.churn:
        row = Row(f"ptstub stress hits/s, churn {churn}", "hit/s", True, ">=0.67")
        steps = [
            lambda s=churn, r=row: measure(r.c, lambda: c_churn_hits(tools, cfg.seconds, s)),
            lambda s=churn, r=row: measure(r.ptstub, lambda: engine_hits(tools, 1, cfg.seconds, s)),
        ]
        for rep in range(cfg.repeats):
            interleave(steps, rep)
        row.note = f"{cfg.repeats} x {cfg.seconds:g} s; 1 worker, {churn} spawners; reference: ref_tracer hits"
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


def stub_rows(cfg: argparse.Namespace) -> list[Row]:
    rows = []
    for threads in (1, 8):
        row = Row(f"--stub hits/s, {threads} worker{'s' if threads > 1 else ''}", "hit/s", True, ">=1.3")
        row.c = Series()  # gdbserver in the reference column
        steps = [
            lambda t=threads, r=row: measure(r.c, lambda: stub_hits("gdbserver", t)),
            lambda t=threads, r=row: measure(r.ptstub, lambda: stub_hits("ptstub", t)),
        ]
        for rep in range(cfg.repeats):
            interleave(steps, rep)
        row.note = f"{cfg.repeats} runs of {threads} x {STUB_CALLS} calls; reference: gdbserver"
        rows.append(row)
        print(fmt_row(row).replace(" C ", " gdbserver "), flush=True)
    return rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=2.0, help="timed part of each engine-face run")
    p.add_argument("--only", default="engine,churn,stub", help="comma-separated: engine, churn, stub")
    p.add_argument("--churn", default="8,50", help="spawner counts of the churn rows (comma-separated)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--targets", default="fixtures", choices=["fixtures", "bench", "auto"])
    cfg = p.parse_args(argv)
    only = set(cfg.only.split(","))
    cfg.churn = [int(n) for n in cfg.churn.split(",")]
    if not only <= {"engine", "churn", "stub"} or cfg.repeats < 1:
        p.error("--only takes engine, churn and/or stub; --repeats must be >= 1")
    try:
        tools = build(cfg.targets)
        rows = engine_rows(tools, cfg) if "engine" in only else []
        rows += churn_rows(tools, cfg) if "churn" in only else []
        rows += stub_rows(cfg) if "stub" in only else []
    except BenchError as err:
        print(f"bench_stress: {err}", file=sys.stderr)
        return 1
    if cfg.json:
        Path(cfg.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Thread churn: ptstub against GNU gdbserver on fixtures/turnover, side by side in one run.

The program: 50 spawner threads each create and join, in a loop, a thread that sleeps 100 µs, while the
main thread calls hit_target() 200 times, 500 µs apart (fixtures/turnover, its defaults). GDB breaks on
hit_target with `commands; silent; continue; end`.

Figures (min / median / max over --repeats; ratios of medians against gdbserver):
  GDB wall s      from GDB's start to its exit (the program's whole run through GDB)
  in process s    the same program under ptstub's Python API, `cont()` to the end, no GDB
  no debugger s   the program alone
With --syscalls, instead, the stub's own system calls (`strace -c` of the stub process; its program is
not followed): ptrace, wait4, and files opened and read (nearly all of them under /proc), per
short-lived thread the program made (a run without a breakpoint ten times as long, less a run with no
call) and per breakpoint stop (the run with the breakpoint, less start-up and its threads' share).

--baseline DIR adds a column for another ptstub tree (a checkout with its C helper built in place, e.g.
`git worktree add DIR main && cd DIR && python setup.py build_ext --inplace`), run the same way: a
before/after in one run.

Usage: bench/bench_churn.py [--repeats N] [--threads N] [--calls N] [--baseline DIR] [--syscalls] [--json F]
The machine is shared and noisy: compare within one run only; the stubs alternate run by run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GDB, GDBSERVER = "/usr/bin/gdb", "/usr/bin/gdbserver"
LOOP = """break hit_target
commands
silent
continue
end
continue
"""
IN_PROCESS = """
import sys, time, ptstub
from ptstub.events import Exited
start = time.perf_counter()
with ptstub.launch(sys.argv[1:], stdout=open("/dev/null", "w")) as inf:
    inf.insert_breakpoint(inf.symbol("hit_target"))
    while not isinstance(inf.cont(timeout=300), Exited):
        pass
print("seconds: %.6f" % (time.perf_counter() - start))
"""


@dataclass(frozen=True)
class Stub:
    """How to start one stub: its name in the table, the command before COMM PROG, its environment."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    env: dict[str, str]


def stubs(baseline: str | None) -> list[Stub]:
    here = Stub("ptstub", (sys.executable, "-m", "ptstub"), ROOT, dict(os.environ))
    found = [here, Stub("gdbserver", (GDBSERVER,), ROOT, dict(os.environ))]
    if baseline:
        base = Path(baseline).resolve()
        env = dict(os.environ, PYTHONPATH=str(base))
        found.insert(1, Stub("baseline", (sys.executable, "-m", "ptstub"), base, env))
    return found


def build_fixtures() -> Path:
    build = ROOT / "build" / "fixtures"
    subprocess.run(["cmake", "-S", str(ROOT / "fixtures"), "-B", str(build)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    return build


def start_stub(stub: Stub, argv: list[str], prefix: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """The stub serving `argv` on 127.0.0.1:0, once it listens: (process, port)."""
    command = [*prefix, *stub.command, "--once", "127.0.0.1:0", *argv]
    proc = subprocess.Popen(
        command, cwd=stub.cwd, env=stub.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    text = b""
    while not re.search(rb"Listening on port (\d+)\n", text):
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"{stub.name} did not start: {text.decode(errors='replace')}")
        text += chunk
    return proc, int(re.search(rb"Listening on port (\d+)", text).group(1))


def gdb_run(stub: Stub, argv: list[str], script: str, prefix: list[str] | None = None) -> tuple[float, str]:
    """GDB running `script` through `stub` to the program's end: (seconds, the program's output)."""
    proc, port = start_stub(stub, argv, prefix or [])
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".gdb") as f:
            f.write(script)
            f.flush()
            args = [GDB, "-nx", "-batch", "-ex", "set sysroot /", "-ex", f"target remote 127.0.0.1:{port}"]
            start = time.perf_counter()
            subprocess.run([*args, "-x", f.name, argv[0]], capture_output=True, timeout=600, check=False)
            seconds = time.perf_counter() - start
        out, _ = proc.communicate(timeout=60)  # the program's output comes through the stub's stdout
    finally:
        if proc.poll() is None:  # GDB or the program timed out: the stub (and its program) go too
            proc.kill()
            proc.wait()
    return seconds, out.decode(errors="replace")


def in_process(stub: Stub, argv: list[str]) -> float:
    """Seconds of the program's run under the Python API of the ptstub tree `stub` starts."""
    command = [sys.executable, "-c", IN_PROCESS, *argv]
    out = subprocess.run(command, cwd=stub.cwd, env=stub.env, capture_output=True, text=True, timeout=600)
    return float(re.search(r"seconds: ([\d.]+)", out.stdout).group(1))


def no_debugger(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, timeout=600)
    return time.perf_counter() - start


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def print_table(results: dict[str, dict[str, list[float]]], names: list[str]) -> dict[str, object]:
    """One line per figure: min/median/max per stub, and each ratio of medians against gdbserver."""
    others = [n for n in names if n != "gdbserver"]
    header = "".join(f"{n + ' min/med/max':>26}" for n in names)
    ratios = "".join(f"{n + '/gdbserver':>20}" for n in others)
    print(f"{'figure':<16}{header}{ratios}")
    table: dict[str, object] = {}
    for figure, by_stub in results.items():
        row = {n: summary(v) for n, v in by_stub.items()}
        cells = "".join(f"{'{:.3g}/{:.3g}/{:.3g}'.format(*row[n]) if n in row else 'n/a':>26}" for n in names)
        line_ratios = {}
        for n in others:
            if n in row and "gdbserver" in row and row["gdbserver"][1]:
                line_ratios[n] = row[n][1] / row["gdbserver"][1]
        text = "".join(f"{f'{line_ratios[n]:.2f}x' if n in line_ratios else '':>20}" for n in others)
        print(f"{figure:<16}{cells}{text}")
        table[figure] = {"values": row, "ratios": line_ratios}
    return table


def timing_main(opts: argparse.Namespace, argv: list[str]) -> dict[str, object]:
    results: dict[str, dict[str, list[float]]] = {}
    alone: list[float] = []
    all_stubs = stubs(opts.baseline)
    for repeat in range(opts.repeats):
        order = all_stubs if repeat % 2 == 0 else all_stubs[::-1]  # alternate: drifting load hits all alike
        for stub in order:
            seconds, output = gdb_run(stub, argv, LOOP)
            if "ptstub-count: hit_target" not in output:
                print(f"warning: {stub.name}: the program printed no count line", file=sys.stderr)
            results.setdefault("GDB wall s", {}).setdefault(stub.name, []).append(seconds)
            if stub.name != "gdbserver":
                results.setdefault("in process s", {}).setdefault(stub.name, []).append(in_process(stub, argv))
        alone.append(no_debugger(argv))
    names = [s.name for s in all_stubs]
    table = print_table(results, names)
    print(f"# {opts.repeats} repeats; program: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}")
    print("no debugger s    {:.3g}/{:.3g}/{:.3g}".format(*summary(alone)))
    table["no debugger s"] = summary(alone)
    return table


SYSCALLS = ("ptrace", "wait4", "openat", "read")


def strace_counts(stub: Stub, argv: list[str], script: str) -> tuple[dict[str, int], int]:
    """(system calls of the stub process by name, short-lived threads the program made)."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as counts:
        _, output = gdb_run(stub, argv, script, ["strace", "-c", "-o", counts.name, "--"])
        text = Path(counts.name).read_text()
    found = {name: 0 for name in SYSCALLS}
    for match in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", text, re.M):
        if match.group(2) in found:
            found[match.group(2)] = int(match.group(1))
    threads = re.search(r"ptstub-turnover: threads=(\d+)", output)
    return found, int(threads.group(1)) if threads else 0


def with_calls(argv: list[str], calls: int) -> list[str]:
    at = argv.index("--calls")
    return [*argv[: at + 1], str(calls), *argv[at + 2 :]]


def syscalls_main(opts: argparse.Namespace, argv: list[str]) -> dict[str, object]:
    """Per thread: a run without a breakpoint 10 times as long, less a run with no call (start-up,
    connection, exit); per stop: the run with the breakpoint, less start-up and its threads' share."""
    no_break = "continue\n"
    table: dict[str, object] = {}
    print(f"{'stub':<11}{'per thread (no breakpoint)':>40}{'per stop (breakpoint hits)':>40}")
    print(f"{'':<11}" + "".join(f"{n:>10}" for n in SYSCALLS) * 2)
    for stub in stubs(opts.baseline):
        fixed, fixed_threads = strace_counts(stub, with_calls(argv, 0), no_break)
        plain, plain_threads = strace_counts(stub, with_calls(argv, 10 * opts.calls), no_break)
        hits, hit_threads = strace_counts(stub, argv, LOOP)
        made = max(plain_threads - fixed_threads, 1)
        per_thread = {n: (plain[n] - fixed[n]) / made for n in SYSCALLS}
        per_stop = {
            n: (hits[n] - fixed[n] - per_thread[n] * (hit_threads - fixed_threads)) / opts.calls for n in SYSCALLS
        }
        row = "".join(f"{per_thread[n]:>10.2f}" for n in SYSCALLS) + "".join(f"{per_stop[n]:>10.1f}" for n in SYSCALLS)
        print(f"{stub.name:<11}{row}   (threads: {plain_threads} / {hit_threads})")
        table[stub.name] = {"per_thread": per_thread, "per_stop": per_stop, "threads": [plain_threads, hit_threads]}
    print("# openat/read: every file the stub process opens or reads (strace -c of the stub alone, not its program)")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--baseline", help="another ptstub tree, run as a third column")
    parser.add_argument("--syscalls", action="store_true", help="system calls per thread and per stop (strace)")
    parser.add_argument("--json")
    opts = parser.parse_args()
    program = str(build_fixtures() / "turnover")
    argv = [program, "--threads", str(opts.threads), "--calls", str(opts.calls)]
    table = syscalls_main(opts, argv) if opts.syscalls else timing_main(opts, argv)
    if opts.json:
        Path(opts.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

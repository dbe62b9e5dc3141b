#!/usr/bin/env python3
"""GDB in the loop: ptstub against GNU gdbserver, side by side in one run.

Figures (min / median / max over --repeats, ratios of medians, ptstub / gdbserver):
  hits/s      a breakpoint with `commands; silent; continue; end` on `hit_target` in fixtures/stress,
              1 and 8 threads (startup time subtracted: a run with 0 hits is timed too)
  connect     from `target remote` to the first prompt (GDB batch with no further command)
  read 1 MiB  `dump binary memory` of 1 MiB of the program's stack/heap through the stub, MB/s
  packets     requests GDB sends per multi-thread breakpoint stop (from `--remote-debug` counts)

`--startup` measures start-up alone, side by side (min / median / max of --repeats, default 15 here;
ratios of medians to gdbserver's): exec to `Listening on port` (wall ms and stub CPU ms), stub CPU ms
from exec to GDB's first prompt after `target remote`, and stub CPU ms of the whole session (exec,
`target remote`, `kill`, exit: what each of the testsuite's many stub starts costs). ptstub runs as
users start it, the `ptstub` script beside this Python (else `python -m ptstub`). In every mode but
`--agent`, `--baseline DIR` adds DIR/.venv/bin/ptstub (another tree, e.g. a worktree of the commit
before) as a third column, for before/after figures of one run (hits/s and `--cpu` figures; connect
and read only for this tree).
`--floor` adds the interpreter alone (`python -S -c pass`, `python -I -c pass`): what no Python stub can
go under.

`--cpu` measures instead what a loaded machine cannot blur, for both stubs in the same run:
  stub CPU/stop   the stub process's own CPU time (its CPU-time clock: user + system, not its children's) per
                  breakpoint stop, 1 and 8 threads: read after it exits (before it is reaped), minus a run
                  with no hits
  packets/stop    requests GDB sends per stop (`set debug remote 1`, "Sending packet" lines), likewise
  start-up        wall ms and stub CPU ms from exec to `Listening on port`, and stub CPU ms to GDB's
                  first prompt after `target remote`

`--agent` measures the target-side cases instead (bench/agent_cases.py): a condition that is never
true and an agent dprintf, hits/s at 1 and 8 threads; `--before CMD` adds another ptstub command line.

The hits/s figures also print each round's ratio (ptstub and gdbserver ran back to back) and the
lowest. `--load N` runs N busy processes for the whole measurement, at the stubs' own priority.

Usage: bench/bench_gdb.py [--repeats N] [--hits N] [--quick] [--baseline DIR] [--cpu | --startup [--floor]]
                          [--agent [--before CMD]] [--load N] [--json FILE]
The machine is shared and noisy: compare within one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gdb.stubs import GDB, GDBSERVER, running_stub  # noqa: E402

HITS_SCRIPT = """break hit_target
commands
silent
continue
end
continue
"""


def build_fixtures() -> Path:
    build = ROOT / "build" / "fixtures"
    subprocess.run(["cmake", "-S", str(ROOT / "fixtures"), "-B", str(build)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)
    return build


def gdb_batch(port: int, program: str, commands: list[str], script: str | None = None) -> float:
    args = [GDB, "-nx", "-batch", "-ex", "set sysroot /", "-ex", f"target remote 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    path = None
    if script:
        with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
            f.write(script)
            path = f.name
        args += ["-x", path]
    args.append(program)
    start = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if path:
        os.unlink(path)
    return elapsed


def hits_run(stub: str, program: str, threads: int, hits: int, command: list[str] | None = None) -> float:
    calls = max(1, hits // threads) if hits else 0
    args = ["--once", "127.0.0.1:0", program, "--threads", str(threads), "--calls", str(calls), "--syscall", "none"]
    proc, port, _, _ = launch_stub(stub, args, command)
    try:
        elapsed = gdb_batch(port, program, [], HITS_SCRIPT)
        proc.wait(timeout=60)
    finally:
        stop_stub(proc)
    return elapsed


def hits_per_second(stub: str, program: str, threads: int, hits: int, command: list[str] | None = None) -> float:
    base = hits_run(stub, program, threads, 0, command)
    total = hits_run(stub, program, threads, hits, command)
    return hits / max(total - base, 1e-6)


def connect_time(stub: str, program: str) -> float:
    with running_stub(stub, ["--once", "127.0.0.1:0", program]) as server:
        return gdb_batch(server.port, program, [])


def read_mib(stub: str, program: str) -> float:
    """MB/s of `dump binary memory` of 1 MiB, timed inside GDB (startup excluded)."""
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    script = f"""break main
continue
set $p = (char *) malloc(1048576)
python
import time
start = time.perf_counter()
gdb.execute("dump binary memory {out.name} $p $p+1048576")
print("read-seconds: %.6f" % (time.perf_counter() - start))
end
"""
    with running_stub(stub, ["--once", "127.0.0.1:0", program]) as server:
        with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
            f.write(script)
        args = [
            GDB,
            "-nx",
            "-batch",
            "-ex",
            "set sysroot /",
            "-ex",
            f"target remote 127.0.0.1:{server.port}",
            "-x",
            f.name,
            program,
        ]
        result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        os.unlink(f.name)
    os.unlink(out.name)
    seconds = float(re.search(r"read-seconds: ([\d.]+)", result.stdout).group(1))
    return (1 << 20) / 1e6 / seconds


def packets_per_stop(program: str) -> float:
    """Requests GDB sends per stop: count `getpkt` lines of `--remote-debug` for 0 and 200 hits."""
    counts = []
    for hits in (0, 200):
        with tempfile.TemporaryFile() as log:
            args = [
                sys.executable,
                "-m",
                "ptstub",
                "--remote-debug",
                "--once",
                "127.0.0.1:0",
                program,
                "--threads",
                "8",
                "--calls",
                str(hits // 8),
                "--syscall",
                "none",
            ]
            proc = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
            try:
                port = 0
                deadline = time.monotonic() + 30
                while not port and time.monotonic() < deadline:
                    log.seek(0)
                    found = re.search(rb"Listening on port (\d+)", log.read())
                    port = int(found.group(1)) if found else 0
                    time.sleep(0.01)
                gdb_batch(port, program, [], HITS_SCRIPT)
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            log.seek(0)
            counts.append(len(re.findall(rb"^getpkt ", log.read(), re.M)))
    return (counts[1] - counts[0]) / 200


def cpu_clock(pid: int) -> int:
    """The process CPU-time clock of `pid` (clock_getcpuclockid(3): CPUCLOCK_SCHED of the whole process),
    in ns, not ticks: all its threads, user + system, not its children (the traced program)."""
    return ((~pid) << 3) | 2


def stub_cpu_ms(pid: int) -> float:
    return time.clock_gettime(cpu_clock(pid)) * 1000


def gdb_cpu_probe(pid: int, path: str) -> str:
    """A GDB command that writes the stub's CPU ms to `path` (GDB runs it while the stub is alive)."""
    return f"python import time; open({path!r}, 'w').write(repr(time.clock_gettime({cpu_clock(pid)}) * 1000))"


def launch_stub(
    stub: str, args: list[str], command: list[str] | None = None, stdout: Any = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], int, float, float]:
    """Start a stub; (process, port, wall ms to `Listening on port`, stub CPU ms at that line).
    `command` replaces the stub's own (a wrapper that takes the same ARGS); `stdout` gets the program's."""
    if command is None:
        command = ptstub_command() if stub == "ptstub" else [GDBSERVER]
    start = time.perf_counter()
    proc = subprocess.Popen([*command, *args], stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    text = b""
    while b"Listening on port" not in text or not text.endswith(b"\n"):
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            raise RuntimeError(f"{stub} did not start: {text.decode(errors='replace')}")
        text += chunk
    wall = (time.perf_counter() - start) * 1000
    cpu = stub_cpu_ms(proc.pid)
    port = int(re.search(rb"Listening on port (\d+)", text).group(1))
    return proc, port, wall, cpu


def ptstub_command() -> list[str]:
    """ptstub as users start it: the console script installed beside this Python, else `-m ptstub`."""
    script = Path(sys.executable).with_name("ptstub")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptstub"]


def stop_stub(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


def cpu_run(
    stub: str, program: str, threads: int, hits: int, count_packets: bool, command: list[str] | None = None
) -> tuple[float, int]:
    """The plain GDB breakpoint loop (HITS_SCRIPT) of `hits` stops: (the stub's CPU ms from exec to exit,
    requests GDB sent). The stub's CPU-time clock is read once it has exited and before it is reaped
    (waitid with WNOWAIT): a zombie keeps its final count, and nothing is added to GDB's loop."""
    calls = hits // threads
    args = ["--once", "127.0.0.1:0", program, "--threads", str(threads), "--calls", str(calls), "--syscall", "none"]
    proc, port, _, _ = launch_stub(stub, args, command)
    try:
        commands = ["set debug remote 1"] if count_packets else []
        args = [GDB, "-nx", "-batch", "-ex", "set sysroot /", *sum((["-ex", c] for c in commands), [])]
        with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
            f.write(HITS_SCRIPT)
        args += ["-ex", f"target remote 127.0.0.1:{port}", "-x", f.name, program]
        result = subprocess.run(args, capture_output=True, timeout=600, check=False)
        os.unlink(f.name)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: its clock still reads
        cpu = stub_cpu_ms(proc.pid)
        packets = len(re.findall(rb"Sending packet: ", result.stdout + result.stderr))
    finally:
        stop_stub(proc)
    return cpu, packets


def per_stop(
    stub: str, program: str, threads: int, hits: int, count_packets: bool = False, command: list[str] | None = None
) -> tuple[float, float]:
    """(stub CPU us, requests) per stop: a loop of `hits` stops minus one of none (start-up, connection, exit)."""
    base_cpu, base_packets = cpu_run(stub, program, threads, 0, count_packets, command)
    cpu, packets = cpu_run(stub, program, threads, hits, count_packets, command)
    return (cpu - base_cpu) * 1000 / hits, (packets - base_packets) / hits


def startup(stub: str, program: str, command: list[str] | None = None) -> tuple[float, float, float, float]:
    """(wall ms exec -> Listening, stub CPU ms exec -> Listening, stub CPU ms to GDB's first prompt, stub
    CPU ms of the whole session: exec, `target remote`, `kill`, exit). GDB's testsuite starts a stub
    several times per file: the whole session is what each start costs it."""
    proc, port, wall, cpu = launch_stub(stub, ["--once", "127.0.0.1:0", program], command)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".cpu", delete=False) as out:
            pass
        gdb_batch(port, program, [gdb_cpu_probe(proc.pid, out.name), "kill"])
        connected = float(Path(out.name).read_text())
        os.unlink(out.name)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: its clock still reads
        session = stub_cpu_ms(proc.pid)
    finally:
        stop_stub(proc)
    return wall, cpu, connected, session


def interpreter_ms(args: list[str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of this Python run with `args`: the floor under any stub written in it."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args])
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return (time.perf_counter() - start) * 1000, (usage.ru_utime + usage.ru_stime) * 1000


def stub_columns(opts: argparse.Namespace) -> dict[str, list[str] | None]:
    """The columns of a run: ptstub, `--baseline DIR`'s ptstub when given, gdbserver (None: its own command)."""
    commands: dict[str, list[str] | None] = {"ptstub": None}
    if opts.baseline:
        commands["baseline"] = [str(Path(opts.baseline).resolve() / ".venv" / "bin" / "ptstub")]
    commands["gdbserver"] = None
    return commands


class Columns:
    """The stubs of one run (`stub_columns`) and their samples: name -> column -> values."""

    def __init__(self, opts: argparse.Namespace) -> None:
        self.commands = stub_columns(opts)
        self.order = list(self.commands)
        self.results: dict[str, dict[str, list[float]]] = {}

    def record(self, name: str, column: str, value: float) -> None:
        self.results.setdefault(name, {}).setdefault(column, []).append(value)

    def rounds(self, repeats: int) -> Iterator[list[tuple[str, str, list[str] | None]]]:
        """Per repeat, (column, stub kind, command) in that repeat's order: the order alternates, so
        drifting load hits every column alike."""
        for repeat in range(repeats):
            order = self.order if repeat % 2 == 0 else self.order[::-1]
            yield [(c, "gdbserver" if c == "gdbserver" else "ptstub", self.commands[c]) for c in order]


def startup_main(opts: argparse.Namespace, simple: str) -> int:
    """Start-up figures only (--startup), every stub of the run side by side, ratios to gdbserver."""
    cols = Columns(opts)
    for columns in cols.rounds(opts.repeats):
        for column, stub, command in columns:
            wall, cpu, connected, session = startup(stub, simple, command)
            cols.record("exec->Listening wall ms", column, wall)
            cols.record("exec->Listening CPU ms", column, cpu)
            cols.record("exec->1st prompt CPU ms", column, connected)
            cols.record("whole session CPU ms", column, session)
        if opts.floor:
            for flag in ("-S", "-I"):
                wall, cpu = interpreter_ms([flag, "-c", "pass"])
                cols.record(f"python {flag} -c pass wall ms", "python", wall)
                cols.record(f"python {flag} -c pass CPU ms", "python", cpu)
    table = print_columns(cols.results, cols.order + (["python"] if opts.floor else []))
    print(f"# {opts.repeats} repeats; ptstub: {' '.join(ptstub_command())}; load {os.getloadavg()[0]:.1f}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(table, indent=2))
    return 0


def print_columns(results: dict[str, dict[str, list[float]]], columns: list[str]) -> dict[str, Any]:
    """One line per figure: min/median/max per column, and each column's median over gdbserver's."""
    width = 24
    head = "".join(f"{c + ' min/med/max':>{width}}" for c in columns)
    ratios = "".join(f"{c[:8] + '/gdbs':>14}" for c in columns if c not in ("gdbserver", "python"))
    print(f"{'figure':<26}{head}{ratios}")
    table: dict[str, Any] = {}
    for name, by_column in results.items():
        cells, row = "", {}
        for column in columns:
            values = by_column.get(column)
            row[column] = summary(values) if values else None
            cells += f"{'{:.3g}/{:.3g}/{:.3g}'.format(*row[column]) if values else '-':>{width}}"
        reference = row.get("gdbserver")
        line = ""
        for column in columns:
            if column not in ("gdbserver", "python") and row[column] and reference:
                line += f"{row[column][1] / reference[1]:>13.2f}x"
        table[name] = row
        print(f"{name:<26}{cells}{line}")
    return table


def cpu_main(opts: argparse.Namespace, stress: str, simple: str) -> int:
    """Stub CPU and requests per stop, start-up; every column of the run side by side (`--baseline`)."""
    cols = Columns(opts)
    for columns in cols.rounds(opts.repeats):
        for column, stub, command in columns:
            for threads in (1, 8):
                cpu = per_stop(stub, stress, threads, opts.hits, command=command)[0]
                cols.record(f"CPU us/stop {threads} thr", column, cpu)
            wall, cpu, connected, session = startup(stub, simple, command)
            cols.record("exec->Listening wall ms", column, wall)
            cols.record("exec->Listening CPU ms", column, cpu)
            cols.record("exec->1st prompt CPU ms", column, connected)
            cols.record("whole session CPU ms", column, session)
    for column, stub, command in next(cols.rounds(1)):
        for threads in (1, 8):
            packets = per_stop(stub, stress, threads, 200, True, command)[1]
            cols.record(f"packets/stop {threads} thr", column, packets)
    table = print_columns(cols.results, cols.order)
    print(f"# {opts.repeats} repeats x {opts.hits} hits; load {os.getloadavg()[0]:.1f}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(table, indent=2))
    return 0


def summary(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def print_table(results: dict[str, dict[str, list[float]]], name_width: int, width: int, fmt: str) -> dict[str, Any]:
    """One line per figure: min/median/max per stub and the ratio of the medians (ptstub / gdbserver)."""
    print(f"{'figure':<{name_width}} {'ptstub min/med/max':>{width}} {'gdbserver min/med/max':>{width}} {'ratio':>7}")
    table: dict[str, Any] = {}
    for name, by_stub in results.items():
        p, g = summary(by_stub["ptstub"]), summary(by_stub["gdbserver"])
        ratio = p[1] / g[1] if g[1] else float("nan")
        table[name] = {"ptstub": p, "gdbserver": g, "ratio": ratio}
        print(f"{name:<{name_width}} {fmt.format(*p):>{width}} {fmt.format(*g):>{width}} {ratio:>6.2f}x")
    return table


def loop_main(opts: argparse.Namespace, stress: str, simple: str) -> int:
    """hits/s, connect and 1 MiB read, every column of the run side by side (`--baseline`)."""
    cols = Columns(opts)
    for columns in cols.rounds(opts.repeats):
        for column, stub, command in columns:
            for threads in (1, 8):
                rate = hits_per_second(stub, stress, threads, opts.hits, command)
                cols.record(f"hits/s {threads} thread(s)", column, rate)
            if command is None:  # connect and read: the tree's own ptstub and gdbserver
                cols.record("connect s", column, connect_time(stub, simple))
                cols.record("read 1 MiB MB/s", column, read_mib(stub, simple))
    table = print_columns(cols.results, cols.order)
    print_round_ratios(cols.results, ("hits/s 1 thread(s)", "hits/s 8 thread(s)"))
    per_stop = packets_per_stop(stress)
    print(f"requests per 8-thread breakpoint stop (ptstub): {per_stop:.1f}")
    table["requests per stop"] = {"ptstub": per_stop}
    if opts.json:
        Path(opts.json).write_text(json.dumps(table, indent=2))
    return 0


def print_round_ratios(results: dict[str, dict[str, list[float]]], names: tuple[str, ...]) -> None:
    """Each round's ptstub / gdbserver ratio (the two ran back to back in that round), and the lowest:
    a claim of "faster in every run" rests on the lowest, not on the ratio of the medians."""
    for name in names:
        by_column = results.get(name, {})
        pairs = list(zip(by_column.get("ptstub", []), by_column.get("gdbserver", []), strict=False))
        ratios = [p / g for p, g in pairs if g]
        if ratios:
            listed = " ".join(f"{r:.2f}" for r in ratios)
            print(f"{name}, ptstub/gdbserver per round: {listed} (lowest {min(ratios):.2f}x)")


@contextlib.contextmanager
def cpu_load(hogs: int) -> Iterator[None]:
    """`hogs` busy processes at the stubs' own priority for the time of the measurement (`--load`): the
    machine is then as loaded as a CI runner with other jobs; they are killed whatever happens."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL) for _ in range(hogs)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="stub CPU per stop, packets per stop, start-up")
    parser.add_argument("--startup", action="store_true", help="start-up only, side by side (default 15 repeats)")
    parser.add_argument("--baseline", metavar="DIR", help="DIR/.venv/bin/ptstub (another tree) as another column")
    parser.add_argument("--floor", action="store_true", help="with --startup: the bare interpreter's figures too")
    parser.add_argument("--agent", action="store_true", help="never-true condition and agent dprintf hits/s")
    parser.add_argument("--before", help="with --agent: another ptstub command line, measured beside")
    parser.add_argument("--load", type=int, default=0, metavar="N", help="run N busy processes meanwhile")
    parser.add_argument("--json")
    opts = parser.parse_args()
    with cpu_load(opts.load):
        return measure(opts)


def measure(opts: argparse.Namespace) -> int:
    if opts.quick:
        opts.repeats, opts.hits = 1, 400
    build = build_fixtures()
    stress, simple = str(build / "stress"), str(build / "simple")
    if opts.startup:
        if "--repeats" not in sys.argv:
            opts.repeats = 15
        return startup_main(opts, simple)
    if opts.cpu:
        return cpu_main(opts, stress, simple)
    if opts.agent:
        from bench import agent_cases

        table = agent_cases.run(stress, opts.repeats, opts.hits * 10, opts.before, gdb_batch)
        print(f"# {opts.repeats} repeats x {opts.hits * 10} hits; load {os.getloadavg()[0]:.1f}")
        if opts.json:
            Path(opts.json).write_text(json.dumps(table, indent=2))
        return 0
    return loop_main(opts, stress, simple)


if __name__ == "__main__":
    sys.exit(main())

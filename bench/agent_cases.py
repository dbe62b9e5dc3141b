"""bench_gdb.py's target-side cases: a condition that is never true, and an agent dprintf.

Both are judged by the stub at each hit without GDB in the loop (ptstub: in its C engine, see
docs/design-notes.md, "Conditions and dprintf in the engine"), so the stub sets the rate:
  cond hits/s     `break hit_target if i == -1` with `set breakpoint condition-evaluation target`
  dprintf hits/s  `dprintf hit_target,"%d\\n",i` with `set dprintf-style agent`
on fixtures/stress at 1 and 8 worker threads (plus its main and counter threads), hits / (wall time
of the run minus that of a run with no hits). `--before CMD` adds a third column: another ptstub
command line (say, another checkout's `.venv/bin/ptstub`), measured in the same run.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import subprocess
from collections.abc import Callable, Iterator

from tests.gdb.stubs import Stub, _kill_group, stub_command

SCRIPTS = {
    "cond": "set breakpoint condition-evaluation target\nbreak hit_target if i == -1\ncontinue\n",
    "dprintf": 'set dprintf-style agent\ndprintf hit_target,"%d\\n",i\ncontinue\n',
}


@contextlib.contextmanager
def _stub(stub: str, args: list[str], before: str | None) -> Iterator[Stub]:
    """A stub whose stdout (a dprintf's lines) goes to /dev/null, so that a pipe never fills."""
    argv = [*before.split(), *args] if stub == "before" and before else stub_command(stub, args)
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    server = Stub(proc, 0)
    try:
        match = re.search(r"Listening on port (\d+)", server.read_stderr(20, until="Listening on port"))
        if not match:
            raise RuntimeError(f"{stub} did not start: {server.stderr}")
        server.port = int(match.group(1))
        yield server
    finally:
        _kill_group(proc)


def _run(stub: str, case: str, program: str, threads: int, hits: int, before: str | None, batch: Callable) -> float:
    calls = max(1, hits // threads) if hits else 0
    args = ["--once", "127.0.0.1:0", program, "--threads", str(threads), "--calls", str(calls), "--syscall", "none"]
    with _stub(stub, args, before) as server:
        elapsed = batch(server.port, program, [], SCRIPTS[case])
        server.proc.wait(timeout=120)
    return float(elapsed)


def hits_per_second(stub: str, case: str, program: str, threads: int, hits: int, before: str | None, batch) -> float:
    base = _run(stub, case, program, threads, 0, before, batch)
    total = _run(stub, case, program, threads, hits, before, batch)
    return hits / max(total - base, 1e-6)


def run(program: str, repeats: int, hits: int, before: str | None, batch: Callable) -> dict[str, dict[str, float]]:
    """Every case at 1 and 8 threads, the stubs alternating in each repeat; prints one line per
    figure (medians) with ptstub / gdbserver and, with `before`, ptstub / before."""
    stubs = ["ptstub", "gdbserver"] + (["before"] if before else [])
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(repeats):
        for case in SCRIPTS:
            for threads in (1, 8):
                for stub in stubs:
                    rate = hits_per_second(stub, case, program, threads, hits, before, batch)
                    results.setdefault(f"{case} hits/s {threads} thr", {}).setdefault(stub, []).append(rate)
    header = f"{'figure':<22} {'ptstub':>9} {'gdbserver':>10} {'ratio':>7}"
    print(header + (f" {'before':>9} {'after/before':>13}" if before else ""))
    table: dict[str, dict[str, float]] = {}
    for name, by_stub in results.items():
        med = {stub: statistics.median(values) for stub, values in by_stub.items()}
        row = dict(med, ratio=med["ptstub"] / med["gdbserver"])
        line = f"{name:<22} {med['ptstub']:>9.0f} {med['gdbserver']:>10.0f} {row['ratio']:>6.2f}x"
        if before:
            row["after/before"] = med["ptstub"] / med["before"]
            line += f" {med['before']:>9.0f} {row['after/before']:>12.2f}x"
        print(line)
        table[name] = row
    return table

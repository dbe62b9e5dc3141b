#!/usr/bin/env python3
"""bench_engine.py: ptstub's all-stop engine against a plain C reference tracer (and gdbserver), in one run.

Prints, one line per figure, min/median/max over repeats for ptstub and for `bench/ref_tracer.c`, and the
ratio of the medians (ptstub / C):
  - breakpoint hits/s through the Python API (`cont()` in a loop) with 1 and 8 threads hitting `hit_target`
    in `fixtures/stress`, C doing the same all-stop cycle (and, for 1 thread, the bare breakpoint cycle);
  - stop-all latency, interrupt -> every thread stopped, and stop + resume, for 1, 16, 64 and 256 threads of
    `fixtures/spin`, all blocked and half busy (more busy threads than CPUs);
  - attach time to a running 1,000-thread `spin`, also for `gdbserver --attach` (start -> "Listening on port").
The machine is shared and noisy: compare within one run only.  See bench/README.md for what each figure
means.

Usage:  python3 bench/bench_engine.py [--quick] [--json FILE] [--only hits,stopall,attach]

Process hygiene: the ptstub side runs in worker subprocesses of this script (`--worker ...`), so that no
`subprocess.Popen` of this process can reap a traced child (docs/kernel-facts.md §7, last item) and a crash or hang of
the engine costs one figure, not the run.  Every process started here is registered and killed on any exit,
Ctrl-C or SIGTERM included; launched targets die with their tracer (PTRACE_O_EXITKILL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUILD = BENCH / ".build"
GDBSERVER = shutil.which("gdbserver") or "/usr/bin/gdbserver"
STRESS_CALLS = 100_000_000  # per thread; the timed runs end long before


class BenchError(Exception):
    """A figure could not be measured; the message says why (one line)."""


# ------------------------------------------------------------------------------------ process registry
class Children:
    """Every process this script starts; `kill_all()` kills those still running, newest first."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv), **kw)
        self.procs.append(proc)
        return proc

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """Kill `proc` if it still runs, reap it, forget it."""
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"warning: process {proc.pid} did not die", file=sys.stderr)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        if proc in self.procs:
            self.procs.remove(proc)

    def kill_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.finish(proc, timeout=5.0)


CHILDREN = Children()


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_tool(argv: Sequence[str], timeout: float, name: str = "") -> str:
    """Run a measuring program to its end; its stdout, or BenchError with its stderr's last line."""
    name = name or f"{Path(argv[0]).name} {argv[1]}"
    proc = CHILDREN.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{name}: no result within {timeout:.0f} s (killed)") from None
    finally:
        CHILDREN.finish(proc)
    if proc.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
        raise BenchError(f"{name} exited with {proc.returncode}: {last}")
    return out.decode(errors="replace")


def kv(line: str) -> dict[str, str]:
    """`a=1 b=2` -> {'a': '1', 'b': '2'}."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


# ------------------------------------------------------------------------------------ build
@dataclass
class Tools:
    ref_tracer: str
    stress: str
    spin: str
    targets: str  # where stress and spin come from ("fixtures" or "bench/targets")
    bp_args: list[str] = field(default_factory=list)  # how ref_tracer finds hit_target


def compile_c(src: Path, out: Path, flags: Sequence[str]) -> None:
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return
    cmd = ["cc", *flags, "-o", str(out), str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BenchError(f"cannot build {src.name}: {res.stderr.strip().splitlines()[-1:]}")


def build_fixture(name: str, prefer: str) -> tuple[str, str]:
    """The `name` fixture binary and where it came from: fixtures/ (cmake, else cc with the same flags), or
    the private stand-in in bench/targets/ when the fixture does not exist yet."""
    fixture_src = REPO / "fixtures" / f"{name}.c"
    if prefer != "bench" and fixture_src.exists():
        fdir = BUILD / "fixtures"
        res = subprocess.run(
            ["cmake", "-S", str(REPO / "fixtures"), "-B", str(fdir), "-DCMAKE_BUILD_TYPE=Debug"],
            capture_output=True,
            text=True,
        )
        if res.returncode == 0:
            res = subprocess.run(["cmake", "--build", str(fdir), "--target", name], capture_output=True, text=True)
        if res.returncode == 0 and (fdir / name).exists():
            return str(fdir / name), "fixtures (cmake)"
        out = BUILD / f"fixture_{name}"  # the fixtures' CMakeLists flags, for when cmake cannot configure yet
        compile_c(fixture_src, out, ["-std=gnu11", "-O0", "-g", "-pthread", "-w"])
        return str(out), "fixtures (cc)"
    if prefer == "fixtures":
        raise BenchError(f"fixtures/{name}.c does not exist")
    out = BUILD / f"standin_{name}"
    compile_c(BENCH / "targets" / f"{name}.c", out, ["-O0", "-g", "-pthread", "-Wall"])
    return str(out), "bench/targets (stand-in)"


def breakpoint_args(exe: str, name: str = "hit_target") -> list[str]:
    """ref_tracer's breakpoint option for `name` in `exe`: --bp-offset (from the load base) for a PIE,
    --bp-addr for a fixed-address executable. Read with pyelftools, as ptstub's own `symbol()` does."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(exe, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
        syms = symtab.get_symbol_by_name(name) if isinstance(symtab, SymbolTableSection) else None
        if not syms:
            raise BenchError(f"{exe}: no symbol {name}")
        value = syms[0]["st_value"]
        if elf["e_type"] == "ET_DYN":
            low = min(s["p_vaddr"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD") & ~0xFFF
            return ["--bp-offset", f"{value - low:x}"]
        return ["--bp-addr", f"{value:x}"]


def build(targets: str) -> Tools:
    BUILD.mkdir(exist_ok=True)
    ref = BUILD / "ref_tracer"
    compile_c(BENCH / "ref_tracer.c", ref, ["-O2", "-Wall", "-Wextra"])
    stress, where_stress = build_fixture("stress", targets)
    spin, where_spin = build_fixture("spin", targets)
    where = where_stress if where_stress == where_spin else f"stress: {where_stress}, spin: {where_spin}"
    return Tools(str(ref), stress, spin, where, breakpoint_args(stress))


def stress_argv(tools: Tools, threads: int) -> list[str]:
    return [tools.stress, "--threads", str(threads), "--calls", str(STRESS_CALLS), "--syscall", "none"]


def spin_argv(tools: Tools, threads: int, busy: int) -> list[str]:
    """`spin` with `threads` threads in all: the main thread (blocked in read(0), --stdin: exits at EOF) and
    threads-1 workers, `busy` of them busy-looping, the others blocked in pthread_cond_wait."""
    return [tools.spin, "--threads", str(threads - 1), "--busy", str(busy), "--stdin"]


# ------------------------------------------------------------------------------------ ptstub side
def probe_ptstub() -> str | None:
    """None if `import ptstub; ptstub.launch` works in a fresh interpreter, else the reason."""
    res = subprocess.run(
        [sys.executable, "-c", "import ptstub; ptstub.launch; ptstub.attach; print(ptstub.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode == 0:
        return None
    return (res.stderr.strip().splitlines() or ["import failed"])[-1]


def run_worker(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run this script as a ptstub worker; its `RESULT {...}` line as a dict."""
    out = run_tool(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *args], timeout, f"ptstub worker {args[0]}"
    )
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            if "error" in result:
                raise BenchError(f"ptstub: {result['error']}")
            return result
    raise BenchError("ptstub worker printed no result")


def worker_hits(argv: list[str], seconds: float) -> dict[str, object]:
    import ptstub
    from ptstub.events import BreakpointHit, Exited, Killed

    hits, t_first, t_last = 0, 0.0, 0.0
    with open(os.devnull, "wb") as devnull, ptstub.launch(argv, stdout=devnull) as inf:
        address = inf.symbol("hit_target")
        inf.insert_breakpoint(address)
        while True:
            event = inf.cont(timeout=30.0)
            if isinstance(event, BreakpointHit):
                hits += 1
                t_last = time.perf_counter()
                if not t_first:
                    t_first = t_last
                if t_last - t_first >= seconds:
                    break
            elif isinstance(event, (Exited, Killed)):
                break
            else:
                return {"error": f"unexpected stop {event!r}"}
        stats = dict(inf.stats) if hasattr(inf, "stats") else {}
    secs = t_last - t_first
    return {"hits": hits, "seconds": secs, "hits_per_s": (hits - 1) / secs if secs > 0 else 0.0, "stats": stats}


def worker_stopall(pid: int, rounds: int, gap: float, realtime: bool = False) -> dict[str, object]:
    """`realtime`: the public path (`measure_stop_resume`: stop-all, then `resume()` with ptstub's
    real-time window when its policy allows it); else the engine's own C loop at the normal policy."""
    import ptstub
    from ptstub.target import ResumeAction, ResumeKind

    with ptstub.attach(pid) as inf:
        measure = getattr(inf, "measure_stop_resume" if realtime else "measure_stop_all", None)
        if measure is None:
            return {"error": "this ptstub cannot measure that"}
        policy = getattr(inf, "realtime", None)
        if realtime and (policy is None or not policy.enabled):
            return {"error": f"no raised priority: {policy.reason if policy else 'no policy'}"}
        nthreads = len(inf.threads())
        inf.resume(default=ResumeAction(ResumeKind.CONTINUE, 0))
        time.sleep(0.02)
        samples: list[tuple[float, float]] = []
        for _ in range(rounds):  # one round per call, so that the threads run `gap` between rounds, as in C
            samples += measure(1)
            time.sleep(gap)
        inf.detach()
    return {
        "threads": nthreads,
        "stop_us": [s * 1e6 for s, _ in samples],
        "stop_resume_us": [c * 1e6 for _, c in samples],
    }


def worker_attach(pid: int) -> dict[str, object]:
    import ptstub

    attach = ptstub.attach  # `ptstub` loads the engine on first use: keep that import out of the timing
    t0 = time.perf_counter()
    inf = attach(pid)
    t1 = time.perf_counter()
    try:
        nthreads = len(inf.threads())
    finally:
        inf.detach()
    return {"attach_us": (t1 - t0) * 1e6, "threads": nthreads}


def worker_main(argv: list[str]) -> int:
    """`--worker hits SECONDS PROG...` | `--worker stopall PID ROUNDS GAP_S` | `--worker attach PID`."""
    kind = argv[0]
    try:
        if kind == "hits":
            result = worker_hits(argv[2:], float(argv[1]))
        elif kind in ("stopall", "stopall-rt"):
            result = worker_stopall(int(argv[1]), int(argv[2]), float(argv[3]), kind == "stopall-rt")
        elif kind == "attach":
            result = worker_attach(int(argv[1]))
        else:
            result = {"error": f"unknown worker {kind}"}
    except Exception as err:  # noqa: BLE001 - reported to the driver as one line, never a traceback
        result = {"error": f"{type(err).__name__}: {err}"}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------ statistics, rows
@dataclass
class Series:
    """Samples of one figure for one tool."""

    samples: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.samples)

    def stats(self) -> tuple[float, float, float]:
        return min(self.samples), statistics.median(self.samples), max(self.samples)


@dataclass
class Row:
    name: str
    unit: str  # "hit/s", "us", "ms"
    higher_is_better: bool
    target: str
    ptstub: Series = field(default_factory=Series)
    c: Series = field(default_factory=Series)
    extra: dict[str, Series] = field(default_factory=dict)  # more columns: gdbserver, C+FIFO, ...
    note: str = ""

    def ratio(self, other: Series | None = None) -> float | None:
        other = other or self.c
        if not (self.ptstub.ok and other.ok):
            return None
        base = other.stats()[1]
        return self.ptstub.stats()[1] / base if base else None


def fmt_value(v: float, unit: str) -> str:
    if unit == "hit/s":
        return f"{v / 1000:.1f}k"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_series(s: Series, unit: str) -> str:
    if not s.ok:
        return "n/a"
    lo, med, hi = s.stats()
    return "/".join(fmt_value(v, unit) for v in (lo, med, hi))


def fmt_row(row: Row) -> str:
    ratio = row.ratio()
    text = (
        f"{row.name:<36} {row.unit:>5}  ptstub {fmt_series(row.ptstub, row.unit):<20} "
        f"C {fmt_series(row.c, row.unit):<20} ratio {'n/a' if ratio is None else f'{ratio:.2f}x':<6}"
        f" target {row.target:<6}"
    )
    for name, series in row.extra.items():
        r = row.ratio(series)
        text += f"  | {name} {fmt_series(series, row.unit)} (ptstub/{name} {'n/a' if r is None else f'{r:.2f}x'})"
    if row.note:
        text += f"  [{row.note}]"
    return text


HEADER = f"{'figure':<36} {'unit':>5}  {'min/median/max':<27} {'min/median/max':<22} (ratio of medians)"


def measure(series: Series, what: Callable[[], float | list[float]]) -> None:
    """Add one repeat's samples to `series`; a failure is recorded once and printed."""
    try:
        value = what()
    except BenchError as err:
        if series.error is None:
            print(f"  ! {err}", file=sys.stderr, flush=True)
        series.error = str(err)
        return
    series.samples += value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------------ the figures
def interleave(steps: list[Callable[[], None]], rep: int) -> None:
    """Run one repeat of every tool, starting with a different one each repeat (noise hits them alike)."""
    k = rep % len(steps)
    for step in steps[k:] + steps[:k]:
        step()


def c_hits(tools: Tools, cfg: argparse.Namespace, threads: int, *extra: str) -> float:
    out = run_tool(
        [
            tools.ref_tracer,
            "hits",
            "--threads",
            str(threads),
            *tools.bp_args,
            "--seconds",
            str(cfg.hit_seconds),
            *extra,
            "--",
            *stress_argv(tools, threads),
        ],
        cfg.hit_seconds + 120,
    )
    return float(kv(out.strip().splitlines()[-1])["hits_per_s"])


def ptstub_hits(tools: Tools, cfg: argparse.Namespace, threads: int) -> float:
    res = run_worker(["hits", str(cfg.hit_seconds), *stress_argv(tools, threads)], cfg.hit_seconds + 40)
    return float(res["hits_per_s"])


def hits_row(tools: Tools, cfg: argparse.Namespace, threads: int, have_ptstub: bool) -> Row:
    row = Row(
        f"hits/s {threads} thread{'s' if threads > 1 else ''}, all-stop",
        "hit/s",
        True,
        ">=0.9" if threads == 1 else ">=0.8",
    )
    steps = [lambda: measure(row.c, lambda: c_hits(tools, cfg, threads))]
    if threads == 1:
        bare = row.extra["C bare bp cycle"] = Series()
        steps.append(lambda: measure(bare, lambda: c_hits(tools, cfg, threads, "--no-stop-all")))
    if have_ptstub:
        steps.append(lambda: measure(row.ptstub, lambda: ptstub_hits(tools, cfg, threads)))
    for rep in range(cfg.repeats):
        interleave(steps, rep)
    row.note = f"{cfg.repeats} x {cfg.hit_seconds} s"
    return row


def bench_hits(tools: Tools, cfg: argparse.Namespace, have_ptstub: bool) -> list[Row]:
    rows = []
    for threads in (1, 8):
        rows.append(hits_row(tools, cfg, threads, have_ptstub))
        print(fmt_row(rows[-1]), flush=True)
    return rows


def start_spin(tools: Tools, threads: int, busy: int) -> subprocess.Popen[bytes]:
    """Start `spin` untraced and wait for its `ready` line."""
    proc = CHILDREN.popen(
        spin_argv(tools, threads, busy), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    buf = b""
    while b"ready" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            CHILDREN.finish(proc)
            raise BenchError(f"spin --threads {threads} printed no ready line")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            CHILDREN.finish(proc)
            raise BenchError(f"spin --threads {threads} ended before ready")
        buf += chunk
    return proc


def stop_spin(proc: subprocess.Popen[bytes]) -> None:
    """Close stdin (spin's signal to exit), give it a moment, then make sure."""
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    CHILDREN.finish(proc)


def task_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def c_stopall(
    tools: Tools,
    cfg: argparse.Namespace,
    threads: int,
    busy: int,
    rounds: int,
    stop: Series,
    both: Series,
    counts: set[int],
    *extra: str,
) -> list[float]:
    out = run_tool(
        [
            tools.ref_tracer,
            "stopall",
            "--threads",
            str(threads),
            "--busy",
            str(busy),
            "--rounds",
            str(rounds),
            "--gap-us",
            str(int(cfg.gap * 1e6)),
            *extra,
            "--",
            *spin_argv(tools, threads, busy),
        ],
        600,
    )
    samples = {}
    for line in out.splitlines():
        name, _, values = line.partition("=")
        if name in ("stop_us", "stop_resume_us"):
            samples[name] = [float(v) for v in values.split(",")]
    counts.add(int(kv(out.splitlines()[0])["threads"]))
    both.samples += samples["stop_resume_us"]
    return samples["stop_us"]


def ptstub_stopall(
    tools: Tools,
    cfg: argparse.Namespace,
    threads: int,
    busy: int,
    rounds: int,
    both: Series,
    counts: set[int],
    kind: str = "stopall",
) -> list[float]:
    proc = start_spin(tools, threads, busy)
    try:
        time.sleep(0.02)
        res = run_worker([kind, str(proc.pid), str(rounds), str(cfg.gap)], 600)
    finally:
        stop_spin(proc)
    counts.add(int(res["threads"]))
    both.samples += list(res["stop_resume_us"])
    return list(res["stop_us"])


def stopall_rows(tools: Tools, cfg: argparse.Namespace, threads: int, busy: int, have_ptstub: bool) -> list[Row]:
    rounds = cfg.rounds_busy_big if (busy and threads >= 256) else cfg.rounds
    label = f"{threads:>3} thr " + (f"{busy} busy" if busy else "blocked")
    target = "<=1.5" if threads == 256 else ""
    stop = Row(f"stop-all {label}: stop", "us", False, target)
    both = Row(f"stop-all {label}: stop+resume", "us", False, target)
    counts: set[int] = set()
    steps = [lambda: measure(stop.c, lambda: c_stopall(tools, cfg, threads, busy, rounds, stop.c, both.c, counts))]
    if busy and cfg.fifo:
        fifo_stop = stop.extra["C+FIFO"] = Series()
        fifo_both = both.extra["C+FIFO"] = Series()
        steps.append(
            lambda: measure(
                fifo_stop, lambda: c_stopall(tools, cfg, threads, busy, rounds, fifo_stop, fifo_both, counts, "--fifo")
            )
        )
    if have_ptstub:
        steps.append(
            lambda: measure(stop.ptstub, lambda: ptstub_stopall(tools, cfg, threads, busy, rounds, both.ptstub, counts))
        )
    if have_ptstub and busy and cfg.fifo:
        # ptstub's own policy: resume() at SCHED_FIFO where allowed (ptstub/linux/realtime.py); when not
        # allowed the column says n/a and the reason is printed
        rt_stop = stop.extra["ptstub+FIFO"] = Series()
        rt_both = both.extra["ptstub+FIFO"] = Series()
        steps.append(
            lambda: measure(
                rt_stop, lambda: ptstub_stopall(tools, cfg, threads, busy, rounds, rt_both, counts, "stopall-rt")
            )
        )
    for rep in range(cfg.stop_repeats):
        interleave(steps, rep)
    stop.note = both.note = f"{rounds} rounds x {cfg.stop_repeats}; threads seen {sorted(counts)}"
    for row in (stop, both):
        rt, c_rt = row.extra.get("ptstub+FIFO"), row.extra.get("C+FIFO")
        if rt is not None and c_rt is not None and rt.ok and c_rt.ok and c_rt.stats()[1]:
            row.note += f"; ptstub+FIFO/C+FIFO {rt.stats()[1] / c_rt.stats()[1]:.2f}x (target <=2)"
        elif rt is not None and rt.error:
            row.note += f"; ptstub+FIFO n/a: {rt.error}"
    return [stop, both]


def bench_stopall(tools: Tools, cfg: argparse.Namespace, have_ptstub: bool) -> list[Row]:
    rows = []
    for half_busy in (False, True):
        for threads in cfg.stop_threads:
            if half_busy and threads // 2 == 0:
                continue  # one thread: no half-busy case distinct from the blocked one
            for row in stopall_rows(tools, cfg, threads, threads // 2 if half_busy else 0, have_ptstub):
                rows.append(row)
                print(fmt_row(row), flush=True)
    return rows


def wait_untraced(pid: int, timeout: float = 5.0) -> None:
    """After a tracer went away: wait until no tracer is left and no thread is stopped; SIGCONT as a last resort."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                tracer = next(int(line.split()[1]) for line in f if line.startswith("TracerPid:"))
            stopped = 0
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    stopped += f.read().rsplit(")", 1)[1].split()[0] in "tT"
        except (OSError, StopIteration):
            raise BenchError(f"the attach target {pid} is gone") from None
        if tracer == 0 and stopped == 0:
            return
        time.sleep(0.005)
    os.kill(pid, signal.SIGCONT)
    print(f"  ! process {pid} still stopped {timeout:.0f} s after its tracer left: sent SIGCONT", file=sys.stderr)


def ptstub_cli() -> list[str]:
    """ptstub's console script next to this interpreter (no pyenv shim in the timing), else `python -m ptstub`."""
    script = Path(sys.executable).parent / "ptstub"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptstub"]


def server_attach_ms(server: list[str], pid: int) -> float:
    """Milliseconds from starting `SERVER --attach :0 PID` to its `Listening on port` line; then SIGKILL it
    (the kernel detaches every thread of the target) and wait until the target runs untraced again."""
    name = Path(server[-1] if server[0] == sys.executable else server[0]).name
    t0 = time.perf_counter()
    proc = CHILDREN.popen(
        [*server, "--attach", ":0", str(pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        buf = b""
        while b"Listening on port" not in buf:
            left = t0 + 60 - time.perf_counter()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                raise BenchError(f"{name} --attach: no 'Listening on port' within 60 s")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise BenchError(f"{name} --attach ended: {buf.decode(errors='replace').strip()[-200:]}")
            buf += chunk
        t1 = time.perf_counter()
    finally:
        CHILDREN.finish(proc)
    wait_untraced(pid)
    return (t1 - t0) * 1e3


def c_attach(tools: Tools, pid: int, wall: Series) -> float:
    """ref_tracer attach: its own attach time in ms; its exec-to-exit time goes to `wall`."""
    t0 = time.perf_counter()
    out = run_tool([tools.ref_tracer, "attach", "--pid", str(pid)], 120)
    wall.samples.append((time.perf_counter() - t0) * 1e3)
    wait_untraced(pid)
    return float(kv(out.strip().splitlines()[-1])["attach_us"]) / 1e3


def ptstub_attach(pid: int) -> float:
    res = run_worker(["attach", str(pid)], 120)
    wait_untraced(pid)
    return float(res["attach_us"]) / 1e3


def bench_attach(tools: Tools, cfg: argparse.Namespace, have_ptstub: bool) -> list[Row]:
    threads = cfg.attach_threads
    inproc = Row(f"attach {threads} thr: in-process", "ms", False, "<=1.2")
    wall = Row(f"attach {threads} thr: from exec", "ms", False, "")
    gdbs = wall.extra["gdbserver"] = Series()
    proc = start_spin(tools, threads, 0)
    try:
        pid = proc.pid
        seen = task_count(pid)
        steps = [
            lambda: measure(inproc.c, lambda: c_attach(tools, pid, wall.c)),
            lambda: measure(gdbs, lambda: server_attach_ms([GDBSERVER], pid)),
        ]
        if have_ptstub:
            steps.append(lambda: measure(inproc.ptstub, lambda: ptstub_attach(pid)))
            steps.append(lambda: measure(wall.ptstub, lambda: server_attach_ms(ptstub_cli(), pid)))
        for rep in range(cfg.attach_repeats):
            interleave(steps, rep)
        inproc.note = f"{seen} threads" + ("" if task_count(pid) == seen else f", {task_count(pid)} at the end!")
    finally:
        stop_spin(proc)
    inproc.note += "; ptstub.attach() vs ref_tracer's own clock"
    wall.note = "exec -> 'Listening on port' (ptstub --attach, gdbserver --attach); C: ref_tracer exec -> exit"
    for r in (inproc, wall):
        print(fmt_row(r), flush=True)
    return [inproc, wall]


# ------------------------------------------------------------------------------------ main
def git_head() -> str:
    """The repository's HEAD commit (short), read-only; '?' outside a git checkout."""
    res = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() or "?"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="each figure briefly (a smoke test)")
    ap.add_argument("--json", metavar="FILE", help="also write every sample and the meta data as JSON")
    ap.add_argument("--only", default="hits,stopall,attach", help="comma-separated: hits,stopall,attach")
    ap.add_argument(
        "--targets",
        choices=("auto", "fixtures", "bench"),
        default="auto",
        help="stress/spin from fixtures/ (auto: when present) or the stand-ins in bench/targets/",
    )
    ap.add_argument("--no-ptstub", action="store_true", help="measure the C side only")
    ap.add_argument("--no-fifo", dest="fifo", action="store_false", help="skip the C+SCHED_FIFO busy runs")
    ap.add_argument("--repeats", type=int, help="hit-rate repeats (default 5, quick 1)")
    ap.add_argument("--stop-threads", default="1,16,64,256", help="thread counts for stop-all")
    ap.add_argument("--attach-threads", type=int, default=1000)
    args = ap.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 5)
    args.hit_seconds = 0.3 if quick else 2.0
    args.stop_repeats = 1 if quick else 3
    args.rounds = 5 if quick else 100
    args.rounds_busy_big = 3 if quick else 10  # 256 threads, 128 busy: ~0.2 s per naive round
    args.gap = 0.002  # seconds the threads run between two stop-all rounds
    args.attach_repeats = 1 if quick else 5
    args.stop_threads = [int(x) for x in args.stop_threads.split(",")]
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    cfg = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGHUP, _on_sigterm)
    started = dt.datetime.now().astimezone()
    rows: list[Row] = []
    try:
        tools = build(cfg.targets)
        why_not = "disabled (--no-ptstub)" if cfg.no_ptstub else probe_ptstub()
        print(
            f"# ptstub engine bench, {started:%Y-%m-%d %H:%M %Z}; {platform.release()}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}; commit {git_head()}{' (quick)' if cfg.quick else ''}"
        )
        print(
            f"# targets: {tools.targets}; ptstub: {'n/a: ' + why_not if why_not else 'yes'}; "
            f"ratio = ptstub/C of the medians"
        )
        print(HEADER, flush=True)
        only = set(cfg.only.split(","))
        if "hits" in only:
            rows += bench_hits(tools, cfg, why_not is None)
        if "stopall" in only:
            rows += bench_stopall(tools, cfg, why_not is None)
        if "attach" in only:
            rows += bench_attach(tools, cfg, why_not is None)
    except BenchError as err:
        print(f"bench_engine: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_engine: interrupted", file=sys.stderr)
        return 130
    finally:
        CHILDREN.kill_all()
        if cfg.json and rows:
            doc = {
                "date": started.isoformat(timespec="seconds"),
                "commit": git_head(),
                "load_at_end": os.getloadavg()[0],
                "args": sys.argv[1:],
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "quick": cfg.quick,
                "rows": [
                    {
                        **asdict(r),
                        "ratio": r.ratio(),
                        "stats": {
                            k: (s.stats() if s.ok else None)
                            for k, s in [("ptstub", r.ptstub), ("c", r.c), *r.extra.items()]
                        },
                    }
                    for r in rows
                ],
            }
            Path(cfg.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"# took {(dt.datetime.now().astimezone() - started).total_seconds():.0f} s; load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

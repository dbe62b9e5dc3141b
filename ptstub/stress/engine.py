"""The engine face of the harness: run a program under ptstub's all-stop engine in this process.

Per hit the loop does as little as it can (the engine's per-hit cycle is C, ~30 µs): one `cont()`,
a class check, one dict increment keyed by (pc, tid), a read of two counters of the engine's C
record to sample the stop-all latency when a new stop-all happened, and the frozen checks only when
asked for. Names, fairness and percentiles are worked out once, after the run (`verdict.py`).

A run ends when the program exits, when `--hits` / `--duration` is reached (then the breakpoints are
removed and the program is let run to its end), or when nothing is reported within `--timeout`:
then every thread's registers are dumped and the program is killed.

A watchdog thread guards against the engine itself getting stuck (a stop-all that never completes
does not honour `cont()`'s timeout): if no call returns within twice the timeout plus a grace period,
it dumps the threads from /proc, reports an engine violation and kills the program, which makes the
engine's wait return. cffi releases the GIL during the C call, so the watchdog can run. Helper
threads block every signal (see `_HelperThread`: a thread that takes SIGCHLD slows the engine).
"""

from __future__ import annotations

import math
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import ptstub
from ptstub.errors import LaunchError, PtstubError, StopTimeout, TargetError
from ptstub.events import BreakpointHit, Exec, Exited, Interrupted, Killed, SignalReceived, StopEvent
from ptstub.stress.dump import blocked_summary, dump_inferior, dump_proc
from ptstub.stress.frozen import FrozenChecker, FrozenVar, parse_frozen
from ptstub.stress.model import (
    Breakpoint,
    ProgramEnd,
    Report,
    StressConfig,
    StressSetupError,
    Violation,
    ViolationKind,
)
from ptstub.stress.verdict import RunRecord, build_report

Progress = Callable[[int, float], None]  # (hits so far, seconds since the first hit)
WATCHDOG_GRACE_S = 5.0


class _StatsView:
    """The two engine counters the loop samples, through the public `stats` when no C record is exposed."""

    def __init__(self, inferior: Any) -> None:
        self._inferior = inferior

    @property
    def n_stops(self) -> int:
        return int(self._inferior.stats["stops"])

    @property
    def last_stop_ns(self) -> int:
        return int(self._inferior.stats["last_stop_ns"])


def _engine_counters(inferior: Any) -> Any:
    # `Inferior.stats` builds a dict per call (~1.5 µs); the loop reads the same two fields of the
    # engine's C record directly (~0.2 µs), falling back to `stats` if that record is not there.
    record = getattr(inferior, "engine", None)
    return record if record is not None and hasattr(record, "last_stop_ns") else _StatsView(inferior)


class _HelperThread(threading.Thread):
    """A daemon thread that takes no signals.

    The engine learns of tracee stops through SIGCHLD; a process-directed signal goes to any thread
    that does not block it, and a Python thread woken by one takes the GIL to check for handlers. An
    idle helper thread that accepts SIGCHLD cut the engine's hit rate by up to 4x (8 threads: 13.5k ->
    3.4k hits/s), so helpers block every signal and leave them to the tracer thread.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.done = threading.Event()

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        self.work()

    def work(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.done.set()
        if self.is_alive():
            self.join()


class _Watchdog(_HelperThread):
    """Kills the program when the engine does not return from a call for `limit` seconds."""

    def __init__(self, limit: float, on_fire: Callable[[float], None]) -> None:
        super().__init__("ptstub-stress-watchdog")
        self.beat = [time.perf_counter()]  # the loop stores its latest clock reading here (cheap)
        self._limit = limit
        self._on_fire = on_fire

    def work(self) -> None:
        while not self.done.wait(self._limit / 4):
            silent = time.perf_counter() - self.beat[0]
            if silent > self._limit:
                self._on_fire(silent)
                return


class _Alarm(_HelperThread):
    """Calls `action` after `delay` seconds unless stopped first (threading.Timer, minus the signals)."""

    def __init__(self, delay: float, action: Callable[[], None]) -> None:
        super().__init__("ptstub-stress-duration")
        self._delay = delay
        self._action = action

    def work(self) -> None:
        if not self.done.wait(self._delay):
            self._action()


def run_engine(config: StressConfig, progress: Progress | None = None) -> Report:
    """Launch `config.argv` under the engine, shake it with breakpoints, and judge the run."""
    with tempfile.TemporaryFile() as out:
        try:
            inferior = ptstub.launch(list(config.argv), stdout=out, seed=config.seed)
        except LaunchError as err:
            raise StressSetupError(str(err)) from None
        with inferior:
            run = _EngineRun(config, inferior, progress)
            run.set_up()
            run.execute()
        out.seek(0)
        text = out.read().decode(errors="replace")
    return build_report(config, run.record, text)


class _EngineRun:
    """One run's state; `execute` drives the engine from the first hit to the program's end."""

    def __init__(self, config: StressConfig, inferior: Any, progress: Progress | None) -> None:
        self.config = config
        self.inferior = inferior
        self.progress = progress
        self.record = RunRecord("engine")
        self.names: dict[int, str] = {}  # breakpoint address -> the name count lines use
        self.frozen: FrozenChecker | None = None
        self.budget_reached = threading.Event()
        self.watchdog = _Watchdog(config.timeout * 2 + WATCHDOG_GRACE_S, self._engine_stuck)
        self.engine_stuck = False

    # ------------------------------------------------------------------------------------ set-up
    def set_up(self) -> None:
        """Resolve and insert the breakpoints, resolve the frozen variables (bad names: StressSetupError)."""
        for spec in self.config.breaks:
            address = self._resolve(spec, "--break")
            try:
                self.inferior.insert_breakpoint(address)
            except TargetError as err:
                raise StressSetupError(f"--break {spec}: cannot insert a breakpoint at {address:#x}: {err}") from None
            self.names[address] = spec
        self.record.breakpoints = tuple(Breakpoint(spec, addr) for addr, spec in self.names.items())
        self.record.functions = tuple(self.names.values())
        if self.config.frozen:
            variables = []
            for spec in self.config.frozen:
                name, indirect = parse_frozen(spec)
                variables.append(FrozenVar(spec, self._resolve(name, "--frozen"), indirect))
            self.frozen = FrozenChecker(self.inferior.pid, variables, self.inferior.thread_ids, self.record.violate)

    def _resolve(self, spec: str, option: str) -> int:
        if spec.lower().startswith("0x"):
            try:
                return int(spec, 16)
            except ValueError:
                raise StressSetupError(f"{option} {spec}: not a hexadecimal address") from None
        try:
            return int(self.inferior.symbol(spec))
        except TargetError as err:
            raise StressSetupError(f"{option} {spec}: {err}") from None

    # ------------------------------------------------------------------------------------ run
    def execute(self) -> None:
        """The measured phase, then the program's end; the watchdog guards both."""
        self.watchdog.start()
        try:
            self._measure_and_finish()
        finally:
            self.watchdog.stop()

    def _measure_and_finish(self) -> None:
        timer = None
        if self.config.duration is not None:
            timer = _Alarm(self.config.duration, self._end_budget)
        counters = _engine_counters(self.inferior)
        stops_before = counters.n_stops
        event: StopEvent | None = None
        try:
            if timer is not None:
                timer.start()
            event = self._hit_loop(counters)
        except StopTimeout:
            if self.inferior.alive:  # else the program ended while the engine was stopping it
                self._deadlock()
        except PtstubError as err:
            self.record.violate(Violation(ViolationKind.ENGINE, f"the engine failed: {err}"))
            self._kill()
        finally:
            if timer is not None:
                timer.stop()
            if self.frozen is not None:
                self.frozen.close()
        self.record.stops = counters.n_stops - stops_before
        self.record.eintr_fixups = int(self.inferior.stats["eintr_fixups"])
        self._finish(event)

    def _end_budget(self) -> None:
        self.budget_reached.set()
        self.inferior.interrupt()

    def _hit_loop(self, counters: Any) -> StopEvent | None:
        """Count hits until the program ends (its end event) or the budget is reached (None)."""
        cont = self.inferior.cont
        timeout = self.config.timeout
        seen: dict[tuple[int, int], int] = {}
        get = seen.get
        sample = self.record.latency_ns.append
        sample_tid = self.record.latency_tids.append
        check = self.frozen.check if self.frozen is not None else None
        progress = self.progress
        limit = self.config.hits or -1
        clock = time.perf_counter
        # The timer's interrupt ends an idle run; a busy one is ended here, by the clock read per hit
        # anyway (an interrupt requested while hits stream in is not always reported as a stop).
        deadline = clock() + self.config.duration if self.config.duration is not None else math.inf
        hits = 0
        first = last = 0.0
        last_stops = counters.n_stops
        beat = self.watchdog.beat
        event: StopEvent | None = None
        try:
            while True:
                event = cont(timeout)
                if event.__class__ is not BreakpointHit:
                    if self._keep_going(event):
                        continue
                    if not isinstance(event, (Exited, Killed)):
                        event = None  # the budget (or an exec) ended the measured phase
                    break
                key = (event.pc, event.tid)  # type: ignore[union-attr]
                seen[key] = get(key, 0) + 1
                hits += 1
                last = beat[0] = clock()
                if hits == 1:
                    first = last
                n = counters.n_stops
                if n != last_stops:
                    last_stops = n
                    sample(counters.last_stop_ns)
                    sample_tid(event.tid)  # type: ignore[union-attr]
                if check is not None:
                    check(event.tid, event.pc, n)  # type: ignore[union-attr]
                if hits == limit or last >= deadline:
                    self.budget_reached.set()
                    event = None
                    break
                if progress is not None:
                    progress(hits, last - first)
        finally:
            self.record.hits = hits
            self.record.elapsed_s = last - first
            self.record.seen = {(self.names.get(pc, f"{pc:#x}"), tid): n for (pc, tid), n in seen.items()}
        return event

    def _keep_going(self, event: StopEvent) -> bool:
        """Anything but a hit: signals are counted (and delivered), an exit or the budget ends the loop."""
        self.watchdog.beat[0] = time.perf_counter()
        if isinstance(event, SignalReceived):
            self.record.signals[event.name] = self.record.signals.get(event.name, 0) + 1
            return True
        if isinstance(event, Interrupted):
            return not self.budget_reached.is_set()
        if isinstance(event, (Exited, Killed)):
            return False
        if isinstance(event, Exec):
            self.record.notes.append(f"the program called exec ({event.path}); its breakpoints are gone")
            self.record.complete = False
            return False
        self.record.notes.append(f"unexpected stop {event}")
        return True

    # ------------------------------------------------------------------------------------ endings
    def _deadlock(self) -> None:
        self.record.complete = False
        self.record.dump = dump_inferior(self.inferior)
        self.record.violate(
            Violation(
                ViolationKind.DEADLOCK,
                f"no hit or other stop within {self.config.timeout:g} s after {self.record.hits} hits "
                f"({blocked_summary(self.record.dump)}; every thread's registers are in the dump)",
            )
        )
        self._kill()

    def _engine_stuck(self, silent: float) -> None:
        """Watchdog thread: the engine has not come back; dump from /proc, then kill to release it."""
        self.engine_stuck = True
        self.record.complete = False
        self.record.dump = dump_proc(self.inferior.pid)
        running = [d for d in self.record.dump if d.state not in ("t", "Z", "X")]
        stuck = ", ".join(
            f"thread {d.tid} in state {d.state}" + (f" in {d.syscall}" if d.syscall else "") for d in running
        )
        self.record.violate(
            Violation(
                ViolationKind.ENGINE,
                f"the engine did not return within {silent:.0f} s (its own timeout is {self.config.timeout:g} s): "
                f"a stop-all never completed; not stopped: {stuck or 'none'}; the program was killed",
                tid=running[0].tid if running else None,
            )
        )
        try:
            os.kill(self.inferior.pid, signal.SIGKILL)
        except OSError:
            pass  # ESRCH: it ended meanwhile

    def _kill(self) -> None:
        if self.inferior.alive:
            self.inferior.kill()
        self.record.end = ProgramEnd("killed-by-harness")

    def _finish(self, event: StopEvent | None) -> None:
        """Record how the program ended; after a budget, let it run to its end without breakpoints."""
        if event is None and self.inferior.alive:
            self.record.complete = False
            event = self._run_to_end()
        if self.engine_stuck:
            self.record.end = ProgramEnd("killed-by-harness")
        elif isinstance(event, Exited):
            self.record.end = ProgramEnd("exited", code=event.code)
        elif isinstance(event, Killed):
            self.record.end = ProgramEnd("killed", signal=event.signal)
        elif not self.inferior.alive and self.record.end.how == "unknown":
            self._end_from_inferior()

    def _run_to_end(self) -> StopEvent | None:
        for address in self.names:
            self.inferior.remove_breakpoint(address)
        try:
            while True:
                self.watchdog.beat[0] = time.perf_counter()
                event = self.inferior.cont(self.config.timeout)
                if isinstance(event, (Exited, Killed)):
                    return event
        except StopTimeout:
            if not self.inferior.alive:
                return None
            self.record.notes.append(
                f"the program did not exit within {self.config.timeout:g} s after the run; it was killed"
            )
            self._kill()
        except PtstubError as err:
            self.record.violate(Violation(ViolationKind.ENGINE, f"the engine failed after the run: {err}"))
            self._kill()
        return None

    def _end_from_inferior(self) -> None:
        if self.inferior.exit_code is not None:
            self.record.end = ProgramEnd("exited", code=self.inferior.exit_code)
        elif self.inferior.exit_signal is not None:
            self.record.end = ProgramEnd("killed", signal=self.inferior.exit_signal)

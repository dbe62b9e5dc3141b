"""Runs inside GDB (`gdb -nx -batch -x gdb_script.py`): the per-stop loop of `ptstub stress --stub`.

GDB's Python API gives one `continue` per stop and a look at the world in between: at every stop the
script notes which breakpoint and which thread (LWP) it was, reads each frozen variable twice through
the stub (two `m` packets, nothing resumed in between), and continues. It talks to the harness over
the file descriptor named by PTSTUB_STRESS_FD, one line per message: `p HITS ELAPSED` after every hit
(the harness's sign of life; a few µs against the ~1 ms a stop costs through GDB), and JSON objects
for `connected`, `budget`, `result` and `error`. Its settings come from
the JSON file named by PTSTUB_STRESS_CONFIG. Not importable outside GDB.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gdb  # type: ignore[import-not-found]

KEEP_VIOLATIONS = 10
SETTINGS = (
    "set pagination off",
    "set confirm off",
    "set height 0",
    "set width 0",
    "set print thread-events off",
    "set print inferior-events off",
    "set breakpoint pending off",
    "set sysroot /",  # the stub runs on this machine: read libraries locally, not through vFile
)
OPTIONAL_SETTINGS = ("set debuginfod enabled off",)


class Channel:
    """One JSON object per line to the harness."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"event": event, **fields}) + "\n")

    def progress(self, hits: int, elapsed: float) -> None:
        """The per-hit sign of life, short and not JSON: `p HITS ELAPSED`."""
        self._file.write(f"p {hits} {elapsed:.6f}\n")


class Stops:
    """What the last stop was, from GDB's stop and exit events."""

    def __init__(self) -> None:
        self.breakpoints: list[int] = []
        self.signal = ""
        self.exit: dict[str, Any] | None = None
        gdb.events.stop.connect(self._on_stop)
        gdb.events.exited.connect(self._on_exit)

    def _on_stop(self, event: Any) -> None:
        self.breakpoints = [b.number for b in getattr(event, "breakpoints", [])]
        self.signal = getattr(event, "stop_signal", "") if not self.breakpoints else ""

    def _on_exit(self, event: Any) -> None:
        code = getattr(event, "exit_code", None)
        self.exit = {"code": int(code) if code is not None else None}


class Frozen:
    """A frozen variable read through the stub: `name`, or `*name` for what the pointer points to."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.indirect = spec.startswith("*")
        name = spec.lstrip("*")
        self.address = int(gdb.parse_and_eval(name if name.startswith("0x") else f"&{name}"))

    def read(self, inferior: Any) -> bytes | None:
        try:
            address = self.address
            if self.indirect:
                address = int.from_bytes(bytes(inferior.read_memory(address, 8)), "little")
                if not address:
                    return None
            return bytes(inferior.read_memory(address, 8))
        except gdb.MemoryError:
            return None


class Run:
    """The loop: continue, count the hit, check the frozen variables, until the program exits."""

    def __init__(self, config: dict[str, Any], channel: Channel) -> None:
        self.config = config
        self.channel = channel
        self.stops = Stops()
        self.names: dict[int, str] = {}
        self.frozen: list[Frozen] = []
        self.seen: dict[tuple[str, int], int] = {}
        self.hits = 0
        self.first = self.last = 0.0
        self.signals: dict[str, int] = {}
        self.violations: list[dict[str, Any]] = []
        self.totals: dict[str, int] = {}
        self.error = ""
        self.budget_reached = False

    def set_up(self) -> bool:
        for spec in self.config["breaks"]:
            try:
                bp = gdb.Breakpoint(f"*{spec}" if spec.lower().startswith("0x") else spec)
            except gdb.error as err:
                self._set_up_failed("--break", spec, err)
                return False
            bp.silent = True
            self.names[bp.number] = spec
        for spec in self.config["frozen"]:
            try:
                self.frozen.append(Frozen(spec))
            except gdb.error as err:
                self._set_up_failed("--frozen", spec, err)
                return False
        return True

    def _set_up_failed(self, option: str, spec: str, err: Exception) -> None:
        """A name GDB does not know is a usage error; anything else (a dead connection) is the stub's."""
        text = str(err)
        usage = "No symbol" in text or "not defined" in text
        self.channel.send("error", kind="usage" if usage else "connect", message=f"{option} {spec}: {text}")

    def loop(self) -> None:
        inferior = gdb.selected_inferior()
        limit = self.config["hits"] or -1
        duration = self.config["duration"]
        start = time.perf_counter()
        while self.stops.exit is None:
            if not self._continue():
                return
            if self.stops.exit is not None:
                break
            if not self.stops.breakpoints:
                self.signals[self.stops.signal] = self.signals.get(self.stops.signal, 0) + 1
                continue
            self._on_hit(inferior)
            if self.hits == limit or (duration is not None and self.last - start >= duration):
                self._run_to_end()
                return
            self.channel.progress(self.hits, self.last - self.first)

    def _continue(self) -> bool:
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error as err:
            self.error = str(err)
            return False
        return True

    def _on_hit(self, inferior: Any) -> None:
        tid = gdb.selected_thread().ptid[1]
        name = self.names.get(self.stops.breakpoints[0], "?")
        key = (name, tid)
        self.seen[key] = self.seen.get(key, 0) + 1
        self.hits += 1
        self.last = time.perf_counter()
        if self.hits == 1:
            self.first = self.last
        if self.frozen:
            self._check_frozen(inferior, tid)

    def _check_frozen(self, inferior: Any, tid: int) -> None:
        firsts = [v.read(inferior) for v in self.frozen]
        seconds = [v.read(inferior) for v in self.frozen]
        for var, a, b in zip(self.frozen, firsts, seconds, strict=True):
            if a is not None and b is not None and a != b:
                before, after = int.from_bytes(a, "little"), int.from_bytes(b, "little")
                pc = int(gdb.selected_frame().pc())
                self._violate(
                    "frozen", f"{var.spec} changed while every thread was stopped: {before} -> {after}", tid, pc
                )

    def _violate(self, kind: str, message: str, tid: int | None = None, address: int | None = None) -> None:
        self.totals[kind] = self.totals.get(kind, 0) + 1
        if self.totals[kind] <= KEEP_VIOLATIONS:
            self.violations.append({"kind": kind, "message": message, "tid": tid, "address": address})

    def _run_to_end(self) -> None:
        """The budget is reached: no more breakpoints; let the program finish (the harness times it)."""
        self.budget_reached = True
        self.channel.send("budget", hits=self.hits)
        gdb.execute("delete", to_string=True)
        while self.stops.exit is None and self._continue():
            pass

    def result(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "elapsed": self.last - self.first,
            "seen": [[name, tid, n] for (name, tid), n in self.seen.items()],
            "signals": self.signals,
            "violations": self.violations,
            "totals": self.totals,
            "exit": self.stops.exit,
            "error": self.error,
            "complete": not self.budget_reached,
        }


def connect(config: dict[str, Any], channel: Channel) -> bool:
    for setting in SETTINGS:
        gdb.execute(setting)
    for setting in OPTIONAL_SETTINGS:
        try:
            gdb.execute(setting)
        except gdb.error:
            pass  # a GDB built without that feature
    try:
        gdb.execute(f"file {config['program']}", to_string=True)
        gdb.execute(f"target remote {config['address']}", to_string=True)
    except gdb.error as err:
        channel.send("error", kind="connect", message=str(err))
        return False
    channel.send("connected", pid=gdb.selected_inferior().pid)
    return True


def main() -> None:
    with open(os.environ["PTSTUB_STRESS_CONFIG"]) as f:
        config = json.load(f)
    channel = Channel(int(os.environ["PTSTUB_STRESS_FD"]))
    if not connect(config, channel):
        return
    run = Run(config, channel)
    if not run.set_up():
        return
    try:
        run.loop()
    except gdb.error as err:  # the connection died while the stop was being looked at
        run.error = str(err)
    channel.send("result", **run.result())


main()

"""Run a stub (ptstub or GNU gdbserver) and the real /usr/bin/gdb against it, for end-to-end tests.

Every process started here is killed and reaped by the context managers, even when a test fails.
The stub's port comes from its own `Listening on port N` line (port 0 everywhere), so nothing sleeps.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

GDB = shutil.which("gdb") or "/usr/bin/gdb"
GDBSERVER = shutil.which("gdbserver") or "/usr/bin/gdbserver"
PTSTUB = [sys.executable, "-m", "ptstub"]


@dataclass
class Stub:
    """A running stub process and what it printed on stderr so far."""

    proc: subprocess.Popen[bytes]
    port: int
    stderr_lines: list[str] = field(default_factory=list)

    def read_stderr(self, timeout: float = 5.0, until: str | None = None) -> str:
        """Collect stderr until `until` appears, the process exits, or `timeout` passes."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if until is not None and until in "".join(self.stderr_lines):
                    break
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(self.proc.stderr.fileno(), 65536)
                if not chunk:
                    break
                self.stderr_lines.append(chunk.decode(errors="replace"))
        finally:
            sel.close()
        return "".join(self.stderr_lines)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)


def stub_command(kind: str, args: list[str]) -> list[str]:
    if kind == "ptstub":
        return PTSTUB + args
    if kind == "gdbserver":
        return [GDBSERVER] + args
    raise ValueError(kind)


@contextlib.contextmanager
def running_stub(kind: str, args: list[str], timeout: float = 20.0) -> Iterator[Stub]:
    """Start `ptstub ARGS` or `gdbserver ARGS` (ARGS has COMM = 127.0.0.1:0); yield once it listens."""
    proc = subprocess.Popen(
        stub_command(kind, args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    stub = Stub(proc, 0)
    try:
        text = stub.read_stderr(timeout, until="Listening on port")
        match = re.search(r"Listening on port (\d+)", text)
        if not match:
            raise AssertionError(f"{kind} did not start listening; stderr:\n{text}")
        stub.port = int(match.group(1))
        yield stub
    finally:
        _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@dataclass(frozen=True)
class GdbResult:
    returncode: int
    output: str


def run_gdb(
    port: int,
    program: str,
    commands: list[str],
    timeout: float = 60.0,
    extended: bool = False,
    setup: list[str] | None = None,
) -> GdbResult:
    """`gdb -batch` connected to 127.0.0.1:PORT running `commands` (`setup` before connecting); returns its
    merged output."""
    target = "extended-remote" if extended else "remote"
    args = [GDB, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off"]
    for command in setup or []:
        args += ["-ex", command]
    args += ["-ex", f"target {target} 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    args.append(program)
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)  # type: ignore[arg-type]
        raise AssertionError(f"gdb did not finish within {timeout}s") from None
    return GdbResult(proc.returncode, out.decode(errors="replace"))


def run_gdb_script(port: int, program: str, script: str, timeout: float = 120.0, extended: bool = False) -> GdbResult:
    """Like `run_gdb` with a GDB command file (or a .py script, by suffix) written for the run."""
    import tempfile

    suffix = ".py" if script.lstrip().startswith(("import", "#py")) else ".gdb"
    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as f:
        f.write(script)
        path = f.name
    try:
        return run_gdb(port, program, [f"source {path}"], timeout, extended)
    finally:
        os.unlink(path)


class InteractiveGdb:
    """GDB reading commands from a pipe, one at a time.

    Batch mode runs a script's commands back to back and handles asynchronous stops (non-stop's
    `interrupt -a`, a breakpoint hit in another thread) only inside the next execution command.
    Between piped commands GDB sits in its event loop and prints such stops as they come, so a test
    can wait for them, as GDB's own testsuite does with expect.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._pending = ""
        self._count = 0
        self.transcript: list[str] = []

    def run(self, command: str, until: str | None = None, timeout: float = 30.0) -> str:
        """Send `command`; return GDB's output up to its completion and until `until` (a regex) appeared."""
        assert self.proc.stdin is not None
        self._count += 1
        marker = f"@@done-{self._count}@@"
        self.proc.stdin.write(f"{command}\necho {marker}\\n\n".encode())
        self.proc.stdin.flush()
        text = self.expect(re.escape(marker), timeout)
        if until is not None and not re.search(until, text):
            text += self.expect(until, timeout, before=text)
        return text.replace(marker, "")

    def expect(self, pattern: str, timeout: float = 30.0, before: str = "") -> str:
        """Read GDB's output until `pattern` (a regex) matches `before` + it; return what was read to the match."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                match = re.search(pattern, before + self._pending)
                if match:
                    end = max(0, match.end() - len(before))
                    text, self._pending = self._pending[:end], self._pending[end:]
                    self.transcript.append(text)
                    return text
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    break
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                self._pending += chunk.decode(errors="replace")
        finally:
            sel.close()
        seen = "".join(self.transcript) + self._pending
        raise AssertionError(f"gdb: no {pattern!r} within {timeout}s; output so far:\n{seen[-4000:]}")


@contextlib.contextmanager
def interactive_gdb(program: str, setup: list[str] | None = None) -> Iterator[InteractiveGdb]:
    """An `InteractiveGdb` on `program` with confirmations and paging off (and `setup` commands run)."""
    proc = subprocess.Popen(
        [GDB, "-nx", "-q", program],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    gdb = InteractiveGdb(proc)
    try:
        for command in ["set confirm off", "set pagination off", "set width 0", *(setup or [])]:
            gdb.run(command)
        yield gdb
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        _kill_group(proc)  # type: ignore[arg-type]


@contextlib.contextmanager
def untraced_program(argv: list[str], own_session: bool = False) -> Iterator[subprocess.Popen[bytes]]:
    """A program started without any debugger (to be attached to), yielded once it printed `ready`;
    killed and reaped at the end. `own_session`: its own process group, as expect spawns programs
    (gdbserver's Ctrl-C is a SIGINT to that group)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=own_session)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", f"{argv[0]} did not start"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def process_state(pid: int, tid: int | None = None) -> str:
    """The state letter of /proc/PID/stat, or of one thread's (`T`/`t` stopped), `Z` when gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"


def held_threads(pid: int) -> dict[int, str]:
    """Threads of `pid` still traced or stopped (`t`/`T`), as {tid: "state letter, TracerPid N"}."""
    held = {}
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return {}
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, tracer = fields["State"].split()[0], int(fields["TracerPid"])
        if tracer or state in "tT":
            held[tid] = f"{state}, TracerPid {tracer}"
    return held

"""A stub's process plumbing, ptstub against gdbserver 13.1 with the same command lines.

What a launched program gets as fds 0, 1 and 2 (read from /proc/PID/fd while it waits at its first
instruction), the lines each stub prints and in which order, the program's own I/O through the stub's
pipes, `--multi COMM PROG`, `--once` and `--wrapper`, and pwntools' `gdb.debug()` replayed step by step.
Every test runs once per stub and asserts the same observable result for both.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import selectors
import shlex
import signal
import subprocess
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gdb.stubs import GDB, stub_command, untraced_program

PROCESS_CREATED = re.compile(r"Process (\S+) created; pid = (\d+)")


class LineReader:
    """Lines from a pipe or pty master, read with a deadline (never a sleep)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        self.seen: list[str] = []

    def line(self, timeout: float = 10.0) -> str:
        """The next whole line without its newline; '' at end of file or when `timeout` passes."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return ""
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: a pty whose other side is closed
                    chunk = b""
                if not chunk:
                    return ""
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        self.seen.append(line.decode(errors="replace"))
        return self.seen[-1]

    def lines_until(self, pattern: str, timeout: float = 20.0) -> list[str]:
        """Lines up to and including the first that matches `pattern`; fails with what was read."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.line(deadline - time.monotonic())
            lines.append(line)
            if re.search(pattern, line):
                return lines
            if not line and not self.pending:
                break
        raise AssertionError(f"no line matching {pattern!r}; read so far: {self.seen}")


@dataclass
class StubRun:
    proc: subprocess.Popen[bytes]
    stderr: LineReader


@contextlib.contextmanager
def started_stub(kind: str, args: list[str], **popen: object) -> Iterator[StubRun]:
    """`ptstub ARGS` or `gdbserver ARGS` with pipes for stdin, stdout and stderr unless `popen` says
    otherwise; killed (its launched program dies with it: both trace with PTRACE_O_EXITKILL) and reaped."""
    settings: dict[str, object] = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    settings.update(popen)
    proc = subprocess.Popen(stub_command(kind, args), start_new_session=True, **settings)  # type: ignore[call-overload]
    try:
        yield StubRun(proc, LineReader(proc.stderr.fileno() if proc.stderr else -1))
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_gdb(target: str, program: str, commands: list[str], timeout: float = 60.0) -> str:
    """`gdb -batch` with `target` (e.g. `remote 127.0.0.1:N`), then `commands`; its merged output."""
    args = [GDB, "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off"]
    args += ["-ex", "set sysroot /", "-ex", f"target {target}"]
    for command in commands:
        args += ["-ex", command]
    proc = subprocess.Popen(
        [*args, program], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"gdb did not finish within {timeout}s:\n{out.decode(errors='replace')}") from None
    return out.decode(errors="replace")


def fd_targets(pid: int) -> dict[int, str]:
    """What each open fd of `pid` refers to. A stub still loading modules after its ready line opens
    and closes files meanwhile: an fd gone between the listing and its readlink is left out."""
    targets = {}
    for n in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            targets[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
    return targets


def access_mode(pid: int, fd: int) -> int:
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        flags = next(line for line in f if line.startswith("flags:"))
    return int(flags.split()[1], 8) & os.O_ACCMODE


def normalised(lines: list[str]) -> list[str]:
    """Lines with the numbers that differ from run to run (pids, ports) replaced by N."""
    return [re.sub(r"(pid = |port )\d+", r"\1N", line) for line in lines]


def ready_line(comm: str) -> str:
    return "Remote debugging using stdio" if comm == "-" else "Listening on"


# ------------------------------------------------------------------------------------------ the fds
LAUNCH_FORMS = {
    "plain": [],
    "multi": ["--multi"],
    "multi-once": ["--multi", "--once", "--no-disable-randomization"],
    "wrapper": ["--wrapper", "env", "PLUMBING_WRAPPED=1", "--"],
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("form", LAUNCH_FORMS)
@pytest.mark.parametrize("comm", ["127.0.0.1:0", "-"])
def test_program_fds_and_startup_lines(stub: str, comm: str, form: str, fixture_path) -> None:
    """TCP: the program inherits the stub's stdin, stdout and stderr. stdio: its stdin is /dev/null (read
    only) and its stdout and stderr are the stub's stderr, so it cannot touch the protocol stream."""
    program = fixture_path("echo_stdio")
    with started_stub(stub, [*LAUNCH_FORMS[form], comm, program]) as run:
        lines = run.stderr.lines_until(ready_line(comm))
        match = PROCESS_CREATED.search("\n".join(lines))
        assert match, lines
        pid = int(match.group(2))
        fds, own = fd_targets(pid), fd_targets(run.proc.pid)
        stdin_mode = access_mode(pid, 0)
        exe = os.readlink(f"/proc/{pid}/exe")
    assert exe == program  # stopped at the program's own exec, the wrapper's skipped
    if comm == "-":
        assert fds == {0: "/dev/null", 1: own[2], 2: own[2]}
        assert stdin_mode == os.O_RDONLY
        expected = ["stdin/stdout redirected", f"Process {program} created; pid = N", "Remote debugging using stdio"]
    else:
        assert fds == {0: own[0], 1: own[1], 2: own[2]}
        expected = [f"Process {program} created; pid = N", "Listening on port N"]
    assert normalised(lines) == expected


@pytest.mark.timeout(60)
def test_attach_in_stdio_mode_prints_no_redirection_line(stub: str, fixture_path) -> None:
    """`stdin/stdout redirected` is said of a launched program only (gdbserver's child prints it)."""
    with untraced_program([fixture_path("spin"), "--threads", "1"]) as target:
        with started_stub(stub, ["--attach", "-", str(target.pid)]) as run:
            lines = run.stderr.lines_until("Remote debugging using stdio")
    assert normalised(lines) == ["Attached; pid = N", "Remote debugging using stdio"]


# ---------------------------------------------------------------------------- the program's own I/O
@pytest.mark.timeout(90)
@pytest.mark.parametrize("multi", [False, True], ids=["remote", "extended-remote"])
def test_stdio_mode_program_output_reaches_the_user(stub: str, multi: bool, fixture_path) -> None:
    """Under `target remote | STUB - PROG` the program's output goes to GDB's terminal by way of the stub's
    stderr, and its reads see end of file instead of GDB's packets; each `run` says so again."""
    program = fixture_path("echo_stdio")
    options = ["--multi"] if multi else []
    command = shlex.join(stub_command(stub, [*options, "-", program]))
    target = f"{'extended-remote' if multi else 'remote'} | {command}"
    out = run_gdb(target, program, ["continue", *(["run"] if multi else [])])
    runs = 2 if multi else 1
    assert out.count("echo-out: ready") == runs, out
    assert out.count("echo-err: ready") == runs, out
    assert out.count("echo-out: eof after 0 lines") == runs, out
    assert out.count("stdin/stdout redirected") == runs, out
    assert out.count("exited normally]") == runs, out


def _comms(stub: str, tmp_path: Path) -> list[str]:
    # gdbserver 13.1 has no `unix:` COMM ("cannot resolve name"): that mode is ptstub's alone.
    return ["127.0.0.1:0"] + ([f"unix:{tmp_path}/stub.sock"] if stub == "ptstub" else [])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("form", ["plain", "multi", "wrapper"])
def test_program_talks_through_the_stubs_pipes(stub: str, form: str, fixture_path, tmp_path: Path) -> None:
    """TCP and unix modes: a client writes the program's input to the stub's stdin and reads its output
    from the stub's stdout, while GDB stops it at a breakpoint on the way."""
    program = fixture_path("echo_stdio")
    for comm in _comms(stub, tmp_path):
        with started_stub(stub, [*LAUNCH_FORMS[form], comm, program]) as run:
            assert run.proc.stdin is not None and run.proc.stdout is not None
            where = run.stderr.lines_until(r"Listening on (port \d+|/)")[-1].split()[-1]
            run.proc.stdin.write(b"hello\n")
            run.proc.stdin.close()
            target = f"remote 127.0.0.1:{where}" if where.isdigit() else f"remote {where}"
            out = run_gdb(target, program, ["break got_line", "continue", "print lines_seen", "continue"])
            stdout = LineReader(run.proc.stdout.fileno()).lines_until("eof after")
            stderr = run.stderr.lines_until("echo-err: ready")
        assert "Breakpoint 1, got_line (line=" in out and '"hello"' in out, out
        assert "exited normally]" in out, out
        assert stdout == ["echo-out: ready", "echo-out: hello", "echo-out: eof after 1 lines"], comm
        assert stderr[-1] == "echo-err: ready"


# --------------------------------------------------------------------------------- --multi COMM PROG
@pytest.mark.timeout(120)
def test_multi_with_program_serves_it_then_runs_and_attaches(stub: str, fixture_path) -> None:
    """`--multi COMM PROG`: PROG is started before the stub listens and served to the first GDB;
    extended-remote `run` and `attach` work afterwards, as without PROG."""
    program = fixture_path("echo_stdio")
    with untraced_program([fixture_path("spin"), "--threads", "1"]) as other:
        with started_stub(stub, ["--multi", "127.0.0.1:0", program]) as run:
            assert run.proc.stdin is not None
            run.proc.stdin.close()  # every run of the program reads end of file at once
            first = run.stderr.lines_until("Listening on port")
            port = first[-1].split()[-1]
            commands = ["info inferiors", "continue", "run", "kill", f"attach {other.pid}", "detach"]
            out = run_gdb(f"extended-remote 127.0.0.1:{port}", program, commands)
            later = run.stderr.lines_until("Listening on port")  # --multi: it listens again once GDB left
        assert other.poll() is None  # detached, running on
    first_pid = PROCESS_CREATED.search(first[0])
    assert first_pid and first_pid.group(1) == program
    assert f"process {first_pid.group(2)}" in out  # GDB found the program the stub started
    assert out.count("exited normally]") == 2, out
    assert f"[Inferior 1 (process {other.pid}) detached]" in out, out
    created = [m.group(2) for m in map(PROCESS_CREATED.search, later) if m]
    assert len(created) == 1 and created[0] != first_pid.group(2), later


@pytest.mark.timeout(90)
def test_multi_once_with_program_exits_after_the_first_connection(stub: str, fixture_path) -> None:
    program = fixture_path("echo_stdio")
    with started_stub(stub, ["--multi", "--once", "127.0.0.1:0", program], stdin=subprocess.DEVNULL) as run:
        port = run.stderr.lines_until("Listening on port")[-1].split()[-1]
        out = run_gdb(f"remote 127.0.0.1:{port}", program, ["continue"])
        status = run.proc.wait(timeout=20)
    assert "exited normally]" in out, out
    assert status == 0


# ------------------------------------------------------------------------------------------ --wrapper
@pytest.mark.timeout(60)
def test_wrapper_exec_count_matches(stub: str, fixture_path) -> None:
    """One exec is the wrapper's, the next the program's: a wrapper that execs once more stops there."""
    program = fixture_path("echo_stdio")
    wrapper = ["env", "PLUMBING_A=1", "env", "PLUMBING_B=2"]
    with started_stub(stub, ["--wrapper", *wrapper, "--", "127.0.0.1:0", program]) as run:
        match = PROCESS_CREATED.search(run.stderr.lines_until("Listening on port")[0])
        assert match and match.group(1) == program
        pid = int(match.group(2))
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")[:-1]
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")
    assert exe == "/usr/bin/env"
    assert argv == [b"env", b"PLUMBING_B=2", program.encode()]
    assert b"PLUMBING_A=1" in environ and b"PLUMBING_B=2" not in environ


@pytest.mark.timeout(60)
def test_wrapper_of_pwntools_env(stub: str, fixture_path) -> None:
    """`gdb.debug(prog, env={...})` runs `--wrapper /usr/bin/env -i K=V --` (no --no-startup-with-shell):
    the program, not env, is stopped, with exactly that environment."""
    program = fixture_path("echo_stdio")
    args = ["--multi", "--no-disable-randomization", "--wrapper", "/usr/bin/env", "-i", "PLUMBING=1", "--"]
    with started_stub(stub, [*args, "localhost:0", program]) as run:
        match = PROCESS_CREATED.search(run.stderr.lines_until("Listening on port")[0])
        assert match
        pid = int(match.group(2))
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read().split(b"\0")[:-1]
    assert exe == program
    assert environ == [b"PLUMBING=1"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("exit 0", "During startup program exited normally."),
        ("exit 3", "During startup program exited with code 3."),
        ("kill -KILL $$", "During startup program terminated with signal SIGKILL, Killed."),
    ],
)
def test_wrapper_that_ends_before_the_program(stub: str, script: str, expected: str, tmp_path: Path) -> None:
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f"#!/bin/sh\n{script}\n")
    wrapper.chmod(0o755)
    result = subprocess.run(
        stub_command(stub, ["--wrapper", str(wrapper), "--", "127.0.0.1:0", "/bin/true"]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stderr.splitlines() == [expected, "Exiting"]
    assert result.returncode == 1


# ----------------------------------------------------------------------------- pwntools' gdb.debug()
@dataclass
class Pty:
    """pwntools' default plumbing of a process: stdin a pipe, stdout and stderr one raw pty, which is also
    the process's controlling terminal (pwnlib/tubes/process.py: `_handles`, `__pty_make_controlling_tty`)."""

    master: int
    slave: int

    @classmethod
    def open(cls) -> Pty:
        master, slave = pty.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        return cls(master, slave)

    def make_controlling(self) -> None:
        """In the child, after setsid: opening the slave makes it the controlling terminal."""
        os.close(os.open(os.ttyname(self.slave), os.O_RDWR))

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.mark.timeout(120)
def test_pwntools_gdb_debug_replayed(stub: str, fixture_path) -> None:
    """pwntools' `gdb.debug(prog)`: the stub command line of `_gdbserver_args`, the two line reads of
    `_gdbserver_port` (pid from the first line's last word, port from the `Listening` one), GDB
    attached with `target remote` (`attach((host, port))`), the `Remote debugging from host` line
    `debug()` reads next, then the program driven through the stub's stdin and its pty."""
    program = fixture_path("echo_stdio")
    args = ["--multi", "--no-disable-randomization", "--no-startup-with-shell", "localhost:0", program]
    terminal = Pty.open()
    try:
        with started_stub(
            stub, args, stdout=terminal.slave, stderr=terminal.slave, preexec_fn=terminal.make_controlling
        ) as run:
            assert run.proc.stdin is not None
            os.close(terminal.slave)
            tube = LineReader(terminal.master)
            process_created = tube.line(timeout=3)  # pwntools gives up after 3 s
            pid = int(process_created.split()[-1], 0)
            listening_on = ""
            while "Listening" not in listening_on:
                listening_on = tube.line()
                assert listening_on, tube.seen
            port = int(listening_on.split()[-1])
            gdb = subprocess.Popen(
                [GDB, "-nx", "-q", "-batch", program, "-ex", f"target remote 127.0.0.1:{port}"]
                + ["-ex", "break got_line", "-ex", "continue", "-ex", "continue"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                connected = tube.line()
                run.proc.stdin.write(b"hello\n")  # io.sendline(b"hello")
                run.proc.stdin.flush()
                said = [tube.line(), tube.line(), tube.line()]
                run.proc.stdin.close()
                said.append(tube.line())
                out, _ = gdb.communicate(timeout=60)
            finally:
                if gdb.poll() is None:
                    gdb.kill()
                    gdb.communicate()
    finally:
        terminal.close()
    assert process_created == f"Process {program} created; pid = {pid}"
    assert re.fullmatch(r"Remote debugging from host 127\.0\.0\.1, port \d+", connected), tube.seen
    assert sorted(said[:2]) == ["echo-err: ready", "echo-out: ready"], tube.seen
    assert said[2:] == ["echo-out: hello", "echo-out: eof after 1 lines"], tube.seen
    text = out.decode(errors="replace")
    assert "Breakpoint 1, got_line" in text and "exited normally]" in text, text

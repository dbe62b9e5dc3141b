"""Signals, Ctrl-C, extended-remote run/attach and `ptstub attach`, through the real GDB."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.gdb.stubs import GDB, PTSTUB, process_state, run_gdb, running_stub, untraced_program


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("handle", "stops", "handled", "exit_code"),
    [("stop print pass", 5, 5, 0), ("nostop noprint pass", 0, 5, 0), ("stop print nopass", 5, 0, 1)],
)
def test_signals_follow_handle(stub: str, fixture_path, handle: str, stops: int, handled: int, exit_code: int) -> None:
    program = fixture_path("signals")
    commands = ["set sysroot /", f"handle SIGUSR1 {handle}"] + ["continue"] * (stops + 1)
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--count", "5", "--idle-threads", "2"]) as server:
        result = run_gdb(server.port, program, commands)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        output = server.proc.stdout.read().decode()
    assert len(re.findall(r"received signal SIGUSR1", result.output)) == stops, result.output[-3000:]
    assert f"signals: usr1={handled}" in output, output
    expected_exit = "exited normally" if exit_code == 0 else f"exited with code {exit_code:02d}"
    assert expected_exit in result.output, result.output[-3000:]


@contextlib.contextmanager
def gdb_session(
    port: int, program: str, commands: list[str], extended: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    target = "extended-remote" if extended else "remote"
    args = [GDB, "-nx", "-batch", "-ex", "set sysroot /", "-ex", f"target {target} 127.0.0.1:{port}"]
    for command in commands:
        args += ["-ex", command]
    args.append(program)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def wait_for_line(stream, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    seen = b""
    while text.encode() not in seen:
        assert time.monotonic() < deadline, f"no {text!r} within {timeout}s; got {seen!r}"
        line = stream.readline()
        assert line, f"stream ended before {text!r}; got {seen!r}"
        seen += line


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_thread(stub: str, fixture_path) -> None:
    program = fixture_path("spin")
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--threads", "4", "--busy", "2"]) as server:
        with gdb_session(server.port, program, ["continue", "info threads", "kill"]) as gdb:
            assert server.proc.stdout is not None
            wait_for_line(server.proc.stdout, "ready")
            gdb.send_signal(signal.SIGINT)  # what typing Ctrl-C in GDB's terminal does
            out, _ = gdb.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert re.search(r"received signal SIGINT|Program stopped", text), text[-3000:]
    assert len(re.findall(r"Thread \d+\.\d+ \"spin\"", text)) >= 5, text[-3000:]
    assert "killed" in text


LEADER_EXITS = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *worker(void *arg) { (void)arg; printf("ready\n"); fflush(stdout); for (;;) pause(); }
int main(void) { pthread_t t; pthread_create(&t, 0, worker, 0); pthread_exit(0); }
"""


@pytest.mark.timeout(120)
def test_ctrl_c_after_attaching_to_a_process_whose_leader_exited(tmp_path) -> None:
    source = tmp_path / "leader_gone.c"
    source.write_text(LEADER_EXITS)
    program = tmp_path / "leader_gone"
    subprocess.run(["cc", "-g", "-pthread", "-o", str(program), str(source)], check=True)
    victim = subprocess.Popen([str(program)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert victim.stdout is not None
        wait_for_line(victim.stdout, "ready")
        # gdbserver hangs here: its interrupt is kill(-pgid, SIGINT), and the group is not its own.
        with running_stub("ptstub", ["--once", "--attach", "127.0.0.1:0", str(victim.pid)]) as server:
            with gdb_session(server.port, str(program), ["info threads", "continue", "info threads", "detach"]) as gdb:
                assert gdb.stdout is not None
                wait_for_line(gdb.stdout, "Thread")
                _interrupt_when_running(gdb, victim.pid)
                out, _ = gdb.communicate(timeout=60)
        text = out.decode(errors="replace")
        assert "detached" in text, text[-3000:]
        assert victim.poll() is None, "the program must survive the detach"
        assert process_state(victim.pid) not in ("T", "t"), "the program must not be left stopped"
    finally:
        victim.kill()
        victim.wait(timeout=10)
        if victim.stdout:
            victim.stdout.close()


def _interrupt_when_running(gdb: subprocess.Popen[bytes], pid: int) -> None:
    """One SIGINT to GDB once the program really runs (its threads leave the ptrace stop)."""
    deadline = time.monotonic() + 30
    while all(process_state(pid, tid) == "t" for tid in _live_tasks(pid)):
        assert time.monotonic() < deadline, "GDB never resumed the program"
        time.sleep(0.01)  # polling for a state change, bounded by the deadline
    gdb.send_signal(signal.SIGINT)


def _live_tasks(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task") if process_state(pid, int(t)) != "Z"]


@pytest.mark.timeout(120)
def test_extended_remote_run_twice_and_attach(stub: str, fixture_path) -> None:
    simple = fixture_path("simple")
    spin = fixture_path("spin")
    victim = subprocess.Popen([spin, "--threads", "3"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert victim.stdout is not None
        wait_for_line(victim.stdout, "ready")
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            commands = [
                f"set remote exec-file {simple}",
                "run --iterations 2 --exit 4",
                "run --iterations 1",
                f"attach {victim.pid}",
                "info threads",
                "detach",
                "monitor exit",
            ]
            result = run_gdb(server.port, simple, ["set sysroot /"] + commands, extended=True)
        assert "exited with code 04" in result.output, result.output[-3000:]
        assert "exited normally" in result.output, result.output[-3000:]
        assert len(re.findall(r"Thread \d+\.\d+ \"spin\"", result.output)) == 4, result.output[-3000:]
        assert "Detaching from program" in result.output or "detached" in result.output
        assert victim.poll() is None and process_state(victim.pid) not in ("T", "t")
    finally:
        victim.kill()
        victim.wait(timeout=10)
        if victim.stdout:
            victim.stdout.close()


@pytest.mark.timeout(120)
def test_ptstub_attach_subcommand(fixture_path) -> None:
    spin = fixture_path("spin")
    victim = subprocess.Popen([spin, "--threads", "3", "--busy", "1"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    stub = subprocess.Popen(PTSTUB + ["attach", str(victim.pid)], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert victim.stdout is not None and stub.stderr is not None
        wait_for_line(victim.stdout, "ready")
        line = b""
        while b"target remote" not in line:
            chunk = stub.stderr.readline()
            assert chunk, "ptstub attach ended early"
            line = chunk
        match = re.search(rb"gdb -ex 'target remote (127\.0\.0\.1):(\d+)'", line)
        assert match, line
        result = run_gdb(int(match.group(2)), spin, ["info threads", "detach"])
        assert len(re.findall(r"Thread \d+\.\d+ \"spin\"", result.output)) == 4, result.output[-3000:]
        stub.wait(timeout=30)
        assert victim.poll() is None and process_state(victim.pid) not in ("T", "t")
    finally:
        for proc in (stub, victim):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        victim.stdout.close()
        stub.stderr.close()


@pytest.mark.timeout(120)
def test_monitor_exit_detaches_an_attached_program(stub: str, fixture_path) -> None:
    """`monitor exit` with an attached program: the stub detaches it (and kills only what it
    started), as gdbserver's detach_or_kill_for_exit. gdb.base/attach.exp found ptstub killing it."""
    spin = fixture_path("spin")
    with untraced_program([spin, "--threads", "2"]) as victim:
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            run_gdb(server.port, spin, ["set sysroot /", f"attach {victim.pid}", "monitor exit"], extended=True)
            stderr = server.read_stderr(timeout=30, until="Detaching process(es)")
            server.proc.wait(timeout=30)
            assert f"Detaching process(es): {victim.pid}" in stderr, stderr  # gdbserver's line
        assert victim.poll() is None, "monitor exit killed the attached program"
        assert process_state(victim.pid) not in ("T", "t"), "left stopped"

"""ptstub's command line against gdbserver's: forms, stderr lines, bad input, safe defaults."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest

from tests.gdb import stubs
from tests.gdb.stubs import PTSTUB, run_gdb, running_stub


def ptstub(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        PTSTUB + list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "missing COMM"),
        (["--frobnicate", ":0", "/bin/true"], "unknown argument: --frobnicate"),
        ([":0"], "missing PROG"),
        (["--attach", ":0"], "--attach needs exactly one PID"),
        (["--attach", ":0", "12x"], "--attach needs exactly one PID"),
        (["127.0.0.1:99999", "/bin/true"], "bad port number"),
        (["nocolon", "/bin/true"], "expected HOST:PORT"),
        (["--wrapper", "env", ":0", "/bin/true"], "--wrapper needs a command ended by '--'"),
        (["attach"], "usage: ptstub attach PID"),
    ],
)
def test_bad_command_line_is_one_line_and_status_2(args: list[str], needle: str) -> None:
    result = ptstub(*args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_program_that_does_not_exist_is_reported_like_gdbserver() -> None:
    result = ptstub("127.0.0.1:0", "/nonexistent/program")
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr and "Exiting" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_attach_to_missing_pid_fails_cleanly() -> None:
    result = ptstub("--attach", "127.0.0.1:0", "999999")
    assert result.returncode == 1
    assert "Cannot attach to process 999999" in result.stderr and "no such process" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
def test_help_and_version() -> None:
    assert ptstub("--help").stdout.startswith("Usage:")
    assert ptstub("--version").stdout.startswith("ptstub ")


@pytest.mark.timeout(60)
def test_stderr_lines_match_gdbserver(stub: str) -> None:
    with running_stub(stub, ["--once", "127.0.0.1:0", "/bin/true"]) as server:
        result = run_gdb(server.port, "/bin/true", ["continue"])
        assert "exited normally" in result.output, result.output
        server.proc.wait(timeout=20)
        text = server.read_stderr(2)
    assert "Process /bin/true created; pid = " in text
    assert "Listening on port " in text
    assert "Remote debugging from host 127.0.0.1, port " in text
    assert "Child exited with status 0" in text
    assert server.proc.returncode == 0


@pytest.mark.timeout(60)
def test_listens_on_loopback_by_default() -> None:
    with running_stub("ptstub", ["--once", ":0", "/bin/true"]) as server:
        addresses = _listening_addresses(server.proc.pid)
        assert addresses == [f"127.0.0.1:{server.port}"], addresses


def _listening_addresses(pid: int) -> list[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                host, port = fields[1].split(":")
                ip = ".".join(str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0))
                found.append(f"{ip}:{int(port, 16)}")
    return found


@pytest.mark.timeout(60)
def test_unix_socket_is_private(tmp_path) -> None:
    path = tmp_path / "stub.sock"
    proc = subprocess.Popen(
        PTSTUB + ["--once", f"unix:{path}", "/bin/true"],
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        line = b""
        while b"Listening on" not in line:
            chunk = proc.stderr.readline()
            assert chunk, "ptstub exited before listening"
            line += chunk
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode == 0o600, oct(mode)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()


@pytest.mark.timeout(60)
def test_second_client_is_refused_and_first_is_kept(fixture_path) -> None:
    """A second GDB that connects while the program runs hears "already serving" and the first keeps
    its session. The program never ends (`hang`), so the refusal cannot race its exit: while GDB sits
    at a stop, ptstub, as gdbserver, reads only GDB's socket, and a second client waits unanswered."""
    with running_stub("ptstub", ["--once", "127.0.0.1:0", fixture_path("hang")]) as server:
        first = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            first.sendall(b"$?#3f")
            assert _read_until(first, b"#").startswith(b"+$T")
            first.sendall(b"+$vCont;c#a8")  # run: the server now waits on the program and on clients
            second = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            reply = second.recv(200)
            second.close()
            assert b"already serving" in reply
            first.sendall(b"\x03")  # the first GDB is still served: its Ctrl-C stops the program
            assert b"$T" in _read_until(first, b"#")
            first.sendall(b"+$k#6b")
        finally:
            first.close()


def _read_until(conn: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = conn.recv(200)
        assert chunk, f"connection closed before {marker!r}; got {data!r}"
        data += chunk
    return data


@pytest.mark.timeout(60)
def test_python_dash_m_works() -> None:
    result = subprocess.run([sys.executable, "-m", "ptstub", "--version"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0 and "ptstub" in result.stdout


@pytest.mark.timeout(120)
def test_a_whole_session_stays_off_the_costly_imports(fixture_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GDB's testsuite starts a stub several times per file, so every module a plain session loads is paid
    # for again and again (design-notes: "Start-up"). `-X importtime` lists what the stub really imported
    # from exec to exit: a connection, a breakpoint, a stop, registers, memory and `kill`.
    monkeypatch.setattr(stubs, "PTSTUB", [sys.executable, "-X", "importtime", "-m", "ptstub"])
    program = fixture_path("simple")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program]) as stub:
        result = run_gdb(stub.port, program, ["break main", "continue", "info registers rip", "x/4x $sp", "kill"])
        assert "Breakpoint 1, main" in result.output, result.output
        stub.proc.wait(timeout=30)
        text = stub.read_stderr(timeout=10)
    loaded = {line.rsplit("|", 1)[1].strip() for line in text.splitlines() if line.startswith("import time:")}
    assert "ptstub.session" in loaded  # the listing is whole
    costly = {"socket", "selectors", "signal", "re", "binascii", "mmap", "ctypes", "typing", "logging", "dataclasses"}
    assert not costly & loaded
    assert not any(name.startswith(("elftools", "xml.")) for name in loaded)

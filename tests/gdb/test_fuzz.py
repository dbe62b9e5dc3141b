"""Bad input on the wire: thousands of malformed, truncated, oversized and random packets.

ptstub must answer each well-framed packet (`E NN`, empty, or a normal reply), answer a bad checksum
with `-`, never crash or hang, leave the program intact, and still serve a real GDB afterwards.
Packets that would resume, kill or detach the program are left out of the random mix on purpose: the
point is that nothing else can disturb it.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time

import pytest

from ptstub.rsp.framing import encode_packet
from tests.gdb.stubs import PTSTUB, run_gdb, running_stub

PREFIXES = [
    b"m",
    b"M",
    b"X",
    b"g",
    b"G",
    b"p",
    b"P",
    b"Z0,",
    b"z0,",
    b"Z1,",
    b"Z2,",
    b"Z3,",
    b"Z4,",
    b"z2,",
    b"H",
    b"Hg",
    b"Hc",
    b"T",
    b"qXfer:features:read:",
    b"qXfer:threads:read::",
    b"qXfer:auxv:read::",
    b"qXfer:libraries-svr4:read::",
    b"qXfer:siginfo:read::",
    b"qXfer:siginfo:write::",
    b"qXfer:exec-file:read:",
    b"qXfer:bogus:read::",
    b"vFile:open:",
    b"vFile:pread:",
    b"vFile:close:",
    b"vFile:fstat:",
    b"vFile:setfs:",
    b"vFile:readlink:",
    b"qSupported:",
    b"QPassSignals:",
    b"QProgramSignals:",
    b"qGetTLSAddr:",
    b"qCRC:",
    b"qSearch:memory:",
    b"qThreadExtraInfo,",
    b"qAttached:",
    b"QEnvironmentHexEncoded:",
    b"QSetWorkingDir:",
    b"QCatchSyscalls:",
    b"qSymbol:",
    b"?",
    b"qC",
    b"qfThreadInfo",
    b"qsThreadInfo",
    b"vCont?",
    b"QNonStop:",
    b"qRcmd,",
    b"vMustReplyEmpty",
    b"",
]
ALPHABET = b"0123456789abcdefABCDEFpx,:;.-=+#$}*\x00\xff\x03 lm"
RESUMING = (b"c", b"C", b"s", b"S", b"vCont;", b"k", b"vKill", b"D", b"R", b"vRun", b"vAttach", b"!", b"vCtrlC")


def random_body(rng: random.Random) -> bytes:
    prefix = rng.choice(PREFIXES)
    size = rng.choice([0, 1, 3, 8, 20, 64, 300])
    body = prefix + bytes(rng.choice(ALPHABET) for _ in range(size))
    if prefix == b"qRcmd," and b"657869" in body:
        body = b"qRcmd,00"  # not `monitor exit`
    if body.startswith(RESUMING) and not body.startswith(b"vCont?"):
        body = b"?"
    return body


def read_reply(conn: socket.socket, buffer: bytearray, deadline: float) -> bytes:
    """The next `$...#xx` from the stream (acks skipped)."""
    while True:
        start = buffer.find(b"$")
        if start >= 0:
            end = buffer.find(b"#", start)
            if end >= 0 and len(buffer) >= end + 3:
                packet = bytes(buffer[start : end + 3])
                del buffer[: end + 3]
                return packet
        assert time.monotonic() < deadline, "ptstub stopped answering"
        chunk = conn.recv(65536)
        assert chunk, "ptstub closed the connection"
        buffer += chunk


@pytest.mark.timeout(180)
def test_fuzzed_packets_are_answered_and_the_session_survives(fixture_path) -> None:
    program = fixture_path("simple")
    rng = random.Random(20261125)
    with running_stub("ptstub", ["127.0.0.1:0", program, "--iterations", "3"]) as server:
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        buffer = bytearray()
        deadline = time.monotonic() + 120
        answered = 0
        try:
            for i in range(3000):
                kind = i % 10
                if kind == 0:  # noise between packets, including stray Ctrl-C bytes while stopped
                    conn.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))).replace(b"$", b""))
                    continue
                body = random_body(rng)
                if kind == 1:  # bad checksum: must be answered '-'
                    frame = b"$" + body.replace(b"#", b"") + b"#00"
                    if encode_packet(body.replace(b"#", b"")).endswith(b"#00"):
                        continue
                    conn.sendall(frame)
                    continue
                if kind == 2:  # truncated: a frame with no end, completed by the next packet's bytes
                    conn.sendall(b"$" + body[: len(body) // 2])
                    conn.sendall(b"#zz")  # a non-hex checksum closes it: answered '-'
                    continue
                if kind == 3:
                    body = b"m0," + b"f" * rng.randrange(1, 30)  # huge or malformed lengths
                conn.sendall(encode_packet(body))
                read_reply(conn, buffer, deadline)
                answered += 1
            oversized = b"$" + b"X" * (2 << 20)  # 2 MiB with no end: dropped, memory bounded
            conn.sendall(oversized + b"#00")
            # Some packets have two replies (`qRcmd`: output, then OK), so drain up to a unique marker.
            conn.sendall(encode_packet(b"qXfer:exec-file:read::0,fff"))
            while b"simple" not in read_reply(conn, buffer, deadline):
                pass
            conn.sendall(encode_packet(b"?"))
            assert read_reply(conn, buffer, deadline).startswith(b"$T")
        finally:
            conn.close()
        assert answered > 2000
        # The same server, a new client: a normal debugging session still works end to end.
        result = run_gdb(
            server.port, program, ["set sysroot /", "break work", "continue", "print i", "delete", "continue"]
        )
        assert "Breakpoint 1, work (i=0)" in result.output, result.output[-3000:]
        assert "exited normally" in result.output, result.output[-3000:]
        stderr = server.read_stderr(1)
    assert "Traceback" not in stderr, stderr


@pytest.mark.timeout(60)
def test_client_disconnect_with_once_kills_the_program(fixture_path) -> None:
    program = fixture_path("spin")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "--threads", "2"]) as server:
        pid = int(server.stderr.split("pid = ")[1].split()[0])
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(encode_packet(b"?"))
            read_reply(conn, bytearray(), time.monotonic() + 10)
        assert server.proc.wait(timeout=20) == 0
    assert not _alive(pid), "the launched program must not outlive ptstub --once"


@pytest.mark.timeout(60)
def test_client_disconnect_with_multi_waits_for_the_next(fixture_path) -> None:
    program = fixture_path("simple")
    with running_stub("ptstub", ["--multi", "127.0.0.1:0"]) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(encode_packet(b"qSupported:multiprocess+"))
            read_reply(conn, bytearray(), time.monotonic() + 10)
        server.read_stderr(10, until="Remote side has terminated connection")
        result = run_gdb(
            server.port,
            program,
            ["set sysroot /", f"set remote exec-file {program}", "run", "monitor exit"],
            extended=True,
        )
        assert "exited normally" in result.output, result.output[-3000:]
        assert server.proc.wait(timeout=20) == 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(60)
def test_ptstub_killed_takes_the_launched_program_with_it(fixture_path) -> None:
    program = fixture_path("spin")
    proc = subprocess.Popen(PTSTUB + ["127.0.0.1:0", program], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        pid = int(line.split("pid = ")[1])
        proc.kill()  # SIGKILL: no cleanup code runs; PTRACE_O_EXITKILL must do it
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline, "the program outlived a SIGKILLed ptstub"
            time.sleep(0.01)  # polling for a state change, bounded by the deadline
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()

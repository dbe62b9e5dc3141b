#!/usr/bin/env python3
"""The stub's side of a GDB breakpoint loop, without GDB: ptstub against GNU gdbserver, in one run.

A small RSP client replays, per breakpoint stop, the 9 requests GDB 13 sends for a breakpoint with
`commands; silent; continue; end` (`vCont;c`, `qXfer:threads:read`, `z0` x2, `Z0`, `QPassSignals:`,
`vCont;s`, `Z0`, `QPassSignals:...`; see docs/design-notes.md) against `fixtures/stress`. Without
GDB's ~1 ms per stop the figure is the stub's own latency per request: recv, parse, handle, ptrace,
reply. Prints stops/s (min/median/max over --repeats) and the ratio of medians, ptstub / gdbserver,
and the stub process's own CPU time per stop (its CPU-time clock around the timed loop): on a loaded
machine the wall-clock rate mostly measures the scheduler, the CPU time less so.

Usage: bench/bench_rsp.py [--repeats N] [--stops N] [--threads N]
The machine is shared and noisy: compare within one run only.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.gdb.stubs import running_stub  # noqa: E402

PIE_BASE = 0x555555554000  # stubs launch with randomization disabled, like gdbserver
PASS = b"QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97;"


class Client:
    """Just enough of an RSP client: no-ack mode, one request at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.ack = True

    def request(self, body: bytes) -> bytes:
        self.sock.sendall(b"$%s#%02x" % (body, sum(body) & 0xFF))
        while True:
            match = re.search(rb"\$([^#]*)#[0-9a-fA-F]{2}", self.buffer, re.S)
            if match:
                self.buffer = self.buffer[match.end() :]
                if self.ack:
                    self.sock.sendall(b"+")
                return match.group(1)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("stub closed the connection")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def symbol(program: str, name: str) -> int:
    out = subprocess.run(["nm", program], capture_output=True, text=True, check=True).stdout
    return int(re.search(rf"^([0-9a-f]+) T {name}$", out, re.M).group(1), 16)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid` itself, all threads, not its children: its CPU-time clock
    (clock_getcpuclockid(3), CPUCLOCK_SCHED), in ns rather than the 10 ms ticks of /proc/PID/stat."""
    return time.clock_gettime(((~pid) << 3) | 2)


def stops_per_second(stub: str, program: str, threads: int, stops: int) -> tuple[float, float]:
    """(stops/s, stub CPU seconds per stop)."""
    hit, other = PIE_BASE + symbol(program, "hit_target"), PIE_BASE + symbol(program, "main")
    calls = stops // threads + 2
    args = ["--once", "127.0.0.1:0", program, "--threads", str(threads), "--calls", str(calls), "--syscall", "none"]
    with running_stub(stub, args) as server:
        client = Client(server.port)
        client.request(b"qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+;no-resumed+")
        client.request(b"QStartNoAckMode")
        client.ack = False
        stop = client.request(b"?")
        pid = int(re.search(rb"thread:p([0-9a-f]+)\.", stop).group(1), 16)
        client.request(b"Z0,%x,1" % hit)
        client.request(b"Z0,%x,1" % other)
        client.request(PASS)
        cpu_start = cpu_seconds(server.proc.pid)
        start = time.perf_counter()
        for _ in range(stops):
            reply = client.request(b"vCont;c:p%x.-1" % pid)
            tid = re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", reply)
            if not reply.startswith(b"T05") or tid is None:
                raise RuntimeError(f"{stub}: unexpected stop {reply[:80]!r}")
            client.request(b"qXfer:threads:read::0,1000")
            client.request(b"z0,%x,1" % hit)
            client.request(b"z0,%x,1" % other)
            client.request(b"Z0,%x,1" % other)
            client.request(b"QPassSignals:")
            client.request(b"vCont;s:p%x.%s" % (pid, tid.group(1)))
            client.request(b"Z0,%x,1" % hit)
            client.request(PASS)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server.proc.pid) - cpu_start
        client.request(b"vKill;%x" % pid)
        client.close()
        server.proc.wait(timeout=30)
    return stops / elapsed, cpu / stops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stops", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()
    program = str(ROOT / "build" / "fixtures" / "stress")
    results: dict[str, list[float]] = {"ptstub": [], "gdbserver": []}
    cpu: dict[str, list[float]] = {"ptstub": [], "gdbserver": []}
    for _ in range(opts.repeats):
        for stub in results:  # alternate, so drifting load hits both alike
            rate, cpu_per_stop = stops_per_second(stub, program, opts.threads, opts.stops)
            results[stub].append(rate)
            cpu[stub].append(cpu_per_stop * 1e6)
    medians = {stub: statistics.median(values) for stub, values in results.items()}
    for stub, values in results.items():
        print(
            f"{stub:<10} stops/s {min(values):.0f}/{medians[stub]:.0f}/{max(values):.0f} (min/median/max), "
            f"stub CPU per stop {min(cpu[stub]):.0f}/{statistics.median(cpu[stub]):.0f}/{max(cpu[stub]):.0f} us"
        )
    print(
        f"ratio ptstub/gdbserver: {medians['ptstub'] / medians['gdbserver']:.2f}x stops/s, "
        f"{statistics.median(cpu['ptstub']) / statistics.median(cpu['gdbserver']):.2f}x CPU per stop "
        f"({opts.threads} thread(s), 9 requests per stop)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

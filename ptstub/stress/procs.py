"""Processes of the stub face: a free port, waiting until a stub listens, and killing a process tree.

Waiting for the stub must not connect to it: gdbserver and `qemu-x86_64 -g` serve one connection, and
qemu-user lets the program run free once its first client goes away. So readiness is read from the
kernel's socket table (/proc/net/tcp{,6}, proc(5): state 0A is LISTEN), polled against a deadline
while watching that the stub is still alive. Killing walks /proc for every descendant first, because a
stub may put its inferior in another process group (and a stub killed with SIGKILL cannot clean up).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

LISTEN = "0A"
POLL_FIRST_S = 0.005
POLL_MAX_S = 0.05


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_listening(port: int) -> bool:
    """Whether some socket of this network namespace listens on TCP `port`."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            continue
    return False


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> str | None:
    """None once `port` listens; else why not: the process exited, or `timeout` passed."""
    deadline = time.monotonic() + timeout
    interval = POLL_FIRST_S
    while True:
        if is_listening(port):
            return None
        status = process.poll()
        if status is not None:
            return f"exited with status {status} before listening on port {port}"
        if time.monotonic() >= deadline:
            return f"did not listen on port {port} within {timeout:g} s"
        time.sleep(interval)  # a bounded poll of the socket table, not a synchronisation sleep
        interval = min(interval * 2, POLL_MAX_S)


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children first), from the ppid field of /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> bool:
    """SIGKILL `process`, its process group and every descendant, then reap `process`; False if it had ended."""
    alive = process.poll() is None
    if alive:
        victims = descendants(process.pid)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # started with start_new_session: pgid == pid
        except OSError:
            pass
        for pid in [process.pid, *victims]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # ESRCH: it is already gone
    process.wait()
    return alive


def kill_pid(pid: int) -> None:
    """SIGKILL one process that is not our child (its parent or init reaps it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass  # ESRCH: already gone


def stop_process(process: subprocess.Popen[bytes], grace: float) -> int | None:
    """Give `process` `grace` seconds to exit by itself (its status), else kill its tree (None)."""
    try:
        return process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill_tree(process)
        return None

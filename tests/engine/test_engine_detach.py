"""Detach, attach, interrupt, and ptstub's own death (docs/kernel-facts.md §2.8).

After `detach()` no int3 is left in memory (read through /proc/PID/mem, not through ptstub), no thread
is stopped or traced, and the program runs on: its busy threads call the function that had the
breakpoint, so a leftover int3 or an un-rewound pc would kill it. A launched process stays the test's
child after detach, so the test reaps it itself. If the ptstub process is SIGKILLed, the program it
launched dies with it (PTRACE_O_EXITKILL).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import (
    check_released,
    launched,
    read_proc_mem,
    task_ids,
    task_state,
    time_limit,
    unstopped_threads,
)

import ptstub
import ptstub.linux.ffi
from ptstub.events import BreakpointHit, Exited, Forked, Interrupted, VforkDone

pytestmark = pytest.mark.usefixtures("no_leftover_children")

PR_SET_CHILD_SUBREAPER = 36


def wait_counter_advances(pid: int, address: int, by: int, seconds: float = 10.0) -> None:
    """Poll an 8-byte counter through /proc/PID/mem until it has grown by `by` (the program runs)."""
    start = int.from_bytes(read_proc_mem(pid, address, 8), "little")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if int.from_bytes(read_proc_mem(pid, address, 8), "little") >= start + by:
            return
        os.sched_yield()
    pytest.fail(f"busy_counter of {pid} did not advance by {by} in {seconds} s: the program is not running")


def _unreported_fork_child(inf: ptstub.Inferior) -> int:
    """The child pid of a fork event the engine holds and has not reported, or 0 (white box: the
    engine's own per-thread record)."""
    e = inf._e
    kinds = (ptstub.linux.ffi.lib.PT_EV_FORK, ptstub.linux.ffi.lib.PT_EV_VFORK)
    for i in range(e.nthreads):
        if e.threads[i].ev_kind in kinds:
            return int(e.threads[i].ev_data)
    return 0


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("how", ["fork", "vfork"])
def test_detach_lets_the_child_of_an_unreported_fork_go(fixture_path, how: str) -> None:
    """A fork that happened while another thread's breakpoint hit is being reported stays pending in
    the engine; GDB never hears of the child. Detaching the parent must detach that child as well,
    with no int3 left in its memory, or it stays stopped under us (and the parent waits for it for
    ever). gdb.threads/pending-fork-event-detach.exp, stepi cases."""
    argv = [fixture_path("forker"), "400"] + (["--vfork"] if how == "vfork" else [])
    # A vfork leaves little room for the race (the parent sleeps until the child ends), and a loaded
    # machine less: try for up to a minute rather than a fixed number of runs.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with launched(argv) as inf:
            pid = inf.pid
            inf.set_options(fork_events=True)
            inf.set_pass_signals({signal.SIGCHLD})
            inf.insert_breakpoint(inf.symbol("tick"))
            while True:
                event = inf.cont(timeout=20)
                if isinstance(event, Forked):  # reported: GDB's detach-on-fork lets it go
                    child = inf.adopt_fork_child(event.child_pid)
                    child.detach()
                    child.close()
                elif isinstance(event, Exited):
                    assert event.code == 0, event
                    break  # every fork was reported: try again
                elif not isinstance(event, VforkDone):
                    assert isinstance(event, BreakpointHit), event
                    if _unreported_fork_child(inf):
                        break
            if not inf.alive:
                continue
            inf.detach()
            check_released(pid)
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status), f"wait status {status:#x}"
            code = os.WEXITSTATUS(status)
            assert code == 0, {3: "a child died (int3 left in it)", 4: "a child was left stopped"}.get(code, code)
            return
    pytest.fail("no fork stayed pending behind a breakpoint hit in a minute of runs of 400 forks")


@time_limit(30)
def test_detach_launched_process(fixture_path) -> None:
    stdin_read, stdin_write = os.pipe()
    argv = [fixture_path("spin"), "--threads", "4", "--busy", "2", "--stdin"]
    try:
        with launched(argv, stdin=stdin_read) as inf:
            os.close(stdin_read)
            stdin_read = -1
            pid = inf.pid
            hit_target, counter = inf.symbol("hit_target"), inf.symbol("busy_counter")
            original = inf.read_memory(hit_target, 16)
            inf.insert_breakpoint(hit_target)
            assert read_proc_mem(pid, hit_target, 1) == b"\xcc", "the breakpoint is not in memory"
            assert inf.read_memory(hit_target, 16) == original, "read_memory shows the int3"
            for _ in range(50):  # two busy threads: hits often stay pending when we detach
                event = inf.cont()
                assert isinstance(event, BreakpointHit) and event.pc == hit_target, event
            inf.detach()

            assert read_proc_mem(pid, hit_target, 16) == original, "detach left the int3 in memory"
            check_released(pid)
            wait_counter_advances(pid, counter, 100_000)
            os.close(stdin_write)  # EOF: spin exits 0
            stdin_write = -1
            _, status = os.waitpid(pid, 0)  # after detach it is still our child: we reap it
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"wait status {status:#x}"
    finally:
        for fd in (stdin_read, stdin_write):
            if fd >= 0:
                os.close(fd)


@time_limit(30)
def test_attach_to_running_process_then_detach(fixture_path, native_process) -> None:
    argv = [fixture_path("spin"), "--threads", "8", "--busy", "2"]
    with native_process(argv, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "ready\n"
        pid = proc.pid
        with ptstub.attach(pid) as inf:
            assert sorted(t.tid for t in inf.threads()) == task_ids(pid)
            assert len(task_ids(pid)) == 9
            assert unstopped_threads(pid) == [], "attach returned before every thread stopped"
            hit_target, counter = inf.symbol("hit_target"), inf.symbol("busy_counter")
            original = read_proc_mem(pid, hit_target, 16)
            inf.insert_breakpoint(hit_target)
            event = inf.cont()
            assert isinstance(event, BreakpointHit) and event.pc == hit_target and event.tid != pid, event
            inf.detach()
        assert read_proc_mem(pid, hit_target, 16) == original, "detach left the int3 in memory"
        check_released(pid)
        wait_counter_advances(pid, counter, 100_000)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@time_limit(30)
def test_interrupt_from_another_thread(fixture_path) -> None:
    with launched([fixture_path("spin"), "--threads", "4", "--busy", "2"]) as inf:
        pid = inf.pid

        def interrupt_once_running() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait for the program to be running, then interrupt
                if any((seen := task_state(pid, tid)) and seen[0] == "R" for tid in task_ids(pid)):
                    break
                os.sched_yield()
            inf.interrupt()

        for _ in range(5):
            interrupter = threading.Thread(target=interrupt_once_running)
            interrupter.start()
            try:
                event = inf.cont(timeout=15)
            finally:
                interrupter.join()
            assert isinstance(event, Interrupted), event
            assert unstopped_threads(pid) == []


HOLDER = """
import sys
import ptstub
inf = ptstub.launch([sys.argv[1], "--threads", "2", "--busy", "1"])
print("pid", inf.pid, flush=True)
if sys.argv[2] == "running":
    inf.cont(timeout=600)
else:
    sys.stdin.read()
"""


@time_limit(30)
@pytest.mark.parametrize("state", ["stopped", "running"])
def test_launched_program_dies_with_ptstub(fixture_path, native_process, tmp_path, state: str) -> None:
    """SIGKILL the process that launched `spin` through ptstub: spin must die too.

    The test process is a child subreaper meanwhile, so the orphaned spin is reparented to it and can
    be reaped (and its cause of death checked) here rather than left to init.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    argv = [sys.executable, str(script), fixture_path("spin"), state]
    try:
        with native_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
            line = holder.stdout.readline()
            assert line.startswith("pid "), f"holder printed {line!r}"
            pid = int(line.split()[1])
            pidfd = os.pidfd_open(pid)
            try:
                if state == "running":
                    assert holder.stdout.readline() == "ready\n"  # spin runs under the holder's cont()
                holder.kill()
                holder.wait(timeout=10)
                ready, _, _ = select.select([pidfd], [], [], 10)
                assert ready, f"launched program {pid} still alive 10 s after its ptstub process died"
            finally:
                os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"wait status {status:#x}"
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)

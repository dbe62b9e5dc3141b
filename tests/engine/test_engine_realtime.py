"""The tracer's real-time window for resumes of many threads (ptstub/linux/realtime.py, the engine's
boost_begin), on real processes.

The policy is decided once per process: on where the process may raise itself to SCHED_FIFO and the
kernel throttles real-time tasks, off when `PTSTUB_NO_REALTIME=1` or when the raise is refused (a child
without CAP_SYS_NICE and with RLIMIT_RTPRIO 0). The engine runs a resume batch of more than 64 threads
per CPU at SCHED_FIFO exactly when the policy is on, a shorter one never (its counters say which
batches did). Whatever the policy, every thread of a half-busy program runs after a resume, and the
tracer thread is back at SCHED_OTHER once `resume()` returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ptstub.linux import realtime
from ptstub.target import ResumeAction, ResumeKind
from tests.engine.helpers import launched, time_limit

pytestmark = time_limit(60)

FIFO_PER_CPU = 64  # csrc/ptcore_threads.c: a batch of more threads per CPU runs at SCHED_FIFO when allowed
DECIDE = "from ptstub.linux import realtime; p = realtime.decide(); print(p.enabled, p.reason)"


def test_the_environment_turns_it_off() -> None:
    policy = realtime.decide({"PTSTUB_NO_REALTIME": "1"})
    assert not policy.enabled and "PTSTUB_NO_REALTIME" in policy.reason


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv")
def test_refused_without_the_capability_and_the_rlimit() -> None:
    """Without CAP_SYS_NICE and with RLIMIT_RTPRIO 0 the raise is refused: off, with the reason."""
    drop = ["setpriv", "--inh-caps", "-sys_nice", "--bounding-set", "-sys_nice"]
    out = subprocess.run(
        ["prlimit", "--rtprio=0", "--", *drop, sys.executable, "-c", DECIDE],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.startswith("False not permitted"), out


@pytest.mark.parametrize("per_cpu", [15, FIFO_PER_CPU + 4], ids=["short-batch", "long-batch"])
def test_resume_of_a_half_busy_program_with_and_without_the_window(fixture_path, per_cpu: int) -> None:
    """A long batch (more than FIFO_PER_CPU threads per CPU) runs at SCHED_FIFO exactly when the
    policy is on; a shorter one never does (the nice boost's: more than two threads per CPU)."""
    threads = per_cpu * (os.cpu_count() or 1)
    if threads > 2000:
        pytest.skip(f"{threads} threads for this machine's CPUs")
    on = realtime.decide()
    policies = [realtime.RealtimePolicy(False, "off in this test"), on]
    argv = [fixture_path("spin"), "--threads", str(threads - 1), "--busy", "16", "--stdin"]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as spin:
        try:
            assert spin.stdout is not None and spin.stdout.readline() == b"ready\n"  # every thread exists
            for policy in policies:
                fifo = policy.enabled and per_cpu > FIFO_PER_CPU
                with_policy_resumes_run_every_thread(spin.pid, policy, fifo)
        finally:
            spin.kill()
            spin.wait()


def with_policy_resumes_run_every_thread(pid: int, policy: realtime.RealtimePolicy, fifo: bool) -> None:
    import ptstub

    with ptstub.attach(pid) as inf:
        inf.set_realtime(policy)
        assert len(inf.threads()) > 2 * (os.cpu_count() or 1)  # a batch the engine boosts one way or another
        every = ResumeAction(ResumeKind.CONTINUE)
        inf.resume(default=every)
        for stop, cycle in inf.measure_stop_resume(5):
            assert 0 < stop <= cycle
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
        assert inf.stats["fifo_batches"] == (6 if fifo else 0), (inf.stats, policy)
        stopped = [tid for tid in os.listdir(f"/proc/{pid}/task") if _state(pid, int(tid)) == "t"]
        assert not stopped, f"threads left stopped after resume ({policy.reason}): {stopped}"
        inf.detach()


def _state(pid: int, tid: int) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_breakpoint_loop_through_resume_and_wait_keeps_every_count(fixture_path) -> None:
    """GDB's path (`resume()` of every thread, then `wait()`) on a program with more than two threads
    per CPU, at the policy this process gets: every hit reported, the program's own counts exact."""
    from ptstub.events import BreakpointHit, Exited

    argv = [fixture_path("stress"), "--threads", "8", "--calls", "50", "--syscall", "none", "--idle", "16"]
    every = ResumeAction(ResumeKind.CONTINUE)
    with launched(argv, stdout=subprocess.DEVNULL) as inf:
        inf.insert_breakpoint(inf.symbol("hit_target"))
        hits = 0
        while True:
            inf.resume(default=every)
            event = inf.wait(timeout=20)
            if isinstance(event, Exited):
                break
            assert isinstance(event, BreakpointHit), event
            hits += 1
            assert os.sched_getscheduler(0) == os.SCHED_OTHER
        assert hits == 8 * 50 and event.code == 0, (hits, event)
        assert inf.stats["fifo_batches"] == 0  # 24 threads: a short batch, never at SCHED_FIFO

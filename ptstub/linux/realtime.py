"""Real-time priority for the tracer thread while it resumes every thread (a bounded window).

When busy threads outnumber the CPUs, each `PTRACE_CONT` of a resume-all wakes a thread that can
preempt the tracer before it has resumed the rest (docs/kernel-facts.md §7): with 256 threads of which
128 busy, a resume took 60-300 ms on 2 CPUs, against ~5 ms for the same C loop at `SCHED_FIFO`. A
thread at `SCHED_FIFO` is never preempted by `SCHED_OTHER` threads (sched(7)), so it finishes the batch
first and the woken threads then run.

The window is one `pt_resume` call: a batch of ptrace requests that never sleeps and ends when every
thread due is resumed (a few ms for thousands of threads). The waits, where the tracer may run for a
long time handling a stream of events, stay at the normal policy, so a debugged program cannot make a
real-time tracer hold a CPU for long. If the engine looped by mistake inside the window, the kernel's
real-time throttling (`/proc/sys/kernel/sched_rt_runtime_us`, 0.95 s of every second by default)
would still leave the CPU to other tasks; with throttling off (-1) the policy is not used by default.

Allowed when the process may raise itself (root, CAP_SYS_NICE, or RLIMIT_RTPRIO >= 1, sched(7)), runs
at `SCHED_OTHER` (a tracer started under `chrt` keeps its own policy), and the environment does not
say `PTSTUB_NO_REALTIME=1`. Otherwise resumes run at the normal policy and `RealtimePolicy.reason`
says why. Only worth it with more than two threads per CPU, the same rule as the engine's nice boost
(csrc/ptcore_threads.c, boost_begin): with few threads, a tracer that cannot be preempted makes the scheduler
queue the threads it wakes on the other CPU.
"""

from __future__ import annotations

import os

from ptstub.values import frozen

RT_RUNTIME = "/proc/sys/kernel/sched_rt_runtime_us"
# os.cpu_count() reads /sys/devices/system/cpu/online at each call: 3 system calls per resume if asked there
CPUS = os.cpu_count() or 1
PRIORITY = 1  # the lowest real-time priority: above every SCHED_OTHER thread, below any real-time one


@frozen
class RealtimePolicy:
    """Whether resumes of many threads run at SCHED_FIFO, and why not when they do not."""

    enabled: bool
    reason: str

    def wanted(self, threads: int) -> bool:
        """Raise the priority for a resume of `threads` threads?"""
        return self.enabled and threads > 2 * CPUS


def enter() -> bool:
    """Raise the calling thread (sched_setscheduler with pid 0 is the calling thread) to SCHED_FIFO;
    False if the kernel refused (a limit changed since the policy was decided)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except OSError:
        return False
    return True


def leave() -> None:
    """Back to SCHED_OTHER (the policy `decide` found, the only one it raises from)."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def decide(environ: dict[str, str] | None = None) -> RealtimePolicy:
    """Try the raise once, now, and go back: the policy for this process."""
    env = os.environ if environ is None else environ
    if env.get("PTSTUB_NO_REALTIME", "0") not in ("", "0"):
        return RealtimePolicy(False, "PTSTUB_NO_REALTIME is set")
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        return RealtimePolicy(False, "the tracer already runs under another scheduling policy")
    try:
        with open(RT_RUNTIME) as f:
            if int(f.read().split()[0]) < 0:
                return RealtimePolicy(False, "real-time throttling is off (sched_rt_runtime_us = -1)")
    except (OSError, ValueError, IndexError):
        return RealtimePolicy(False, f"{RT_RUNTIME} is not readable")
    if not enter():
        return RealtimePolicy(False, "not permitted (needs root, CAP_SYS_NICE or RLIMIT_RTPRIO >= 1)")
    leave()
    return RealtimePolicy(True, "SCHED_FIFO for resumes of more than two threads per CPU")


_decided: RealtimePolicy | None = None


def policy() -> RealtimePolicy:
    """This process's policy, decided at the first call."""
    global _decided
    if _decided is None:
        _decided = decide()
    return _decided

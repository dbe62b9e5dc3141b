"""Whether the engine may run its resume batches at real-time priority: the policy, decided once per process.

When busy threads outnumber the CPUs, each `PTRACE_CONT` of a resume-all wakes a thread that can
preempt the tracer before it has resumed the rest (docs/kernel-facts.md §7): with 256 threads of which
128 busy, a resume took 60-300 ms on 2 CPUs, against ~5 ms for the same C loop at `SCHED_FIFO`. A
thread at `SCHED_FIFO` is never preempted by `SCHED_OTHER` threads (sched(7)), so it finishes the batch
first and the woken threads then run.

The mechanism is the engine's, one policy for one resume (csrc/ptcore_threads.c, `boost_begin`): for
the loop of `PTRACE_CONT`s of a resume, the tracer thread runs at `SCHED_FIFO` priority 1 where this
policy allows it and the batch is long (more than 64 threads per CPU), else at nice -15 where
permitted (more than two threads per CPU), else as it is, and goes back when the loop ends. Shorter
batches stay off real-time because a breakpoint loop lost hits/s with it: threads that cannot run on
the tracer's CPU until the batch ends reach their next event later.

The loop never sleeps and ends when every thread due is resumed (a few ms for thousands of threads).
The waits, where the tracer may run for a long time handling a stream of events, stay at the normal
policy, so a debugged program cannot make a real-time tracer hold a CPU for long. If the engine looped
by mistake inside the window, the kernel's real-time throttling
(`/proc/sys/kernel/sched_rt_runtime_us`, 0.95 s of every second by default) would still leave the CPU
to other tasks; with throttling off (-1) real-time is not allowed.

Here Python only decides whether real-time is allowed, and `Inferior` tells each engine once
(`pt_set_realtime`). Allowed when the process may raise itself (root, CAP_SYS_NICE, or RLIMIT_RTPRIO
>= 1, sched(7): tried once, here), runs at `SCHED_OTHER` (a tracer started under `chrt` keeps its own
policy), the kernel throttles real-time tasks, and the environment does not say `PTSTUB_NO_REALTIME=1`.
Otherwise `RealtimePolicy.reason` says why, and the engine falls back to the nice boost.
"""

from __future__ import annotations

import os

from ptstub.values import frozen

RT_RUNTIME = "/proc/sys/kernel/sched_rt_runtime_us"
PRIORITY = 1  # the lowest real-time priority (the engine's): above every SCHED_OTHER thread, below any real-time one


@frozen
class RealtimePolicy:
    """Whether the engine may run resume batches of many threads at SCHED_FIFO, and why not when not."""

    enabled: bool
    reason: str


def _may_raise() -> bool:
    """Raise the calling thread (sched_setscheduler with pid 0 is the calling thread) to SCHED_FIFO and
    back to SCHED_OTHER; False if the kernel refused."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(PRIORITY))
    except OSError:
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


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
    if not _may_raise():
        return RealtimePolicy(False, "not permitted (needs root, CAP_SYS_NICE or RLIMIT_RTPRIO >= 1)")
    return RealtimePolicy(True, "SCHED_FIFO for resume batches of more than 64 threads per CPU")


_decided: RealtimePolicy | None = None


def policy() -> RealtimePolicy:
    """This process's policy, decided at the first call."""
    global _decided
    if _decided is None:
        _decided = decide()
    return _decided

"""Non-stop engine entry points (`resume_threads`, `wait_event`, `stop_thread`) on fixtures/nonstop.

An event stops only its own thread; a thread resumed on an inserted breakpoint is stepped over it
with the running threads held (one stop-all) and those threads then run again; a stop request stops
one thread and is reported as `Interrupted`; a thread already stopped reports nothing.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from helpers import launched, task_ids, task_state, time_limit

from ptstub.events import BreakpointHit, Exited, Interrupted, ThreadExited
from ptstub.target import BreakpointKind, ResumeAction, ThreadState

pytestmark = pytest.mark.usefixtures("no_leftover_children")
CONT = ResumeAction()


def counter(inf, address: int) -> int:
    return int.from_bytes(inf.read_memory(address, 8), "little")


def stopped_past(pid: int, pc: int) -> bool:
    """Whether a thread of `pid` sits in a stop, out of any system call, at `pc` (/proc's view)."""
    for tid in task_ids(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if (task_state(pid, tid) or ("",))[0] == "t" and fields[:1] == ["-1"] and int(fields[2], 16) == pc:
            return True
    return False


def running(inf) -> set[int]:
    return {t.tid for t in inf.threads() if t.state is ThreadState.RUNNING}


@time_limit(60)
@pytest.mark.parametrize("stepped", [False, True], ids=["emulated", "stepped"])
def test_breakpoint_stops_one_thread_and_step_over_restarts_the_others(fixture_path, stepped: bool) -> None:
    """A thread resumed on a breakpoint passes it while the others run: the engine carries out the
    instruction itself (a push here), or, with a debug register in use, steps it with the world held."""
    with launched([fixture_path("nonstop"), "--threads", "2", "--hits", "3"], stdout=subprocess.DEVNULL) as inf:
        hit_me = inf.symbol("hit_me")
        counters = inf.symbol("counters")
        inf.insert_breakpoint(hit_me)
        if stepped:  # a watchpoint on code, never written: only there to rule the emulation out
            inf.insert_breakpoint(hit_me + 64, BreakpointKind.WRITE_WATCH, 1)
        inf.resume_threads({inf.pid: CONT})
        event = inf.wait_event(timeout=20)
        assert isinstance(event, BreakpointHit) and event.pc == hit_me, event
        hitter = event.tid
        others = running(inf)
        assert len(others) == 3 and hitter not in others  # main and the two workers kept running
        for tid in others:
            state = task_state(inf.pid, tid)
            assert state is not None and state[0] != "t", (tid, state)  # not in a ptrace stop
        before = counter(inf, counters)
        stops = inf.stats["stops"]

        emulated = inf.stats["emulated_step_overs"]
        inf.resume_threads({hitter: CONT})  # on the inserted breakpoint: passed without a stop, or stepped
        assert inf.stats["stops"] == stops + stepped  # over with the world held
        assert inf.stats["emulated_step_overs"] == emulated + (not stepped)
        assert running(inf) == others | {hitter}  # the held threads run again
        event = inf.wait_event(timeout=20)
        assert event == BreakpointHit(hitter, hit_me)
        assert counter(inf, counters) >= before + 5  # the workers ran between the two hits

        worker = max(others - {inf.pid})
        assert inf.stop_thread(worker)
        event = inf.wait_event(timeout=20)
        assert isinstance(event, Interrupted) and event.tid == worker, event
        assert not inf.stop_thread(worker)  # already stopped: nothing more is reported
        assert running(inf) == others - {worker}

        inf.remove_breakpoint(hit_me)
        inf.resume_threads({worker: CONT, hitter: CONT})
        event = inf.wait_event(timeout=20)
        assert event == Exited(inf.pid, 0), event


@time_limit(60)
def test_interrupt_stops_each_running_thread(fixture_path) -> None:
    with launched([fixture_path("nonstop"), "--threads", "3", "--hits", "1000"], stdout=subprocess.DEVNULL) as inf:
        inf.insert_breakpoint(inf.symbol("hit_me"))
        inf.resume_threads({inf.pid: CONT})
        event = inf.wait_event(timeout=20)
        assert isinstance(event, BreakpointHit)
        others = running(inf)
        inf.interrupt()
        seen = set()
        while seen != others:
            event = inf.wait_event(timeout=20)
            assert isinstance(event, Interrupted), event
            seen.add(event.tid)
        assert running(inf) == set()
        assert inf.wait_event(timeout=0) is None  # nothing runs, nothing pending


@time_limit(60)
def test_hit_of_a_breakpoint_removed_before_its_trap_is_collected_is_not_reported(fixture_path) -> None:
    """Non-stop: a thread runs into an int3 and the breakpoint is removed before the engine collects
    the trap (GDB deletes breakpoints while threads run). The thread goes on from the original
    instruction and nothing is reported; it used to be reported as a SIGTRAP one byte past the
    breakpoint (gdb.threads/detach-step-over.exp, non-stop: "Thread 2.11 received signal SIGTRAP"
    after `delete breakpoints`)."""
    with launched([fixture_path("nonstop"), "--threads", "2", "--hits", "3"], stdout=subprocess.DEVNULL) as inf:
        hit_me = inf.symbol("hit_me")
        inf.insert_breakpoint(hit_me)
        inf.resume_threads({inf.pid: CONT})
        first = inf.wait_event(timeout=20)  # every thread has started by the first hit
        assert first == BreakpointHit(first.tid, hit_me), first
        inf.resume_threads({first.tid: CONT})  # its second call traps with no engine call to collect it
        deadline = time.monotonic() + 20
        while not stopped_past(inf.pid, hit_me + 1) and time.monotonic() < deadline:
            time.sleep(0.001)  # polled in /proc: the engine must not collect the trap meanwhile
        assert stopped_past(inf.pid, hit_me + 1), "no thread stopped at the breakpoint"
        inf.remove_breakpoint(hit_me)
        event = inf.wait_event(timeout=20)
        assert event == Exited(inf.pid, 0), event  # the hitter went on, its three calls done
        assert inf.stats["stale_stops"] >= 1


@time_limit(90)
def test_stop_request_answered_when_a_clone_event_takes_the_interrupt(fixture_path) -> None:
    """A stop request (vCont;t, vCtrlC) whose PTRACE_INTERRUPT reaches a thread just before another
    ptrace-stop of it (here its clone events: the spawners of fixtures/churn create threads all the
    time) is consumed by that stop: the kernel clears the pending STOP trap at any ptrace-stop, so
    no PTRACE_EVENT_STOP follows. The engine resumed the thread after the clone and the stop GDB
    asked for never came (a vCtrlC right after `vCont;c` was lost in about 1 of 20 runs). Every
    request must be answered: by the thread's stop, or by its end (thread exits reported here)."""
    with launched(
        [fixture_path("churn"), "--spawners", "4", "--iterations", "1000000"], stdout=subprocess.DEVNULL
    ) as inf:
        inf.set_options(thread_exits=True)
        inf.resume_threads({inf.pid: CONT})
        for _ in range(60):
            asked = running(inf)
            inf.interrupt()
            deadline = time.monotonic() + 10  # the threads born meanwhile keep reporting their ends
            while asked:
                event = inf.wait_event(timeout=10)
                assert event is not None and time.monotonic() < deadline, (
                    f"no stop came for threads {sorted(asked)} asked to stop"
                )
                assert isinstance(event, Interrupted | ThreadExited), event
                asked.discard(event.tid)
            stopped = [t.tid for t in inf.threads() if t.state is ThreadState.STOPPED]
            inf.resume_threads(dict.fromkeys(stopped, CONT))

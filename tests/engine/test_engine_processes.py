"""Several processes served together: a fork child adopted as an engine of its own, put in
its parent's process group (pt_join_group), resumed and waited for with the parent by the group's one
waiter (ptstub.linux.group over csrc/ptcore_waiter.c).

The waiter's waitpid(-1) collects statuses of every process's threads: they must reach their owner
(hand_to_member), and an event of a process other than the one waited in must end the wait with
every process stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers import launched

import ptstub
from ptstub.events import BreakpointHit, Exited, Forked, Killed
from ptstub.linux.group import LinuxProcessGroup
from ptstub.target import ResumeAction, ResumeKind, ThreadState

CONTINUE = ResumeAction(ResumeKind.CONTINUE)
GROUP = LinuxProcessGroup()
resume_processes, wait_processes = GROUP.resume, GROUP.wait


def _fork_child(inf: ptstub.Inferior) -> ptstub.Inferior:
    """Run to the fork of `simple --fork`; the child adopted and linked to the parent."""
    inf.set_options(fork_events=True)
    inf.set_pass_signals({signal.SIGCHLD})  # as GDB passes it: the parent's SIGCHLD is not an event
    event = inf.cont(timeout=20)
    assert isinstance(event, Forked), event
    child = inf.adopt_fork_child(event.child_pid)
    GROUP.join(inf, child)
    return child


def _all(inf: ptstub.Inferior) -> dict[int, ResumeAction]:
    return dict.fromkeys(inf.thread_ids(), CONTINUE)


@pytest.mark.timeout(60, method="thread")
def test_event_of_the_process_not_waited_on_ends_the_wait_with_both_stopped(fixture_path) -> None:
    """The parent waits in waitpid() for the child; the wait sleeps in the parent's engine, so the
    child's exit is collected there and handed to the child's engine; the parent is held."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        with child:
            running = resume_processes([(parent, _all(parent)), (child, _all(child))])
            assert running == [parent, child]
            found = wait_processes(running, [parent, child], None)
            assert found is not None
            process, event = found
            assert process is child and event == Exited(child.pid, 7)
            assert parent.alive
            assert all(t.state is ThreadState.STOPPED for t in parent.threads())  # all-stop over processes
            running = resume_processes([(parent, _all(parent))])
            found = wait_processes(running, [parent], None)
            assert found is not None and found[1] == Exited(parent.pid, 0)


@pytest.mark.timeout(60, method="thread")
def test_waiting_on_the_child_sees_the_parent_exit_after_it(fixture_path) -> None:
    """The same with the child's engine first in the list (it waits): the child's exit is collected
    first, and the parent (which waited for it) may end too while it is being stopped: then both exits
    are pending and either is reported first (the engine picks among pending events); the other
    follows at the next resume, each exactly once with its code."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        with child:
            running = resume_processes([(child, _all(child)), (parent, _all(parent))])
            found = wait_processes(running, [parent, child], None)
            assert found is not None
            expected = {child: Exited(child.pid, 7), parent: Exited(parent.pid, 0)}
            first, event = found
            assert event == expected.pop(first)
            ((other, other_exit),) = expected.items()
            found = wait_processes(resume_processes([(other, _all(other))]), [other], None)
            assert found is not None and found == (other, other_exit)


@pytest.mark.timeout(60, method="thread")
def test_held_child_runs_alone_then_parent_alone(fixture_path) -> None:
    """GDB's default (schedule-multiple off): one process runs while the other stays stopped."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        with child:
            found = wait_processes(resume_processes([(child, _all(child))]), [parent, child], None)
            assert found is not None and found[1] == Exited(child.pid, 7)
            assert all(t.state is ThreadState.STOPPED for t in parent.threads())
            event = parent.cont(timeout=20)
            assert event == Exited(parent.pid, 0)


@pytest.mark.timeout(60, method="thread")
def test_non_stop_wait_over_both_processes_reports_each_end_once(fixture_path) -> None:
    """Non-stop over two processes (pt_group_next_event): every thread of both runs; the waiter
    reports the child's exit and the parent's, each exactly once, whichever process it looks at
    first; then nothing is left to wait for (None)."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        with child:
            parent.resume_threads(_all(parent))
            child.resume_threads(_all(child))
            read_end, write_end = os.pipe()  # GDB's socket stand-in: never readable
            try:
                ends = {}
                for first in range(10):
                    processes = [p for p in (parent, child) if p.alive or p.ended]
                    found = GROUP.next_event(processes, read_end, first)
                    if found is None:
                        break
                    process, event = found
                    assert isinstance(event, Exited) and process not in ends, event
                    ends[process] = event
                assert ends == {child: Exited(child.pid, 7), parent: Exited(parent.pid, 0)}
            finally:
                os.close(read_end)
                os.close(write_end)


@pytest.mark.timeout(60, method="thread")
def test_a_freed_engine_leaves_the_ring(fixture_path) -> None:
    """Closing the child (killed) unlinks its engine: the parent waits alone afterwards."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        child.close()  # a launched program's child is killed, its engine freed and unlinked
        assert ptstub.linux.ffi.lib.pt_group_size(parent._e) == 1
        assert parent.cont(timeout=20) == Exited(parent.pid, 0)


@pytest.mark.timeout(120, method="thread")
def test_vfork_child_run_alone_reports_its_exit_every_time(fixture_path) -> None:
    """The vfork child's leader showed as a zombie before waitpid had its status (its parent is not
    the tracer); taken for a zombie leader with held threads, the wait answered "nothing running"
    (GDB: `N`) in about one run of six (foll-vfork.exp "vfork child follow, to exit")."""
    for _ in range(20):
        with ptstub.launch([fixture_path("simple"), "--vfork", "--iterations", "0"]) as parent:
            child = _fork_child(parent)
            with child:
                found = wait_processes(resume_processes([(child, _all(child))]), [parent, child], None)
                assert found is not None and found[1] == Exited(child.pid, 7)


@pytest.mark.timeout(120, method="thread")
def test_child_detached_while_its_threads_end_it_lets_every_thread_go(fixture_path) -> None:
    """gdb.threads/process-dies-while-detaching.exp at the engine: the fork child's 1000 threads are
    all stopped at the breakpoint on `leave()` (which calls _exit), and the child is detached. The
    first threads let go end the process (exit_group), and SIGKILL takes the threads not yet let go
    out of their stop, so their PTRACE_DETACH fails; left traced, they wait in their exit stop for
    ever, and the parent, waiting for the child, never ends. The race needs a thread let go to end
    the process before the detach is done: runs go on (up to a minute) until one detach met it."""
    deadline = time.monotonic() + 60
    late = 0
    while not late and time.monotonic() < deadline:
        with launched([fixture_path("dies_detaching"), "1000"], stdout=subprocess.DEVNULL) as parent:
            child = _fork_child(parent)
            with child:
                child.insert_breakpoint(child.symbol("leave"))
                assert isinstance(child.cont(timeout=60), BreakpointHit)
                child.detach()
                late = child.stats["late_detaches"]
            assert parent.cont(timeout=20) == Exited(parent.pid, 0), f"the child did not end ({late} let go late)"
    if not late:
        pytest.skip("no detach met the process's end in a minute")


@pytest.mark.timeout(60, method="thread")
def test_held_child_killed_from_outside_does_not_hang_its_waiting_parent(fixture_path) -> None:
    """The fork child is held (only the parent resumed, GDB's schedule-multiple off) and SIGKILLed
    from outside while the parent waits for it in waitpid(). Held at its PTRACE_EVENT_EXIT stop, the
    child never became a zombie and the parent's wait never returned (a hang). The child's end is
    reported, then the parent runs to its own."""
    with ptstub.launch([fixture_path("simple"), "--fork", "--iterations", "1"]) as parent:
        child = _fork_child(parent)
        with child:
            os.kill(child.pid, signal.SIGKILL)
            found = wait_processes(resume_processes([(parent, _all(parent))]), [parent, child], None)
            assert found == (child, Killed(child.pid, signal.SIGKILL))
            found = wait_processes(resume_processes([(parent, _all(parent))]), [parent], None)
            assert found == (parent, Exited(parent.pid, 0))

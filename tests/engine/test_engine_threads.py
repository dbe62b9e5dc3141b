"""Thread life cycle under all-stop (docs/kernel-facts.md §2.7).

Threads created and exiting continuously never escape a stop and never confuse the thread table;
exec from a non-leader thread (the exec'ing thread takes over the leader's tid) and a leader that exits
before the other threads are both handled.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import launched, parse_report, run_breakpoints, time_limit, unstopped_threads

from ptstub.errors import NoSuchThreadError
from ptstub.events import BreakpointHit, Exec, Exited

pytestmark = pytest.mark.usefixtures("no_leftover_children")


@time_limit(90)
def test_thread_churn_never_escapes_a_stop(fixture_path, tmp_path) -> None:
    spawners, iterations, batch = 4, 150, 2  # 1,200 short-lived threads, each hitting once
    argv = [fixture_path("churn"), "--spawners", str(spawners), "--iterations", str(iterations), "--batch", str(batch)]
    out_path = tmp_path / "churn.out"
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        result = run_breakpoints(inf, ["hit_target"], check_stopped_every=1, check_thread_table=True)
    report = parse_report(out_path.read_text())
    assert isinstance(result.end, Exited) and result.end.code == 0, f"{result.end!r}\n{report.text[-500:]}"
    assert len(report.counts) == spawners * iterations * batch
    missed = {key: n for key, n in report.counts.items() if result.hits[key] != n}
    extra = {key: n for key, n in result.hits.items() if key not in report.counts}
    assert not missed and not extra, f"hits not reported: {missed}; hits from unknown threads: {extra}"


@time_limit(30)
def test_exec_from_non_leader_thread(fixture_path, tmp_path) -> None:
    program = fixture_path("exec_nonleader")
    out_path = tmp_path / "exec.out"
    with open(out_path, "wb") as out, launched([program, "--threads", "3"], stdout=out) as inf:
        pid = inf.pid
        before_exec = inf.symbol("before_exec")
        inf.insert_breakpoint(before_exec)
        event = inf.cont()
        assert isinstance(event, BreakpointHit) and event.pc == before_exec and event.tid != pid, event
        execer = event.tid
        assert len(inf.threads()) == 4, inf.threads()

        event = inf.cont()
        assert isinstance(event, Exec), f"expected the exec to be reported, got {event!r}"
        assert event.tid == pid, f"after exec the thread is the leader {pid}, reported {event.tid}"
        assert os.path.realpath(event.path) == os.path.realpath(program)
        assert [t.tid for t in inf.threads()] == [pid]
        assert unstopped_threads(pid) == []
        with pytest.raises(NoSuchThreadError):
            inf.get_regs(execer)  # its tid died with the old image (the exec'ing thread became `pid`)

        hit_target = inf.symbol("hit_target")  # re-resolved in the new image
        inf.insert_breakpoint(hit_target)
        event = inf.cont()
        assert event == BreakpointHit(pid, hit_target), event
        event = inf.cont()
        assert event == Exited(pid, 0), event
    text = out_path.read_text()
    assert f"exec-from: {execer}\n" in text and "exec-ok\n" in text, text
    assert parse_report(text).counts == {("hit_target", pid): 1}


@time_limit(30)
def test_step_over_a_breakpoint_on_the_execve_instruction_of_a_non_leader(fixture_path, tmp_path) -> None:
    """A thread resumed on a breakpoint that sits on its `syscall` instruction of execve is stepped over
    it with the world held, and the exec kills the held threads: the kernel waits until each has left
    its PTRACE_EVENT_EXIT stop. The engine waited for the stepping thread alone, and both hung for ever
    (gdb.threads/step-over-exec.exp, a breakpoint `if 0` on the execve syscall: a timeout where
    gdbserver fails an assertion)."""
    program = fixture_path("exec_nonleader")
    out_path = tmp_path / "exec.out"
    with open(out_path, "wb") as out, launched([program, "--threads", "3", "--raw-exec"], stdout=out) as inf:
        pid = inf.pid
        syscall_insn = inf.symbol("raw_execve_syscall")
        inf.insert_breakpoint(syscall_insn)
        event = inf.cont()
        assert isinstance(event, BreakpointHit) and event.pc == syscall_insn and event.tid != pid, event
        event = inf.cont(timeout=10)  # resumed on the int3: stepped over it, into the exec
        assert isinstance(event, Exec) and event.tid == pid, event
        assert [t.tid for t in inf.threads()] == [pid]
        event = inf.cont()
        assert event == Exited(pid, 0), event
    assert "exec-ok\n" in out_path.read_text()


@time_limit(60)
def test_leader_exits_before_the_other_threads(fixture_path, tmp_path) -> None:
    threads, calls = 4, 300
    argv = [fixture_path("leader_exit"), "--threads", str(threads), "--calls", str(calls)]
    out_path = tmp_path / "leader.out"
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        pid = inf.pid
        result = run_breakpoints(inf, ["hit_target"], check_stopped_every=1, check_thread_table=True)
    report = parse_report(out_path.read_text())
    assert result.end == Exited(pid, 0), f"{result.end!r}\n{report.text}"
    assert "leader-exited\n" in report.text
    assert set(report.counts.values()) == {calls} and len(report.counts) == threads, report.text
    assert result.hits == report.counts
    assert all(tid != pid for _, tid in result.hits)


def _open_comm_tids(pid: int) -> set[int]:
    """Threads of `pid` whose /proc comm file this (test) process holds open."""
    tids = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        parts = path.split("/")
        if len(parts) == 6 and parts[1:3] == ["proc", str(pid)] and parts[3] == "task" and parts[5] == "comm":
            tids.add(int(parts[4]))
    return tids


@time_limit(60)
def test_thread_name_descriptors_follow_the_thread_list(fixture_path) -> None:
    """Names are read through one comm descriptor kept per thread (a pread per stop): a descriptor of a
    thread that exited is closed once the list no longer has it, and none is left after close()."""
    argv = [fixture_path("churn"), "--spawners", "2", "--iterations", "40", "--batch", "2"]
    with launched(argv, stdout=subprocess.DEVNULL) as inf:
        pid = inf.pid
        inf.insert_breakpoint(inf.symbol("hit_target"))
        stops = 0
        while not isinstance(event := inf.cont(timeout=20), Exited):
            assert isinstance(event, BreakpointHit), event
            listed = {t.tid: t.name for t in inf.threads()}
            assert all(listed.values()), f"a live thread has no name: {listed}"
            assert _open_comm_tids(pid) <= set(listed), "a descriptor outlived its thread"
            stops += 1
        assert stops == 2 * 40 * 2
    assert not _open_comm_tids(pid), "comm descriptors left open after close()"

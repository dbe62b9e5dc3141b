"""`--stub` mode: the same scenario through /usr/bin/gdb against GNU gdbserver and ptstub's own server.

gdbserver stops every thread (the frozen counter holds) but leaks EINTR into a main thread blocked in
epoll_wait (docs/kernel-facts.md §3); the harness must pass the first run and report the second. ptstub's server
must pass both. (qemu-user, which does not stop other threads, is in test_stress_faults.py.)
"""

from __future__ import annotations

import shutil
import sys

import pytest

from ptstub.stress import StressConfig, ViolationKind, run_stress

GDBSERVER = "gdbserver 127.0.0.1:{port} {prog} {args}"
PTSTUB = f"{sys.executable} -m ptstub 127.0.0.1:{{port}} {{prog}} {{args}}"
CHURN_IDLE = ("--churn", "2", "--idle", "64")  # 2 spawners of one-hit threads, 64 threads in read()
needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
needs_gdbserver = pytest.mark.skipif(shutil.which("gdbserver") is None, reason="gdbserver is not installed")


def stub_run(programs, stub: str, syscall: str, threads: int = 2, calls: int = 60, extra: tuple[str, ...] = ()):
    argv = (
        programs.bundled,
        "--threads",
        str(threads),
        "--calls",
        str(calls),
        "--syscall",
        syscall,
        "--duration-ms",
        "100",
        *extra,
    )
    return run_stress(
        StressConfig(argv=argv, breaks=("hit_target",), frozen=("frozen_counter",), stub=stub, timeout=30)
    )


@needs_gdb
@needs_gdbserver
@pytest.mark.timeout(120)
def test_gdbserver_keeps_all_stop(programs) -> None:
    report = stub_run(programs, GDBSERVER, "nanosleep")

    assert report.passed, report.summary()
    assert report.mode == "stub" and report.hits == 120 and report.hits_per_s > 0
    assert all(row.hits == row.program_count == 60 for row in report.threads)


@needs_gdb
@needs_gdbserver
@pytest.mark.timeout(120)
def test_gdbserver_eintr_leak_is_reported(programs) -> None:
    report = stub_run(programs, GDBSERVER, "epoll_wait")

    assert not report.passed
    assert report.total(ViolationKind.EINTR) == 1
    assert report.total(ViolationKind.FROZEN) == 0 and report.total(ViolationKind.HIT_COUNT) == 0
    assert report.syscalls[0].result.startswith("eintr=")
    assert "epoll_wait returned EINTR" in report.summary()


@needs_gdb
@pytest.mark.timeout(120)
@pytest.mark.parametrize("syscall", ["nanosleep", "epoll_wait"])
def test_ptstub_server_passes(programs, syscall: str) -> None:
    report = stub_run(programs, PTSTUB, syscall)

    assert report.passed, report.summary()
    assert report.hits == 120
    assert all(row.hits == row.program_count == 60 for row in report.threads)


@needs_gdb
@needs_gdbserver
@pytest.mark.timeout(120)
def test_hang_through_a_stub_is_a_deadlock_with_a_dump(programs) -> None:
    report = run_stress(
        StressConfig(argv=(programs["hang"], "--calls", "2"), breaks=("hit_target",), stub=GDBSERVER, timeout=2)
    )

    assert report.total(ViolationKind.DEADLOCK) == 1, report.summary()
    assert report.end.how == "killed-by-harness"
    assert len(report.dump) == 3 and all(d.tid > 0 and d.state for d in report.dump)
    assert sum(1 for d in report.dump if d.syscall == "futex") >= 2  # the two threads deadlocked on mutexes


@needs_gdb
@pytest.mark.timeout(120)
@pytest.mark.parametrize("stub", ["gdbserver", "ptstub"])
def test_churn_and_idle_through_the_stub(programs, stub: str) -> None:
    if stub == "gdbserver" and shutil.which("gdbserver") is None:
        pytest.skip("gdbserver is not installed")
    report = stub_run(programs, GDBSERVER if stub == "gdbserver" else PTSTUB, "nanosleep", extra=CHURN_IDLE)

    assert report.passed, report.summary()
    assert report.counts == "exact"
    workers = [row for row in report.threads if not row.short_lived]
    assert [(row.hits, row.program_count) for row in workers] == [(60, 60)] * 2
    assert report.churn is not None and report.churn.threads >= 1
    assert report.churn.hits == report.churn.program_count >= 2  # at least one thread per spawner
    assert report.hits == 120 + report.churn.hits
    assert report.fairness is not None and (report.fairness.threads, report.fairness.jain) == (2, 1.0)
    assert ("idle-read", "ok") in [(s.name, s.result) for s in report.syscalls]

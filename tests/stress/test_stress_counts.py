"""The engine face on the fixtures/ stress program: the hits seen equal the program's own counts.

For 1, 4 and 16 worker threads and every long blocking call of fixtures/README.md (docs/kernel-facts.md §3) in
the main thread, with `frozen_counter` read twice at every stop: every invariant must hold, the
per-thread hits must equal the `ptstub-count:` lines exactly and the syscall must report `ok`.
Call counts are small so the whole matrix runs in seconds; timed kinds sleep 150 ms.
"""

from __future__ import annotations

import pytest

from ptstub.stress import StressConfig, ViolationKind, run_stress

SYSCALL_KINDS = (
    "nanosleep",
    "clock_nanosleep",
    "poll-sleep",
    "select-sleep",
    "epoll_wait-sleep",
    "sigtimedwait-sleep",
    "read",
    "futex",
    "cond",
    "poll",
    "poll-timeout",
    "select",
    "accept",
    "accept-timeout",
    "epoll_wait",
    "sigtimedwait",
    "recv-timeout",
    "none",
)
CALLS = {1: 150, 4: 40, 16: 10}  # per worker: 150-160 hits per run


@pytest.mark.timeout(60)
@pytest.mark.parametrize("threads", sorted(CALLS))
@pytest.mark.parametrize("kind", SYSCALL_KINDS)
def test_hits_equal_program_counts(programs, threads: int, kind: str) -> None:
    argv = (
        programs["stress"],
        "--threads",
        str(threads),
        "--calls",
        str(CALLS[threads]),
        "--syscall",
        kind,
        "--duration-ms",
        "150",
    )
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target",), frozen=("frozen_counter",), timeout=5))

    assert report.passed, report.summary()
    assert report.counts == "exact"
    assert [row.hits for row in report.threads] == [CALLS[threads]] * threads
    assert all(row.hits == row.program_count for row in report.threads)
    assert report.hits == threads * CALLS[threads]
    assert [(s.name, s.result) for s in report.syscalls] == [(kind, "ok")]
    assert report.end.how == "exited" and report.end.code == 0
    assert report.total(ViolationKind.FROZEN) == 0


@pytest.mark.timeout(60)
def test_two_breakpoints_are_counted_apart(programs) -> None:
    argv = (programs["stress"], "--threads", "3", "--calls", "30", "--syscall", "futex", "--two-functions")
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target", "hit_other"), timeout=20))

    assert report.passed, report.summary()
    assert sorted({row.function for row in report.threads}) == ["hit_other", "hit_target"]
    assert all(row.hits == row.program_count == 30 for row in report.threads)
    assert report.fairness is not None and report.fairness.threads == 6


@pytest.mark.timeout(60)
def test_hit_budget_ends_the_run_and_lets_the_program_finish(programs) -> None:
    argv = (programs["stress"], "--threads", "4", "--calls", "200", "--syscall", "read")
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target",), hits=100, seed=7, timeout=20))

    assert report.passed, report.summary()
    assert report.hits == 100
    assert report.counts == "at-most"
    assert report.end.how == "exited" and report.end.code == 0
    assert report.latency is not None and report.latency.samples >= 1
    assert report.fairness is not None and 0 < report.fairness.jain <= 1


@pytest.mark.timeout(60)
def test_duration_budget_ends_the_run(programs) -> None:
    argv = (programs["stress"], "--threads", "2", "--calls", "100000", "--syscall", "futex")
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target",), duration=0.3, timeout=5))

    assert report.total(ViolationKind.DEADLOCK) == 0
    assert report.hits > 0
    assert report.counts == "at-most"
    assert report.total(ViolationKind.HIT_COUNT) == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["epoll_wait", "nanosleep"])
def test_churn_and_idle_threads_keep_counts_exact(programs, kind: str) -> None:
    # 3 workers x 150 calls, 2 spawners turning threads over (each hits once) until the workers are
    # done, 64 threads in read() throughout: every hit of every thread, born or dying, is counted
    argv = (programs["stress"], "--threads", "3", "--calls", "150", "--syscall", kind, "--duration-ms", "150")
    argv += ("--churn", "2", "--idle", "64")
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target",), frozen=("frozen_counter",), timeout=10))

    assert report.passed, report.summary()
    assert report.counts == "exact"
    workers = [row for row in report.threads if not row.short_lived]
    churned = [row for row in report.threads if row.short_lived]
    assert [(row.hits, row.program_count) for row in workers] == [(150, 150)] * 3
    assert churned and all(row.hits == row.program_count >= 1 for row in churned)
    assert report.churn is not None and report.churn.threads == len(churned)
    assert report.churn.hits == report.churn.program_count == sum(row.hits for row in churned) >= 2  # 1+ per spawner
    assert report.hits == 450 + report.churn.hits
    # fairness over the 3 workers only: with the one-hit threads in, the index would be far below 1
    assert report.fairness is not None and (report.fairness.threads, report.fairness.jain) == (3, 1.0)
    assert [(s.name, s.result) for s in report.syscalls] == [(kind, "ok"), ("idle-read", "ok")]
    assert report.end.how == "exited" and report.end.code == 0
    samples = report.latency.samples if report.latency else 0
    samples += report.churn_latency.samples if report.churn_latency else 0
    assert 0 < samples <= report.stops


@pytest.mark.timeout(60)
def test_churn_with_a_hit_budget_compares_at_most(programs) -> None:
    argv = (programs["stress"], "--threads", "2", "--calls", "2000", "--syscall", "futex", "--churn", "3")
    report = run_stress(StressConfig(argv=argv, breaks=("hit_target",), hits=300, timeout=10))

    assert report.passed, report.summary()
    assert report.hits == 300 and report.counts == "at-most"
    assert report.churn is not None and report.churn.program_count is not None
    assert report.churn.hits <= report.churn.program_count
    assert report.end.how == "exited" and report.end.code == 0

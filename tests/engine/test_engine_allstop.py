"""All-stop under breakpoint load on fixtures/stress.

With a breakpoint on hit_target and `cont()` in a loop: every call is reported (exact count per thread,
against the fixture's own `ptstub-count:` lines), the counter thread's `frozen_counter` never changes
between two reads in one stop, and the main thread's one long blocking call completes normally with no
EINTR and no short sleep (docs/kernel-facts.md §3), whatever call it is.
"""

from __future__ import annotations

from collections import Counter

import pytest
from helpers import FixtureReport, RunResult, launched, parse_report, run_breakpoints, time_limit

from ptstub.events import Exited

pytestmark = pytest.mark.usefixtures("no_leftover_children")

RESTART_SYSCALL = 219  # what orig_rax shows once a call was restarted through its restart block
# The x86-64 syscalls the main thread may be blocked in, per `--syscall` kind (glibc may use either).
MAIN_SYSCALLS = {
    "nanosleep": {35, 230},
    "clock_nanosleep": {230},
    "poll-sleep": {7, 271},
    "select-sleep": {23, 270},
    "epoll_wait-sleep": {232, 281, 441},
    "sigtimedwait-sleep": {128},
    "read": {0},
    "futex": {202},
    "cond": {202},
    "poll": {7, 271},
    "poll-timeout": {7, 271},
    "select": {23, 270},
    "accept": {43, 288},
    "accept-timeout": {43, 288},
    "epoll_wait": {232, 281, 441},
    "sigtimedwait": {128},
    "recv-timeout": {45, 47},
}
REQUIRED_KINDS = [
    "nanosleep",
    "clock_nanosleep",
    "read",
    "futex",
    "poll",
    "select",
    "accept",
    "epoll_wait",
    "sigtimedwait",
]
# docs/kernel-facts.md §3's other cases: EINTR-returning socket timeouts, timed EINTR-returning waits, glibc cond.
EXTRA_KINDS = [
    "cond",
    "poll-timeout",
    "accept-timeout",
    "recv-timeout",
    "poll-sleep",
    "select-sleep",
    "epoll_wait-sleep",
    "sigtimedwait-sleep",
]
TIMED_KINDS = {"nanosleep", "clock_nanosleep", "poll-sleep", "select-sleep", "epoll_wait-sleep", "sigtimedwait-sleep"}


def run_stress(
    fixture_path,
    tmp_path,
    threads: int,
    calls: int,
    kind: str,
    *,
    duration_ms: int = 1000,
    two_functions: bool = False,
    check_stopped_every: int = 0,
) -> tuple[RunResult, FixtureReport]:
    options = f"--threads {threads} --calls {calls} --syscall {kind} --duration-ms {duration_ms}".split()
    argv = [fixture_path("stress"), *options] + (["--two-functions"] if two_functions else [])
    symbols = ["hit_target", "hit_other"] if two_functions else ["hit_target"]
    out_path = tmp_path / "stress.out"
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        syscalls = frozenset(MAIN_SYSCALLS.get(kind, set()) | {RESTART_SYSCALL})
        result = run_breakpoints(
            inf, symbols, frozen="frozen_counter", main_syscalls=syscalls, check_stopped_every=check_stopped_every
        )
    return result, parse_report(out_path.read_text())


def check_every_call_reported(
    result: RunResult, report: FixtureReport, threads: int, calls: int, symbols: tuple[str, ...] = ("hit_target",)
) -> None:
    tail = report.text[-600:]
    assert isinstance(result.end, Exited) and result.end.code == 0, f"ended with {result.end!r}; output:\n{tail}"
    printed = Counter({key: n for key, n in report.counts.items() if key[0] in symbols})
    assert len({tid for _, tid in printed}) == threads, f"fixture printed counts for other threads:\n{tail}"
    assert set(printed.values()) == {calls}, f"the fixture's own counts are off:\n{tail}"
    if result.hits != printed:
        differences = {
            key: (result.hits[key], printed[key])
            for key in printed.keys() | result.hits.keys()
            if result.hits[key] != printed[key]
        }
        pytest.fail(f"reported hits differ from the fixture's counts, (symbol, tid): (reported, called): {differences}")
    assert "frozen_counter" in report.frozen
    assert len(set(result.frozen_values)) > 1, "frozen_counter never moved: the counter thread did not run"


@time_limit(120)
def test_every_call_reported_8_threads_2000_calls(fixture_path, tmp_path) -> None:
    result, report = run_stress(fixture_path, tmp_path, 8, 2000, "read", check_stopped_every=10)
    check_every_call_reported(result, report, 8, 2000)
    assert report.syscall == ("read", "ok")
    assert result.main_in_syscall >= 0.9 * result.stops, (
        f"the main thread was in read() at only {result.main_in_syscall} of {result.stops} stops"
    )


@time_limit(60)
@pytest.mark.parametrize("kind", REQUIRED_KINDS + EXTRA_KINDS)
def test_main_thread_syscall_never_disturbed(fixture_path, tmp_path, kind: str) -> None:
    threads, calls = 4, 300  # 1,200 stops, each of which interrupts the main thread's call
    result, report = run_stress(fixture_path, tmp_path, threads, calls, kind, check_stopped_every=25)
    check_every_call_reported(result, report, threads, calls)
    assert result.stops >= 1000
    assert report.syscall == (kind, "ok"), f"the program saw its {kind} call disturbed: {report.syscall}"
    # The test only means something if the main thread really sat in the call while we stopped it.
    # At most stops it does; a stop that comes while it re-enters the call after the last one (or
    # between two timeouts of accept-timeout) finds it outside: 1,026 and 1,075 of 1,200 were seen
    # on a loaded 2-CPU machine (CI), 1,150-1,200 on a quiet one.
    wanted = 100 if kind in TIMED_KINDS else 0.75 * result.stops
    assert result.main_in_syscall >= wanted, (
        f"the main thread was inside {kind} at only {result.main_in_syscall} of {result.stops} stops"
    )


@time_limit(60)
def test_two_breakpointed_functions(fixture_path, tmp_path) -> None:
    result, report = run_stress(fixture_path, tmp_path, 4, 500, "futex", two_functions=True, check_stopped_every=25)
    check_every_call_reported(result, report, 4, 500, symbols=("hit_target", "hit_other"))
    assert report.syscall == ("futex", "ok")


@time_limit(60)
@pytest.mark.parametrize("kind", ["epoll_wait-sleep", "sigtimedwait-sleep"])
def test_timed_wait_not_lengthened_by_stops(fixture_path, tmp_path, kind: str) -> None:
    """A timed wait restarted after each stop must end at its original deadline, not later.

    4 x 1,000 hits keep stopping the main thread for much of its 1 s wait, so a restart with the full
    timeout at each stop ends it after 1.7-2.1 s; a restart with the time left ends it at ~1 s (the
    bound leaves room for a loaded 2-CPU machine, where the last stop alone can take 0.2 s).
    """
    duration_ms = 1000
    result, report = run_stress(fixture_path, tmp_path, 4, 1000, kind, duration_ms=duration_ms)
    assert report.syscall == (kind, "ok")
    assert result.main_in_syscall >= 100
    elapsed = report.elapsed_ms
    assert elapsed is not None and elapsed < duration_ms * 1.4, (
        f"a {duration_ms} ms {kind} took {elapsed} ms across {result.main_in_syscall} stops"
    )

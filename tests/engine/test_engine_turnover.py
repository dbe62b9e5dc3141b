"""Thread turnover around a steady breakpoint (fixtures/turnover): the engine stays live and exact.

Fifty spawner threads create and join short-lived threads without pause while the main thread calls
`hit_target` every 500 µs. Each new thread costs the tracer a clone event, a first stop, an exit stop
and an exit status, so the statuses never stop coming, tids are handed out fast (with pid_max at
32,768 they are reused within seconds), and new threads are born at every moment of a stop-all.

What must hold:
- liveness: the next hit comes within HIT_WITHIN of the previous one, run after run. The program reaches
  `hit_target` every 500 µs; an engine busy with the churn's statuses kept a hit waiting for seconds, and
  a thread reusing a dead thread's tid was left stopped, unknown, for ever (its joiner, then main, hung);
- every hit is reported, from the main thread, with every thread of the process stopped and known;
- after a detach in the middle of the churn no thread is stopped or traced, and the program ends well.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from helpers import check_released, launched, parse_report, run_breakpoints, time_limit

from ptstub.events import BreakpointHit, Exited

pytestmark = pytest.mark.usefixtures("no_leftover_children")

SPAWNERS = 50
RUNS = 50
CALLS = 10
# The program calls hit_target every 500 µs. A reported hit takes the engine well under 0.2 s on a
# loaded 2-CPU machine; before the drain was batched, waits of 1-7 s were common under this churn.
HIT_WITHIN = 2.0


def turnover_argv(fixture_path, calls: int) -> list[str]:
    return [fixture_path("turnover"), "--threads", str(SPAWNERS), "--calls", str(calls), "--interval-us", "500"]


def hits_until_exit(inf, run: int) -> tuple[int, Exited]:
    """cont() until the process ends; every stop must be a hit of the main thread within HIT_WITHIN."""
    inf.insert_breakpoint(inf.symbol("hit_target"))
    hits = 0
    while True:
        start = time.monotonic()
        event = inf.cont(timeout=4 * HIT_WITHIN)  # a stuck engine raises StopTimeout, with the world stopped
        waited = time.monotonic() - start
        assert waited < HIT_WITHIN, f"run {run}: stop {hits + 1} ({event!r}) took {waited:.2f} s"
        if isinstance(event, Exited):
            return hits, event
        assert isinstance(event, BreakpointHit) and event.tid == inf.pid, f"run {run}: unexpected {event!r}"
        hits += 1


@time_limit(120)
def test_turnover_every_hit_comes_in_time_run_after_run(fixture_path) -> None:
    for run in range(RUNS):
        with launched(turnover_argv(fixture_path, CALLS), stdout=subprocess.DEVNULL) as inf:
            hits, end = hits_until_exit(inf, run)
        assert (hits, end.code) == (CALLS, 0), f"run {run}: {hits} hits, exit code {end.code}"


@time_limit(90)
def test_turnover_hits_are_exact_and_every_thread_stopped_and_known(fixture_path, tmp_path) -> None:
    calls = 100
    out_path = tmp_path / "turnover.out"
    with open(out_path, "wb") as out, launched(turnover_argv(fixture_path, calls), stdout=out) as inf:
        main = inf.pid
        result = run_breakpoints(inf, ["hit_target"], check_stopped_every=1, check_thread_table=True)
    report = parse_report(out_path.read_text())
    assert isinstance(result.end, Exited) and result.end.code == 0, f"{result.end!r}\n{report.text[-500:]}"
    assert report.counts == {("hit_target", main): calls}, report.text[-500:]
    assert result.hits == {("hit_target", main): calls}, f"hits reported: {dict(result.hits)}"


@time_limit(60)
def test_detach_in_the_middle_of_the_turnover_releases_every_thread(fixture_path, tmp_path) -> None:
    calls, before_detach = 2000, 20
    out_path = tmp_path / "turnover.out"
    with open(out_path, "wb") as out, launched(turnover_argv(fixture_path, calls), stdout=out) as inf:
        pid = inf.pid
        inf.insert_breakpoint(inf.symbol("hit_target"))
        for _ in range(before_detach):
            event = inf.cont(timeout=4 * HIT_WITHIN)
            assert isinstance(event, BreakpointHit), event
        inf.remove_breakpoint(inf.symbol("hit_target"))
        inf.detach()  # threads are being born and are ending at this very moment
        check_released(pid)
        _, status = os.waitpid(pid, 0)  # after detach it is still our child: we reap it
    report = parse_report(out_path.read_text())
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"wait status {status:#x}\n{report.text[-500:]}"
    assert report.counts == {("hit_target", pid): calls}, report.text[-500:]

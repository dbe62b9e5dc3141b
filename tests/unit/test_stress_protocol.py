"""The stress harness's reading of a program's protocol lines under thread churn (pure functions).

Short-lived threads (`ptstub-count: F TID N short-lived`) are summed apart and kept out of the
fairness index and the headline stop-all latency; count lines of a reused tid add up; a hit on a
thread the program did not count is a phantom.
"""

from __future__ import annotations

from ptstub.stress import protocol
from ptstub.stress.model import Churn, StressConfig, ViolationKind
from ptstub.stress.verdict import RunRecord, build_report

OUTPUT = """\
ptstub-count: hit_target 100 50
ptstub-count: hit_target 101 50
ptstub-count: hit_target 200 1 short-lived
ptstub-count: hit_target 201 1 short-lived
ptstub-count: hit_target 201 1 short-lived
ptstub-count: hit_target 202 1 bogus
ptstub-syscall: idle-read ok
"""
CONFIG = StressConfig(argv=("prog",), breaks=("hit_target",))


def record(seen: dict[int, int], latency: list[tuple[int, int]] = ()) -> RunRecord:
    run = RunRecord("engine", functions=("hit_target",))
    run.seen = {("hit_target", tid): n for tid, n in seen.items()}
    run.hits = sum(seen.values())
    run.latency_ns = [ns for ns, _ in latency]
    run.latency_tids = [tid for _, tid in latency]
    return run


def test_count_lines_of_a_reused_tid_add_up_and_short_lived_ones_are_marked() -> None:
    output = protocol.parse_output(OUTPUT)

    assert output.counts == {
        ("hit_target", 100): 50,
        ("hit_target", 101): 50,
        ("hit_target", 200): 1,
        ("hit_target", 201): 2,
    }
    assert output.short_lived == frozenset({200, 201})
    assert ("hit_target", 202) not in output.counts  # a malformed line is not a count


def test_fairness_is_over_long_lived_threads_and_churn_is_apart() -> None:
    report = build_report(CONFIG, record({100: 50, 101: 50, 200: 1, 201: 2}), OUTPUT)

    assert report.passed, report.summary()
    assert report.fairness is not None and (report.fairness.threads, report.fairness.jain) == (2, 1.0)
    assert report.churn == Churn(threads=2, hits=3, program_count=3)


def test_latency_headline_leaves_out_stops_at_short_lived_hits() -> None:
    samples = [(10_000, 100), (20_000, 101), (900_000, 200)]
    report = build_report(CONFIG, record({100: 50, 101: 50, 200: 1, 201: 2}, samples), OUTPUT)

    assert report.latency is not None and (report.latency.samples, report.latency.max_us) == (2, 20.0)
    assert report.churn_latency is not None and (report.churn_latency.samples, report.churn_latency.max_us) == (
        1,
        900.0,
    )


def test_without_short_lived_threads_every_sample_counts() -> None:
    plain = "ptstub-count: hit_target 100 5\n"
    report = build_report(CONFIG, record({100: 5}, [(1_000, 100), (2_000, 100)]), plain)

    assert report.churn is None and report.churn_latency is None
    assert report.latency is not None and report.latency.samples == 2


def test_a_hit_on_a_thread_the_program_did_not_count_is_a_phantom() -> None:
    report = build_report(CONFIG, record({100: 50, 101: 50, 200: 1, 201: 2, 999: 1}), OUTPUT)

    assert report.total(ViolationKind.HIT_COUNT) == 1
    assert [(v.tid, v.message) for v in report.violations] == [
        (999, "harness saw 1 hits of hit_target but the program counted 0")
    ]


def test_a_lost_hit_of_a_short_lived_thread_is_reported() -> None:
    report = build_report(CONFIG, record({100: 50, 101: 50, 200: 1, 201: 1}), OUTPUT)

    assert report.total(ViolationKind.HIT_COUNT) == 1
    assert report.violations[0].tid == 201 and "1 lost" in report.violations[0].message
    assert report.churn == Churn(threads=2, hits=2, program_count=3)


def test_a_function_the_program_never_counted_stays_unchecked() -> None:
    config = StressConfig(argv=("prog",), breaks=("hit_target", "other"))
    run = record({100: 50, 101: 50, 200: 1, 201: 2})
    run.functions = ("hit_target", "other")
    run.seen[("other", 100)] = 7
    report = build_report(config, run, OUTPUT)

    assert report.passed, report.summary()
    assert [row.program_count for row in report.threads if row.function == "other"] == [None]

"""ptstub's pytest plugin, exercised the way users meet it: pytest run on a test file of theirs.

Each case writes a small test module into a temporary directory and runs `python -m pytest` on it in
a subprocess (the plugin is loaded through its `pytest11` entry point), then checks the outcome, the
failure report's "ptstub threads" section, and that no traced process outlives the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *args,
            str(tmp_path / "test_user.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(150)
def test_launch_fixture_cleans_up_and_failure_report_shows_threads(programs, tmp_path) -> None:
    result = run_pytest(
        tmp_path,
        f"""
        def test_stopped_at_a_breakpoint_then_fails(ptstub_launch):
            inf = ptstub_launch([{programs["stress"]!r}, "--threads", "3", "--calls", "5", "--syscall", "futex"])
            inf.insert_breakpoint(inf.symbol("hit_target"))
            event = inf.cont(10.0)
            assert type(event).__name__ == "BreakpointHit"
            assert False, "deliberate failure"

        def test_left_running_then_passes(ptstub_launch):
            inf = ptstub_launch([{programs["stress"]!r}, "--threads", "1", "--calls", "5", "--syscall", "read"])
            inf.resume(default=__import__("ptstub.target").target.ResumeAction())
    """,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout
    section = result.stdout.split("ptstub threads", 1)[1]
    assert "deliberate failure" in result.stdout
    assert section.count(" stopped: rip=0x") >= 2  # every thread born by the first hit, each with its rip
    assert "hit_target" in section  # the reporting thread's rip, symbolized


@pytest.mark.timeout(150)
def test_stress_helper_passes_and_fails_with_the_verdict(programs, tmp_path) -> None:
    result = run_pytest(
        tmp_path,
        f"""
        def test_good(ptstub_stress):
            report = ptstub_stress([{programs["stress"]!r}, "--threads", "2", "--calls", "20", "--syscall", "futex"],
                                   breaks=["hit_target"], frozen=["frozen_counter"])
            assert report.hits == 40

        def test_bundled_churn(ptstub_stress):
            report = ptstub_stress(threads=2, calls=20, churn=1, idle=8)
            assert report.churn is not None and report.churn.hits == report.churn.program_count >= 1
            assert report.fairness.threads == 2

        def test_bad(ptstub_stress):
            ptstub_stress([{programs["miscount"]!r}, "--threads", "2", "--calls", "20", "--syscall", "futex"],
                          breaks=["hit_target"])

        def test_bad_unchecked(ptstub_stress):
            report = ptstub_stress([{programs["miscount"]!r}, "--threads", "1", "--calls", "20"],
                                   breaks=["hit_target"], check=False)
            assert not report.passed and report.total(report.violations[0].kind) == 1
    """,
    )

    assert "1 failed, 3 passed" in result.stdout, result.stdout + result.stderr
    assert "FAIL: hit-count: thread" in result.stdout
    assert "program counted 19" in result.stdout


@pytest.mark.timeout(60)
def test_plugin_stays_out_of_runs_that_do_not_use_it(tmp_path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import sys

        def test_plain():
            assert "ptstub.pytest_plugin" in sys.modules  # loaded through the entry point
            assert "ptstub.stress" not in sys.modules  # the harness is imported only when used
    """,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout

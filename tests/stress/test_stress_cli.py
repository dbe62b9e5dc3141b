"""`ptstub stress` on the command line: exit statuses, report files, the progress line, bad input.

Bad input (unknown symbol, program not found, bad option values, a stub that never listens) must end
with one clear line on stderr, no traceback, and no process left behind (the autouse leak check).
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from xml.etree import ElementTree as ET

import pytest
from stress_helpers import TRACEBACK, assert_one_line_error, run_cli


@pytest.mark.timeout(60)
def test_passing_run_exits_0_and_writes_json_and_junit(programs, tmp_path) -> None:
    json_path, junit_path = tmp_path / "report.json", tmp_path / "report.xml"
    result = run_cli(
        programs["stress"],
        "--threads",
        "2",
        "--calls",
        "50",
        "--syscall",
        "futex",
        "--break",
        "hit_target",
        "--frozen",
        "frozen_counter",
        "--seed",
        "3",
        "--json",
        str(json_path),
        "--junit",
        str(junit_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # not a terminal: no progress line
    assert result.stdout.strip().splitlines()[-1] == "PASS: 100 hits, all invariants held"
    for words in ("hits/s", "Jain's fairness index", "stop-all latency p50", "stops/s", "syscall      futex: ok"):
        assert words in result.stdout
    data = json.loads(json_path.read_text())
    assert data["passed"] is True and data["hits"] == 100 and data["counts"] == "exact"
    assert [row["hits"] for row in data["threads"]] == [50, 50]
    assert data["latency"]["p99_us"] >= data["latency"]["p50_us"] > 0
    suite = ET.parse(junit_path).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} >= {"no hit is lost (program's own counts)"}


@pytest.mark.timeout(60)
def test_failing_run_exits_1_and_junit_names_the_invariant(programs, tmp_path) -> None:
    junit_path = tmp_path / "report.xml"
    result = run_cli(
        programs["miscount"],
        "--threads",
        "2",
        "--calls",
        "20",
        "--syscall",
        "read",
        "--break",
        "hit_target",
        "--junit",
        str(junit_path),
    )

    assert result.returncode == 1
    failures = [c for c in ET.parse(junit_path).getroot().iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["no hit is lost (program's own counts)"]
    failure = failures[0].find("failure")
    assert failure is not None and "program counted 19" in (failure.get("message") or "")


@pytest.mark.timeout(60)
def test_options_after_program_arguments_and_double_dash(programs) -> None:
    after = run_cli(programs["stress"], "--threads", "1", "--calls", "5", "--break", "hit_target", "--hits", "3")
    dashed = run_cli("--break=hit_target", "--", programs["stress"], "--threads", "1", "--calls", "5")

    assert after.returncode == 0, after.stdout + after.stderr
    assert "hits         3 in" in after.stdout and "compared at most" in after.stdout
    assert dashed.returncode == 0, dashed.stdout + dashed.stderr
    assert "PASS: 5 hits" in dashed.stdout


@pytest.mark.timeout(60)
def test_bundled_program_runs_without_prog(programs, tmp_path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))  # builds it there
    result = run_cli("--stress-threads", "2", "--stress-calls", "30", "--stress-syscall", "epoll_wait", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "frozen       frozen_counter" in result.stdout
    assert "PASS: 60 hits" in result.stdout


@pytest.mark.timeout(60)
def test_bundled_program_churn_and_idle(programs, tmp_path) -> None:
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    json_path = tmp_path / "report.json"
    args = ("--stress-threads", "2", "--stress-calls", "40", "--stress-churn", "2", "--stress-idle", "32")
    result = run_cli(*args, "--json", str(json_path), env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "--churn 2 --idle 32" in result.stdout
    assert "Jain's fairness index 1.000 (long-lived threads)" in result.stdout
    assert "counted apart from the fairness index" in result.stdout
    assert "syscall      idle-read: ok" in result.stdout
    data = json.loads(json_path.read_text())
    churned = [row for row in data["threads"] if row["short_lived"]]
    assert data["fairness"]["threads"] == 2 and len(churned) == data["churn"]["threads"] >= 1
    assert data["churn"]["hits"] == data["churn"]["program_count"] == sum(row["hits"] for row in churned) >= 2
    assert data["hits"] == 80 + data["churn"]["hits"]


@pytest.mark.timeout(60)
def test_progress_line_only_on_a_terminal(programs) -> None:
    main, secondary = pty.openpty()
    command = [
        sys.executable,
        "-m",
        "ptstub",
        "stress",
        programs["stress"],
        "--threads",
        "2",
        "--calls",
        "3000",
        "--syscall",
        "futex",
        "--break",
        "hit_target",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=secondary, stdin=subprocess.DEVNULL) as proc:
        os.close(secondary)
        seen = b""
        while True:
            ready, _, _ = select.select([main], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(main, 4096)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        out, _ = proc.communicate(timeout=30)
    os.close(main)

    assert proc.returncode == 0, out
    assert b"\r  " in seen and b"hits/s" in seen and b"s elapsed" in seen
    assert b"hits/s" not in out.split(b"\n")[0]  # the report itself starts clean on stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["{stress}", "--break", "no_such_function"], 2, ["--break no_such_function", "no symbol"]),
        (["{stress}", "--break", "hit_target", "--frozen", "no_such_var"], 2, ["--frozen no_such_var"]),
        (["/nonexistent/prog", "--break", "main"], 2, ["/nonexistent/prog", "no such file"]),
        (["no-such-program-anywhere", "--break", "main"], 2, ["not found"]),
        (["{stress}", "--break", "hit_target", "--hits", "0"], 2, ["--hits '0'", "positive integer"]),
        (["{stress}", "--break", "hit_target", "--duration", "soon"], 2, ["--duration 'soon'"]),
        (["{stress}", "--break", "hit_target", "--timeout", "-1"], 2, ["--timeout '-1'"]),
        (["{stress}", "--break", "hit_target", "--timeout"], 2, ["--timeout needs a value"]),
        (["--bogus", "{stress}"], 2, ["unknown option --bogus"]),
        (["{stress}", "--threads", "2"], 2, ["--break SYM is required"]),
        (["{stress}", "--break", "hit_target", "--break", ""], 2, ["--break ''"]),
        (["--stress-syscall", "sleepy"], 2, ["--stress-syscall 'sleepy'"]),
        (["--stress-churn", "65"], 2, ["--stress-churn '65'", "0-64"]),
        (["--stress-idle", "-1"], 2, ["--stress-idle '-1'", "0-10000"]),
        (["{stress}", "--break", "hit_target", "--stress-churn", "2"], 2, ["--stress-churn", "bundled", "PROG"]),
        (["--stub", "gdbserver :1234"], 2, ["must contain {port}"]),
        (["--stub", "no-such-stub-binary {port}"], 2, ["command not found: no-such-stub-binary"]),
        (
            ["{stress}", "--calls", "5", "--break", "hit_target", "--json", "/no/dir/r.json"],
            1,
            ["cannot write the report"],
        ),
    ],
)
def test_bad_input_is_one_line(programs, args: list[str], status: int, words: list[str]) -> None:
    result = run_cli(*[a.replace("{stress}", programs["stress"]) for a in args])

    assert_one_line_error(result, status, *words)


@pytest.mark.timeout(60)
def test_stub_that_never_listens_fails_in_one_line_and_is_killed(programs) -> None:
    started = time.monotonic()
    # a "stub" that ignores its port and would sleep for a minute: killed after --listen-timeout
    result = run_cli(
        "--stub",
        f"{sys.executable} -c 'import time; time.sleep(60)' {{port}} {{prog}}",
        "--listen-timeout",
        "1",
        programs["stress"],
        "--break",
        "hit_target",
    )

    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.stdout + result.stderr
    assert TRACEBACK not in result.stderr
    assert "FAIL: stub: the stub did not listen on port" in result.stdout.strip().splitlines()[-1]


@pytest.mark.timeout(60)
def test_stub_that_exits_at_once_is_reported(programs) -> None:
    result = run_cli("--stub", "false {port}", programs["stress"], "--break", "hit_target")

    assert result.returncode == 1
    assert "FAIL: stub: the stub exited with status 1 before listening on port" in result.stdout

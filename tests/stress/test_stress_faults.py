"""The harness catches real faults: each run must fail with exit status 1 and name the problem.

- an untraced process writes a `--frozen` variable through shared memory while the program is stopped;
- a program whose own count disagrees with the hits seen (fixtures' `miscount`);
- a program that deadlocks (fixtures' `hang`): detected within `--timeout`, every thread dumped;
- a stub that does not stop the other threads (`qemu-x86_64 -g`, when installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest
from stress_helpers import run_cli

from ptstub.stress import StressConfig, ViolationKind, run_stress


@pytest.fixture
def shm_name():
    name = f"ptstub-stress-{uuid.uuid4().hex[:12]}"
    yield name
    try:
        os.unlink(f"/dev/shm/{name}")
    except FileNotFoundError:
        pass


@pytest.mark.timeout(60)
def test_shared_memory_writer_breaks_a_frozen_variable(programs, native_process, shm_name) -> None:
    writer_argv = [programs["shm_writer"], "--shm", shm_name]
    with native_process(writer_argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True) as writer:
        assert writer.stdout.readline().strip() == "ready"
        result = run_cli(
            programs["shm_frozen"],
            "--shm",
            shm_name,
            "--threads",
            "2",
            "--calls",
            "100",
            "--break",
            "hit_target",
            "--frozen",
            "frozen_counter,*shared_counter",
        )

    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAIL: frozen: thread ")
    assert "*shared_counter changed" in last
    assert "frozen_counter changed" not in result.stdout  # the traced program's own counter held still
    assert "own counts: compared exact, match" in result.stdout


@pytest.mark.timeout(60)
def test_program_miscounting_is_a_hit_count_violation(programs) -> None:
    result = run_cli(
        programs["miscount"], "--threads", "3", "--calls", "50", "--syscall", "futex", "--break", "hit_target"
    )

    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("FAIL: hit-count: thread ")
    assert "harness saw 50 hits of hit_target but the program counted 49" in last


@pytest.mark.timeout(60)
def test_deadlock_is_detected_within_the_timeout(programs) -> None:
    started = time.monotonic()
    result = run_cli(programs["hang"], "--calls", "3", "--break", "hit_target", "--timeout", "1.5")
    took = time.monotonic() - started

    assert result.returncode == 1, result.stdout + result.stderr
    assert took < 15
    assert "FAIL: deadlock: no hit or other stop within 1.5 s after 6 hits" in result.stdout
    dump = [
        line
        for line in result.stdout.split("threads at the deadlock", 1)[1].splitlines()
        if line.startswith("    thread ")
    ]
    assert len(dump) == 3  # main + the two deadlocked threads
    assert all(" stopped: rip=0x" in line and " rsp=0x" in line and line.endswith(" in futex") for line in dump)
    assert "program end  killed by the harness" in result.stdout


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-user is not installed")
def test_stub_that_does_not_stop_other_threads_is_detected(programs) -> None:
    """qemu-user's gdbstub stops only the thread that hit: the counter thread runs on during a stop.

    One worker (qemu's stub deadlocks with two, which the harness would report as a hang instead).
    """
    argv = (programs.bundled, "--threads", "1", "--calls", "150", "--syscall", "nanosleep", "--duration-ms", "100")
    report = run_stress(
        StressConfig(
            argv=argv,
            breaks=("hit_target",),
            frozen=("frozen_counter",),
            stub="qemu-x86_64 -g {port} {prog} {args}",
            timeout=30,
        )
    )

    assert not report.passed
    assert report.total(ViolationKind.FROZEN) > 0, report.summary()
    first = next(v for v in report.violations if v.kind is ViolationKind.FROZEN)
    assert "frozen_counter changed while every thread was stopped" in first.message
    assert first.tid is not None and first.address is not None

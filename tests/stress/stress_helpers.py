"""Helpers of the stress harness's tests (named apart from tests/engine/helpers.py: both dirs share sys.path)."""

from __future__ import annotations

import subprocess
import sys

TRACEBACK = "Traceback (most recent call last)"


def run_cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ptstub stress ARGS` in a subprocess (the installed entry point's code, via `python -m ptstub`)."""
    return subprocess.run(
        [sys.executable, "-m", "ptstub", "stress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """The CLI failed with `status`, one clear line on stderr naming `words`, and no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert TRACEBACK not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ptstub stress: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])

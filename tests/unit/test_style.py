"""The code style the project keeps: `ruff check` and `ruff format --check` over the tree, and mypy --strict.

ruff is pinned in pyproject.toml's test extra, so a new ruff release cannot fail this on its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.timeout(60)
@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["check", "format"])
def test_ruff_is_clean(args: list[str]) -> None:
    result = subprocess.run([RUFF, *args], cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


MYPY = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")


@pytest.mark.timeout(120)
@pytest.mark.skipif(MYPY is None, reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_strict_is_clean() -> None:
    """The protocol layer, the session package, the seam and the events type-check under --strict
    (the files and the setting are in pyproject.toml)."""
    result = subprocess.run([MYPY], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]

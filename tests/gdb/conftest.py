"""Shared fixtures for the end-to-end tests that drive the real /usr/bin/gdb against a stub."""

from __future__ import annotations

import shutil

import pytest

STUBS = ["ptstub", "gdbserver"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stub" in metafunc.fixturenames:
        metafunc.parametrize("stub", STUBS)


@pytest.fixture(autouse=True)
def _need_gdb(request: pytest.FixtureRequest) -> None:
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed (scripts/setup.sh installs it)")
    if "stub" in request.fixturenames and request.getfixturevalue("stub") == "gdbserver":
        if shutil.which("gdbserver") is None:
            pytest.skip("gdbserver is not installed (scripts/setup.sh installs it)")

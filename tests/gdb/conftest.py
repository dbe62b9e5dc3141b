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


@pytest.fixture(scope="session")
def fixture_path() -> object:
    """`fixture_path(name)`: the path of a fixtures/ program, built once per session with CMake."""
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[2]
    build = root / "build" / "fixtures"
    subprocess.run(["cmake", "-S", str(root / "fixtures"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build), "-j2"], check=True, capture_output=True)

    def path(name: str) -> str:
        program = build / name
        assert program.exists(), f"fixture {name} was not built"
        return str(program)

    return path

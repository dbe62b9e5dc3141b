"""Fixtures of the stress harness's tests: private copies of the programs, and a leak check.

The fixtures/ programs are copied into a directory of this session (and the bundled stress program is
built there), so "nothing is left running" can be checked exactly: after each test no live process may
run a program from that directory, or have it on its command line (a stub still serving it), even
when other test sessions use build/fixtures at the same time.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ptstub.stress import bundled

PROGRAMS = ("stress", "miscount", "hang", "shm_frozen", "shm_writer")
LEAK_GRACE_S = 5.0  # a killed process that is not our child is reaped by init a moment later


@dataclass(frozen=True)
class Programs:
    """Paths of this session's programs; `bundled` is ptstub's own stress program."""

    directory: Path
    bundled: str

    def __getitem__(self, name: str) -> str:
        return str(self.directory / name)


@pytest.fixture(scope="session")
def programs(fixture_path, tmp_path_factory: pytest.TempPathFactory) -> Programs:
    directory = tmp_path_factory.mktemp("stress-programs")
    for name in PROGRAMS:
        shutil.copy2(fixture_path(name), directory / name)
    return Programs(directory, bundled.build(str(directory)))


def live_processes_using(directory: Path) -> dict[int, str]:
    """Processes (not zombies) whose executable or command line mentions `directory`."""
    found = {}
    needle = str(directory)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            exe = os.readlink(f"/proc/{entry}/exe") if needle not in cmdline else needle
        except (OSError, IndexError):
            continue
        if needle in cmdline or exe.startswith(needle):
            found[int(entry)] = cmdline
    return found


@pytest.fixture(autouse=True)
def nothing_left_running(programs: Programs) -> Iterator[None]:
    """Fail a test that leaves any process of this session's programs behind (they are killed first)."""
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    leftovers = live_processes_using(programs.directory)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.05)  # bounded poll: a process killed by the harness may still be exiting
        leftovers = live_processes_using(programs.directory)
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if leftovers:
        pytest.fail(f"processes left running: {leftovers}", pytrace=False)

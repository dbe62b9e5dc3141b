"""SIGCHLD and the tracer's signal mask (csrc/ptcore_wake.c, hold_sigchld).

The thread that waits on the engine keeps SIGCHLD blocked from its first waiting call until the last
engine of the process is freed (it is unblocked only while the engine sleeps). What users can see of
that: a program launched meanwhile starts with no signal blocked, and once every engine is closed the
calling thread's mask is its own again, so the children it spawns itself (subprocess) do not inherit a
blocked SIGCHLD. Checked in a fresh interpreter, where no other test's engine is alive.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.engine.helpers import time_limit

pytestmark = time_limit(60)

SCRIPT = r"""
import signal, subprocess, sys
import ptstub
from ptstub.events import Exited

def blocked_by(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("SigBlk:"))

def sigchld_blocked():
    return signal.SIGCHLD in signal.pthread_sigmask(signal.SIG_BLOCK, [])

program, quiet = sys.argv[1], open("/dev/null", "w")
with ptstub.launch([program], stdout=quiet) as first:
    assert isinstance(first.cont(), Exited)
    print("held while an engine lives:", sigchld_blocked())
    with ptstub.launch([program], stdout=quiet) as second:
        print("program launched meanwhile blocks:", hex(blocked_by(second.pid)))
print("held after the last engine closed:", sigchld_blocked())
child = subprocess.run(["grep", "SigBlk", "/proc/self/status"], capture_output=True, text=True, timeout=30)
print("a subprocess then blocks:", hex(int(child.stdout.split()[1], 16)))
"""


@pytest.mark.usefixtures("no_leftover_children")
def test_launched_programs_and_later_children_start_unblocked(fixture_path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, fixture_path("simple")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "held while an engine lives: True",
        "program launched meanwhile blocks: 0x0",
        "held after the last engine closed: False",
        "a subprocess then blocks: 0x0",
    ]

"""The `ptstub.ptrace` log channel: each ptrace request the engine makes, by name, with its outcome.

Run on fixtures/simple with the channel at DEBUG level (as `--debug` sets it): the seize of a launch,
the resumes of a breakpoint loop with the signal they deliver, and a failing request with its errno
name all appear; with the channel off the engine keeps no record at all.
"""

from __future__ import annotations

import logging

import pytest
from helpers import launched, time_limit

from ptstub.errors import NoSuchThreadError
from ptstub.events import BreakpointHit, Exited
from ptstub.linux import ptrace_log
from ptstub.linux.ffi import ffi

pytestmark = [pytest.mark.usefixtures("no_leftover_children"), time_limit(30)]


def test_requests_logged_by_name_with_outcome(fixture_path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="ptstub.ptrace")
    with launched([fixture_path("simple"), "--iterations", "2"]) as inf:
        pid = inf.pid
        inf.insert_breakpoint(inf.symbol("work"))
        assert isinstance(inf.cont(), BreakpointHit)
        with pytest.raises(NoSuchThreadError):
            inf.read_gpr(2**22 + 1)  # above pid_max's default: no such thread
        inf.remove_breakpoint(inf.symbol("work"))
        assert isinstance(inf.cont(), Exited)
    lines = [r.getMessage() for r in caplog.records if r.name == "ptstub.ptrace"]
    assert any(line.startswith(f"PTRACE_SEIZE({pid}, options=") and line.endswith(" = 0") for line in lines)
    assert f"PTRACE_CONT({pid}, 0) = 0" in lines
    assert f"PTRACE_GETREGS({2**22 + 1}) = -1 ESRCH" in lines


def test_nothing_recorded_when_channel_off(fixture_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="ptstub.ptrace")
    with launched([fixture_path("simple"), "--iterations", "1"]) as inf:
        assert inf._e.ptrace_log == ffi.NULL
        assert isinstance(inf.cont(), Exited)
    assert not [r for r in caplog.records if r.name == "ptstub.ptrace"]


def test_describe_names_signals_and_unknown_requests() -> None:
    assert ptrace_log.describe(7, 42, 0, 0, 0, 10) == "PTRACE_CONT(42, SIGUSR1) = 0"
    assert ptrace_log.describe(0x4207, 42, -1, 3, 0, 0) == "PTRACE_INTERRUPT(42) = -1 ESRCH"
    assert ptrace_log.describe(6, 42, 0, 0, 0x378, 0) == "PTRACE_POKEUSER(42, 0x378, 0x0) = 0"
    assert ptrace_log.describe(0x4299, 42, 0, 0, 0, 0) == "PTRACE_0x4299(42) = 0"

"""Lazy breakpoint removal: a software breakpoint GDB removes while the world is stopped keeps its int3
until a request that could tell comes; GDB's z0/Z0 pair of one breakpoint at every stop costs nothing.

Each test checks the fake process's memory (its breakpoint set) at the moment that matters: a resume,
a memory read or write, a detach, the end of the connection, so a stale int3 would fail it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from ptstub.events import StepDone
from ptstub.target import BreakpointKind, ResumeAction
from tests.session.conftest import GDB_FEATURES, Transcript, connect_all_stop, make_session
from tests.session.fake import FakeProcess

BP = (0x400010, BreakpointKind.SOFTWARE, 1)
SHLIB_BP = (0x400020, BreakpointKind.SOFTWARE, 1)


@pytest.fixture
def gdb(process: FakeProcess, wake_fd: int) -> Transcript:
    transcript = connect_all_stop(process, wake_fd)
    transcript.exchange(b"Z0,400010,1", b"OK")
    transcript.exchange(b"Z0,400020,1", b"OK")
    return transcript


def memory_at_resume(
    process: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> list[set[tuple[int, BreakpointKind, int]]]:
    """The breakpoints in the process's memory at each resume, as the program would run into them."""
    seen: list[set[tuple[int, BreakpointKind, int]]] = []
    resume = process.resume

    def recording(actions: Mapping[int, ResumeAction], default: ResumeAction | None = None) -> None:
        seen.append(set(process.breakpoints))
        resume(actions, default)

    monkeypatch.setattr(process, "resume", recording)
    return seen


def test_a_removal_and_insertion_in_one_stop_never_touch_memory(gdb: Transcript, process: FakeProcess) -> None:
    """GDB's breakpoint loop: z0 and Z0 of the shared-library breakpoint, QPassSignals between."""
    gdb.exchange(b"z0,400020,1", b"OK")
    gdb.exchange(b"QPassSignals:", b"OK")
    assert SHLIB_BP in process.breakpoints  # still in memory: nothing could tell yet
    gdb.exchange(b"Z0,400020,1", b"OK")
    assert process.breakpoints == {BP, SHLIB_BP}
    assert process.reinserted == []  # never left memory: not written again


def test_a_removed_breakpoint_is_out_of_memory_before_a_step(
    gdb: Transcript, process: FakeProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDB steps a thread over the breakpoint it removed: the step must run the original instruction."""
    seen = memory_at_resume(process, monkeypatch)
    gdb.exchange(b"z0,400010,1", b"OK")
    gdb.exchange(b"z0,400020,1", b"OK")
    gdb.exchange(b"Z0,400020,1", b"OK")
    process.events.append(StepDone(101, 0x400011))
    gdb.exchange(b"vCont;s:p64.65", re.compile(rb"T05.*thread:p64\.65;"))
    assert seen == [{SHLIB_BP}]
    gdb.exchange(b"Z0,400010,1", b"OK")  # inserted again after the step: written again
    assert process.breakpoints == {BP, SHLIB_BP}


@pytest.mark.parametrize("request_", [b"m400010,1", b"M400010,1:cc", b"?", b"D", b"qXfer:threads:read::0,1000"])
def test_any_other_request_takes_it_out_first(gdb: Transcript, process: FakeProcess, request_: bytes) -> None:
    gdb.exchange(b"z0,400010,1", b"OK")
    gdb.replies(request_)
    assert BP not in process.breakpoints


def test_the_end_of_the_connection_takes_it_out(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"z0,400010,1", b"OK")
    gdb.session.close()
    assert process.breakpoints == set()  # the departed GDB's breakpoints are all gone, the lifted one too


def test_a_breakpoint_with_a_condition_is_removed_at_once(gdb: Transcript, process: FakeProcess) -> None:
    """The engine judges conditions from its own list of breakpoints: no removal waits then."""
    gdb.exchange(b"Z0,400030,1;X3,220127", b"OK")
    gdb.exchange(b"z0,400010,1", b"OK")
    assert BP not in process.breakpoints


def test_a_lifted_breakpoint_inserted_with_a_condition_is_judged(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"z0,400010,1", b"OK")
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")  # const8 0: never true
    assert BP in process.breakpoints
    assert gdb.session.book.conditions  # the condition is kept, as for any Z0 with one
    assert not gdb.session.book.lifted


def test_non_stop_removes_at_once(process: FakeProcess, wake_fd: int) -> None:
    """In non-stop mode other threads run while GDB edits breakpoints: they must not hit a removed one."""
    gdb = make_session(process, wake_fd)
    gdb.exchange(GDB_FEATURES, re.compile(rb"PacketSize=20000;.*"))
    gdb.exchange(b"QNonStop:1", b"OK")
    gdb.exchange(b"Z0,400010,1", b"OK")
    gdb.exchange(b"z0,400010,1", b"OK")
    assert BP not in process.breakpoints


def test_a_hit_at_a_lifted_address_is_not_a_breakpoint(gdb: Transcript) -> None:
    gdb.exchange(b"z0,400010,1", b"OK")
    assert not gdb.session.book.breakpoint_at(100, 0x400010)

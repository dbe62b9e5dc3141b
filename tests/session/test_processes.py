"""Packet transcripts over two fake processes: extended mode with the multiprocess extensions."""

from __future__ import annotations

import pytest

from ptstub.events import BreakpointHit, Exited, Forked
from tests.session.conftest import Transcript, make_session
from tests.session.fake import FakeProcess

OTHER = b"vRun;2f62696e2f6f74686572"  # /bin/other
OTHER_STOP = b"T0506:0410000000000000;07:1310000000000000;10:1000400000000000;thread:pc8.c8;"


@pytest.fixture
def first() -> FakeProcess:
    return FakeProcess(100, [101])


@pytest.fixture
def second() -> FakeProcess:
    process = FakeProcess(200, [201])
    process.memory[0:4] = b"\x11\x22\x33\x44"
    return process


@pytest.fixture
def gdb(first: FakeProcess, second: FakeProcess, wake_fd: int) -> Transcript:
    attachable = {300: FakeProcess(300)}
    transcript = make_session(first, wake_fd, extended=True, launch={"/bin/other": second}, attach=attachable)
    transcript.replies(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386;fork-events+")
    transcript.exchange(b"!", b"OK")
    transcript.exchange(OTHER, OTHER_STOP)
    return transcript


def test_both_are_listed_and_selectable(gdb: Transcript) -> None:
    gdb.exchange(b"qfThreadInfo", b"mpc8.c8,pc8.c9,p64.64,p64.65")
    gdb.exchange(b"Hgp64.64", b"OK")
    gdb.exchange(b"m400000,4", b"00010203")
    gdb.exchange(b"Hgpc8.c8", b"OK")
    gdb.exchange(b"m400000,4", b"11223344")
    gdb.exchange(b"Hgp12c.12c", b"E03")
    gdb.exchange(b"qAttached:c8", b"0")


def test_event_of_the_second_process(gdb: Transcript, second: FakeProcess) -> None:
    gdb.exchange(b"Hgpc8.c8", b"OK")
    gdb.exchange(b"Z0,400010,1", b"OK")
    second.events.append(BreakpointHit(201, 0x400010))
    gdb.exchange(b"vCont;c", b"T05swbreak:;06:0420000000000000;07:1320000000000000;10:1000400000000000;thread:pc8.c9;")
    gdb.exchange(b"qC", b"QCpc8.c9")


def test_attach_beside_and_detach_one(gdb: Transcript, first: FakeProcess, second: FakeProcess) -> None:
    gdb.exchange(b"vAttach;12c", b"T1106:0410000000000000;07:1310000000000000;10:1000400000000000;thread:p12c.12c;")
    gdb.exchange(b"qfThreadInfo", b"mp12c.12c,p64.64,p64.65,pc8.c8,pc8.c9")
    gdb.exchange(b"qAttached:12c", b"1")
    gdb.exchange(b"vAttach;999", b"E01")
    gdb.exchange(b"vAttach;64", b"E01")  # already served
    gdb.exchange(b"D;12c", b"OK")
    gdb.exchange(b"vKill;c8", b"OK")
    assert second.killed and not first.killed
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65")


def test_fork_child_joins_and_is_detached(gdb: Transcript, first: FakeProcess) -> None:
    gdb.exchange(b"vKill;c8", b"OK")
    gdb.exchange(b"Hgp64.64", b"OK")
    gdb.exchange(b"Z0,400010,1", b"OK")
    first.events.append(Forked(100, 0x400010, 400))
    gdb.exchange(
        b"vCont;c", b"T05fork:p190.190;06:0410000000000000;07:1310000000000000;10:1000400000000000;thread:p64.64;"
    )
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65,p190.190")
    gdb.exchange(b"Hgp190.190", b"OK")
    gdb.exchange(b"z0,400010,1", b"OK")  # the child's copy of the parent's int3
    gdb.exchange(b"D;190", b"OK")
    assert first.children[400].detached
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65")


def test_exit_of_one_then_kill_all(gdb: Transcript, first: FakeProcess, second: FakeProcess) -> None:
    second.events.append(Exited(200, 0))
    gdb.exchange(b"vCont;c", b"W0;process:c8")
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65")
    gdb.exchange(b"k")
    assert first.killed
    assert not gdb.session.finished  # extended mode: GDB can run again


def test_non_stop_over_two_processes(gdb: Transcript, first: FakeProcess, second: FakeProcess) -> None:
    gdb.exchange(b"QNonStop:1", b"OK")
    gdb.exchange(b"vCont;c", b"OK")
    assert first.running == {100, 101} and second.running == {200, 201}
    second.events.append(Exited(200, 7))
    gdb.notification(b"Stop:W7;process:c8")
    gdb.exchange(b"vStopped", b"OK")
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65")

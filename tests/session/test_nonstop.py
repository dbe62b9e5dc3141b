"""Non-stop packet transcripts over one fake process: `%Stop` notifications and the `vStopped` queue."""

from __future__ import annotations

import pytest

from ptstub.events import BreakpointHit, SignalReceived
from ptstub.target import ResumeAction, ResumeKind
from tests.session.conftest import Transcript, make_session
from tests.session.fake import FakeProcess

REGS_64 = b"06:0410000000000000;07:1310000000000000;10:1000400000000000;thread:p64.64;"
REGS_65 = b"06:0420000000000000;07:1320000000000000;10:1000400000000000;thread:p64.65;"


@pytest.fixture
def gdb(process: FakeProcess, wake_fd: int) -> Transcript:
    transcript = make_session(process, wake_fd)
    transcript.exchange(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386;QThreadEvents+;no-resumed+", b"")
    return transcript


@pytest.fixture
def non_stop(gdb: Transcript, process: FakeProcess) -> Transcript:
    gdb.exchange(b"QNonStop:1", b"OK")
    gdb.exchange(b"?", b"T05" + REGS_64)  # the leader stopped; the other thread runs on
    gdb.exchange(b"vStopped", b"OK")
    assert process.running == {101}
    return gdb


@pytest.fixture(autouse=True)
def any_supported_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    """qSupported's reply is the all-stop tests' business: here any reply is taken."""
    original = Transcript.exchange

    def exchange(self: Transcript, packet: bytes, *expected: bytes) -> list[bytes]:
        if packet.startswith(b"qSupported"):
            return self.replies(packet)
        return original(self, packet, *expected)

    monkeypatch.setattr(Transcript, "exchange", exchange)


def test_hit_is_notified_and_queued(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"Z0,400010,1", b"OK")
    process.events.append(BreakpointHit(101, 0x400010))
    non_stop.notification(b"Stop:T05swbreak:;" + REGS_65)
    non_stop.notification(None)
    non_stop.exchange(b"vStopped", b"OK")
    assert not process.running
    non_stop.exchange(b"vCont;c:p64.65", b"OK")
    assert process.resumes[-1] == {101: ResumeAction()}


def test_stale_hit_is_dropped(non_stop: Transcript, process: FakeProcess) -> None:
    process.events.append(BreakpointHit(101, 0x400010))  # no breakpoint there (GDB removed it)
    non_stop.notification(None)
    assert process.resumes[-1] == {101: ResumeAction()}  # the thread went on


def test_stop_request_is_reported_as_signal_0(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"vCont;t:p64.65", b"OK")
    non_stop.notification(b"Stop:T00" + REGS_65)
    non_stop.exchange(b"vStopped", b"OK")
    non_stop.exchange(b"vCont;t:p64.64", b"OK")  # already stopped: nothing happens
    non_stop.notification(None)


def test_ctrl_c_stops_one_thread_with_sigint(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"vCtrlC", b"OK")
    non_stop.notification(b"Stop:T02" + REGS_65)
    non_stop.exchange(b"vStopped", b"OK")


def test_several_stops_wait_in_the_queue(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"vCont;c:p64.64", b"OK")
    assert process.running == {100, 101}
    process.events.extend([SignalReceived(100, 0x400010, 10), SignalReceived(101, 0x400010, 12)])
    non_stop.notification(b"Stop:T1e" + REGS_64)
    non_stop.notification(None)  # one notification at a time: the rest come by vStopped
    non_stop.exchange(b"vStopped", b"T1f" + REGS_65)
    non_stop.exchange(b"vStopped", b"OK")
    non_stop.exchange(b"?", b"T1e" + REGS_64)
    non_stop.exchange(b"vStopped", b"T1f" + REGS_65)
    non_stop.exchange(b"vStopped", b"OK")


def test_step_in_non_stop(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"vCont;s:p64.64", b"OK")
    assert process.resumes[-1] == {100: ResumeAction(ResumeKind.STEP)}


def test_leaving_non_stop_stops_every_thread(non_stop: Transcript, process: FakeProcess) -> None:
    non_stop.exchange(b"QNonStop:0", b"OK")
    assert not process.running
    non_stop.exchange(b"?", b"T00" + REGS_64)  # the stop was asked for while still in non-stop

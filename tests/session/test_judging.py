"""Conditions and commands handed to the backend through the seam (`Target.judge_breakpoint`).

The session gives a software breakpoint's bytecode, GDB's register numbers mapped into the general
registers and the printf output fd; it withdraws them when they are dropped, asks nothing for a plain
breakpoint, and takes a verdict the backend reports as it is.
"""

from __future__ import annotations

import pytest

from ptstub.events import BreakpointHit, SignalReceived, Verdict
from ptstub.target import AgentCode
from tests.session.conftest import Transcript, connect_all_stop
from tests.session.fake import FakeProcess
from tests.session.test_allstop import LEADER_STOP, WORKER_REGS

NEVER = bytes([0x22, 0, 0x27])  # const8 0, end
RDI = 5  # GDB's number for rdi, at offset 14 * 8 of the user_regs_struct


@pytest.fixture
def gdb(process: FakeProcess, wake_fd: int) -> Transcript:
    return connect_all_stop(process, wake_fd)


def test_a_condition_is_handed_over_and_withdrawn(gdb: Transcript, process: FakeProcess) -> None:
    process.judges = True
    gdb.exchange(b"Z0,400010,1", b"OK")
    assert process.judged == []  # a plain breakpoint: nothing to judge, nothing asked
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")
    address, code = process.judged[-1]
    assert address == 0x400010 and isinstance(code, AgentCode)
    assert (code.conditions, code.commands, code.output_fd) == ((NEVER,), (), 1)
    assert code.registers[RDI] == (14 * 8, 8) and code.registers[0] == (10 * 8, 8)  # rdi; rax
    gdb.exchange(b"Z0,400010,1", b"OK")  # re-sent without a condition: the backend stops judging
    assert process.judged[-1] == (0x400010, None)
    count = len(process.judged)
    gdb.exchange(b"z0,400010,1", b"OK")
    assert len(process.judged) == count  # nothing judged there any more: not asked again


def test_a_hardware_breakpoint_at_the_address_keeps_it_with_the_session(gdb: Transcript, process: FakeProcess) -> None:
    process.judges = True
    gdb.exchange(b"Z1,400010,1", b"OK")
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")
    assert process.judged[-1] == (0x400010, None)


def test_a_verdict_of_the_backend_is_taken_as_it_is(gdb: Transcript, process: FakeProcess) -> None:
    """The condition is false in Python, but the backend judged the hit (other threads ran since):
    a REPORT verdict is reported, with no second evaluation."""
    process.judges = True
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")
    process.events.append(BreakpointHit(100, 0x400010, engine_verdict=Verdict.REPORT))
    gdb.exchange(b"vCont;c", b"T05swbreak:;" + LEADER_STOP[3:])


def test_a_backend_that_cannot_judge_leaves_the_session_judging(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")
    assert process.judged[-1][1] is not None  # offered, refused
    process.events.extend([BreakpointHit(100, 0x400010), SignalReceived(101, 0x400010, 10)])
    gdb.exchange(b"vCont;c", b"T1e" + WORKER_REGS)  # the false condition hid the hit
    count = len(process.judged)
    gdb.exchange(b"z0,400010,1", b"OK")
    assert len(process.judged) == count  # never judged there: nothing to withdraw

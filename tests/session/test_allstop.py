"""All-stop packet transcripts over one fake process (pid 0x64, threads 0x64 and 0x65)."""

from __future__ import annotations

import re

import pytest

from ptstub.events import BreakpointHit, Exited, Interrupted, SignalReceived, StepDone
from ptstub.rsp.framing import expand_runs
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind
from tests.session.conftest import GDB_FEATURES, Transcript, connect_all_stop
from tests.session.fake import FakeProcess

LEADER_STOP = b"T0506:0410000000000000;07:1310000000000000;10:1000400000000000;thread:p64.64;"
WORKER_REGS = b"06:0420000000000000;07:1320000000000000;10:1000400000000000;thread:p64.65;"


@pytest.fixture
def gdb(process: FakeProcess, wake_fd: int) -> Transcript:
    transcript = connect_all_stop(process, wake_fd)
    return transcript


def test_connection_start(gdb: Transcript) -> None:
    reply = gdb.replies(GDB_FEATURES)[0]
    for feature in (b"multiprocess+", b"swbreak+", b"hwbreak+", b"vContSupported+", b"QNonStop+", b"no-resumed+"):
        assert feature in reply.split(b";")
    gdb.exchange(b"?", LEADER_STOP)
    gdb.exchange(b"qC", b"QCp64.64")
    gdb.exchange(b"qAttached", b"0")
    gdb.exchange(b"vCont?", b"vCont;c;C;t;s;S;r")
    gdb.exchange(b"qfThreadInfo", b"mp64.64,p64.65")
    gdb.exchange(b"qsThreadInfo", b"l")
    gdb.exchange(b"qXfer:features:read:target.xml:0,20", b'm<?xml version="1.0"?>\n<!DOCTYPE ')
    gdb.exchange(b"qXfer:exec-file:read::0,100", b"l/bin/fake")
    gdb.exchange(b"qXfer:auxv:read::0,100", b"l" + bytes([6] + [0] * 7 + [0, 0x10] + [0] * 22))


def test_thread_list_document(gdb: Transcript) -> None:
    gdb.exchange(
        b"qXfer:threads:read::0,1000",
        b'l<threads>\n<thread id="p64.64" core="0" name="main" handle="00400600007f0000"/>\n'
        b'<thread id="p64.65" core="1" name="worker1" handle="00500600007f0000"/>\n</threads>\n',
    )
    gdb.exchange(b"T65", b"OK")
    gdb.exchange(b"Tp64.65", b"OK")
    gdb.exchange(b"T99", b"E01")


def test_registers(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Hg0", b"OK")
    gdb.exchange(b"p10", b"1000400000000000")
    gdb.exchange(b"P10=1100400000000000", b"OK")
    gdb.exchange(b"p10", b"1100400000000000")
    assert process.gpr[100][128:136] == (0x400011).to_bytes(8, "little")
    whole = expand_runs(gdb.replies(b"g")[0])
    assert whole.startswith(b"0a10000000000000")
    gdb.exchange(b"G" + whole, b"OK")
    gdb.exchange(b"G00", b"E16")  # a `G` of the wrong size: EINVAL
    gdb.exchange(b"Hgp64.65", b"OK")
    gdb.exchange(b"p10", b"1000400000000000")
    gdb.exchange(b"p6", b"0420000000000000")
    gdb.exchange(b"Hg99", b"E03")


def test_memory(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"m400000,10", b"000102030405060708090a0b0c0d0e0f")
    gdb.exchange(b"M400000,2:aabb", b"OK")
    gdb.exchange(b"m400000,4", b"aabb0203")
    gdb.exchange(b"X400002,2:xy", b"OK")
    gdb.exchange(b"m400000,4", b"aabb7879")
    gdb.exchange(b"X400000,0:", b"OK")
    gdb.exchange(b"m0,4", b"E05")
    gdb.exchange(b"M0,1:00", b"E05")
    assert process.memory[:4] == b"\xaa\xbbxy"


def test_malformed_packets_get_an_error_or_empty_reply(gdb: Transcript) -> None:
    gdb.exchange(b"m400000", b"E01")
    gdb.exchange(b"mzz,1", b"E01")
    gdb.exchange(b"M400000,2:aa", b"E01")
    gdb.exchange(b"Z0,400010", b"E01")
    gdb.exchange(b"Hgxyz", b"E01")
    gdb.exchange(b"vCont;q", b"E01")
    gdb.exchange(b"qTStatus", b"")
    gdb.exchange(b"vMustReplyEmpty", b"")
    gdb.exchange(b"pzz", b"E01")


def test_breakpoints(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Z0,400010,1", b"OK")
    gdb.exchange(b"Z0,400010,1", b"OK")  # idempotent: the int3 is re-written
    assert process.breakpoints == {(0x400010, BreakpointKind.SOFTWARE, 1)}
    assert process.reinserted == [0x400010]
    gdb.exchange(b"Z1,400020,1", b"OK")
    gdb.exchange(b"Z2,400030,4", b"OK")
    gdb.exchange(b"Z3,400030,4", b"")  # no read watchpoints on x86
    gdb.exchange(b"Z4,400038,8", b"OK")
    gdb.exchange(b"Z0,10,1", b"E05")
    assert len(process.breakpoints) == 4
    gdb.exchange(b"z0,400010,1", b"OK")
    gdb.exchange(b"z1,400020,1", b"OK")
    gdb.exchange(b"z2,400030,4", b"OK")
    gdb.exchange(b"z2,400030,4", b"OK")  # not inserted: nothing to do
    gdb.exchange(b"z4,400038,8", b"OK")
    gdb.exchange(b"m400010,1", b"10")  # a removed int3 leaves memory by the next request that could tell
    assert process.breakpoints == set()


def test_continue_to_a_breakpoint(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Z0,400010,1", b"OK")
    process.events.append(BreakpointHit(101, 0x400010))
    gdb.exchange(b"vCont;c", b"T05swbreak:;" + WORKER_REGS)
    assert process.resumes[-1] == {100: ResumeAction(), 101: ResumeAction()}
    gdb.exchange(b"qC", b"QCp64.65")
    gdb.exchange(b"?", b"T05swbreak:;" + WORKER_REGS)
    gdb.exchange(b"p10", b"1000400000000000")  # Hg follows the reported thread


def test_false_condition_hides_the_hit(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Z0,400010,1;X3,220027", b"OK")  # condition: const8 0, end
    process.events.extend([BreakpointHit(100, 0x400010), SignalReceived(101, 0x400010, 10)])
    gdb.exchange(b"vCont;c", b"T1e" + WORKER_REGS)
    assert len(process.resumes) == 2  # resumed again as GDB did, past the hit nobody hears of
    gdb.exchange(b"Z0,400010,1;X3,220127", b"OK")  # const8 1: re-sent, the new condition replaces it
    process.events.append(BreakpointHit(100, 0x400010))
    gdb.exchange(b"vCont;c", b"T05swbreak:;" + LEADER_STOP[3:])
    gdb.exchange(b"Z0,400010,1;X1,22", b"E01")  # malformed bytecode changes nothing


def test_step_and_vcont_actions(gdb: Transcript, process: FakeProcess) -> None:
    process.events.append(StepDone(101, 0x400010))
    gdb.exchange(b"vCont;s:65", b"T05" + WORKER_REGS)
    assert process.resumes[-1] == {101: ResumeAction(ResumeKind.STEP)}
    process.events.append(StepDone(101, 0x400010))
    gdb.exchange(b"vCont;S0a:p64.65;c", b"T05" + WORKER_REGS)
    assert process.resumes[-1] == {101: ResumeAction(ResumeKind.STEP, 7), 100: ResumeAction()}  # GDB 10 is SIGBUS
    process.events.append(StepDone(100, 0x400010))
    gdb.exchange(b"vCont;r400000,400020:64", b"T05" + LEADER_STOP[3:])
    assert process.resumes[-1] == {100: ResumeAction(ResumeKind.RANGE_STEP, 0, 0x400000, 0x400020)}
    gdb.exchange(b"vCont;c:99", b"N")  # nothing to resume: no-resumed


def test_legacy_continue_and_step(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Hc65", b"OK")
    process.events.append(Interrupted(101, 0x400010))
    gdb.exchange(b"s", b"T02" + WORKER_REGS)
    assert process.resumes[-1] == {101: ResumeAction(ResumeKind.STEP)}
    process.events.append(Interrupted(100, 0x400010))
    gdb.exchange(b"C0f", b"T02" + LEADER_STOP[3:])
    assert process.resumes[-1] == {100: ResumeAction(), 101: ResumeAction(ResumeKind.CONTINUE, 15)}


def test_ctrl_c_while_running(gdb: Transcript, process: FakeProcess, wake_fd: int) -> None:
    assert gdb.session.handle_packet(b"vCont;c") == []
    assert gdb.session.running
    assert gdb.session.wait_for_stop(wake_fd) is None  # nothing yet: GDB's turn
    gdb.session.interrupt()
    assert gdb.session.wait_for_stop(wake_fd) == b"T02" + LEADER_STOP[3:]
    assert not gdb.session.running


def test_exit_is_reported_and_remembered(gdb: Transcript, process: FakeProcess) -> None:
    process.events.append(Exited(100, 3))
    gdb.exchange(b"vCont;c", b"W3;process:64")
    gdb.exchange(b"?", b"W3;process:64")
    assert gdb.session.exit_requested


def test_kill_ends_the_session(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"k")
    assert process.killed and gdb.session.finished


def test_detach_leaves_the_program(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"Z0,400010,1", b"OK")
    gdb.exchange(b"D", b"OK")
    assert process.detached and gdb.session.finished


def test_monitor_and_host_files(gdb: Transcript) -> None:
    help_reply = gdb.replies(b"qRcmd,68656c70")  # help
    assert help_reply[1] == b"OK" and help_reply[0].startswith(b"O54686520666f6c6c6f77")
    gdb.exchange(b"qRcmd,78797a", re.compile(rb"O556e6b6e6f776e.*"), b"E01")  # xyz
    gdb.exchange(b"vFile:open:2f6e6f6e6578697374656e74,0,0", b"F-1,2")
    gdb.exchange(b"vFile:close:63", b"F-1,9")
    gdb.exchange(b"vFile:setfs:0", b"F0")


def test_signals_and_options(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"QPassSignals:e;10", b"OK")
    assert process.pass_signals == {14, 23}  # SIGALRM; GDB 16 is SIGURG
    gdb.exchange(b"QProgramSignals:2", b"OK")
    gdb.exchange(b"QCatchSyscalls:1;3c", b"OK")
    assert process.options["catch_syscalls"] is True
    gdb.exchange(b"QCatchSyscalls:0", b"OK")
    gdb.exchange(b"QThreadEvents:1", b"OK")
    assert process.options["thread_exits"] is True
    gdb.exchange(b"QDisableRandomization:1", b"OK")
    gdb.exchange(b"QEnvironmentReset", b"OK")
    gdb.exchange(b"QStartupWithShell:0", b"OK")


def test_siginfo_and_tls(gdb: Transcript, process: FakeProcess) -> None:
    gdb.exchange(b"qXfer:siginfo:read::0,4", b"m" + bytes(4))
    gdb.exchange(b"qXfer:siginfo:write::0:\x01\x02", b"2")
    assert process.siginfo[:2] == b"\x01\x02"
    gdb.exchange(b"qGetTLSAddr:p64.65,10,0", b"7f0000065010")


def test_impossible_requests_get_einval(gdb: Transcript) -> None:
    gdb.exchange(b"qCRC:400000,ffffffffffff", b"E16")
    gdb.exchange(b"qXfer:exec-file:read:zz:0,100", b"E16")
    gdb.exchange(b"vFile:open:2f746d702f00782f,0,0", b"E16")  # a NUL byte in the path
    gdb.exchange(b"qSearch:memory:fffffffffffffff0;100;01", b"E05")  # unreadable, not past 2**64
    gdb.exchange(b"qCRC:400000,10", re.compile(rb"C[0-9a-f]+"))

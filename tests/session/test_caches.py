"""The session's per-stop caches (design-notes, "Speed with GDB in the loop") against the typed fake.

What GDB reads while the world is stopped is kept until something can change it: a register write
(`G`, `P`), a resume, a new stop. Each test counts the target's reads and checks that a reply after
such a change shows the new state, never the cached one.
"""

from __future__ import annotations

import pytest

from ptstub.events import BreakpointHit
from ptstub.rsp.framing import expand_runs
from ptstub.session import Session
from tests.session.conftest import Transcript, connect_all_stop
from tests.session.fake import FakeProcess, make_gpr

PID = 100
RIP_OFFSET = 16 * 8  # user_regs_struct.rip
THREADS = b"qXfer:threads:read::0,1000"


@pytest.fixture
def gdb(process: FakeProcess, wake_fd: int) -> Transcript:
    return connect_all_stop(process, wake_fd)


def rip_of_g(session: Session, reply: bytes) -> int:
    layout = session.regs.layout_for(PID)
    reg = layout.registers[layout.regnum("rip")]
    raw = bytes.fromhex(expand_runs(reply).decode())
    return int.from_bytes(raw[reg.g_offset : reg.g_offset + 8], "little")


def g(gdb: Transcript) -> bytes:
    return gdb.replies(b"g")[0]


def resume_and_stop(gdb: Transcript, process: FakeProcess, rip: int) -> bytes:
    """`vCont;c`, the program runs and moves the pc of the main thread, which stops again."""
    process.gpr[PID] = make_gpr(rip)
    process.events.append(BreakpointHit(PID, rip))
    (reply,) = gdb.replies(b"vCont;c")
    return reply


def test_g_is_read_from_the_target_once_per_stop(gdb: Transcript, process: FakeProcess) -> None:
    first = g(gdb)
    reads = process.register_reads
    assert g(gdb) == first
    assert process.register_reads == reads
    assert rip_of_g(gdb.session, first) == 0x400010


def test_g_after_a_register_write_shows_the_write(gdb: Transcript, process: FakeProcess) -> None:
    g(gdb)
    gdb.exchange(b"P10=%s" % (0x1234).to_bytes(8, "little").hex().encode(), b"OK")
    assert rip_of_g(gdb.session, g(gdb)) == 0x1234
    assert process.gpr[PID][RIP_OFFSET : RIP_OFFSET + 8] == (0x1234).to_bytes(8, "little")
    whole = bytearray(bytes.fromhex(expand_runs(g(gdb)).decode()))
    layout = gdb.session.regs.layout_for(PID)
    reg = layout.registers[layout.regnum("rip")]
    whole[reg.g_offset : reg.g_offset + 8] = (0x5678).to_bytes(8, "little")
    gdb.exchange(b"G" + bytes(whole).hex().encode(), b"OK")
    assert rip_of_g(gdb.session, g(gdb)) == 0x5678


def test_g_after_a_resume_is_read_again(gdb: Transcript, process: FakeProcess) -> None:
    g(gdb)
    stop = resume_and_stop(gdb, process, 0x3000)
    assert b"10:0030000000000000" in stop  # rip expedited from the new registers
    assert rip_of_g(gdb.session, g(gdb)) == 0x3000


def test_g_of_another_thread_is_its_own(gdb: Transcript, process: FakeProcess) -> None:
    process.gpr[PID + 1] = make_gpr(0x2000)
    assert rip_of_g(gdb.session, g(gdb)) == 0x400010
    gdb.exchange(b"Hgp%x.%x" % (PID, PID + 1), b"OK")
    assert rip_of_g(gdb.session, g(gdb)) == 0x2000


def test_thread_list_is_built_again_after_a_resume(gdb: Transcript, process: FakeProcess) -> None:
    first = gdb.replies(THREADS)[0]
    assert b'name="worker1"' in first
    assert gdb.replies(THREADS) == [first]
    process.names[PID + 1] = "renamed"
    resume_and_stop(gdb, process, 0x400010)
    assert b'name="renamed"' in gdb.replies(THREADS)[0]
    del process.gpr[PID + 1]  # the worker exited while the program ran
    resume_and_stop(gdb, process, 0x400010)
    assert b"renamed" not in gdb.replies(THREADS)[0]


def test_thread_handles_appear_once_tls_is_set_up(gdb: Transcript, process: FakeProcess) -> None:
    """No `handle` while fs_base is 0 (gdbserver has none before libthread_db knows the thread); the
    pthread_t as 8 little-endian bytes once it is set, in a list built again, not the cached one."""
    process.pointers = {PID: 0, PID + 1: 0}
    assert b"handle=" not in gdb.replies(THREADS)[0]
    process.pointers = {PID: 0x7FFFF7DD2740, PID + 1: 0x7FFFF75D06C0}
    resume_and_stop(gdb, process, 0x400010)
    document = gdb.replies(THREADS)[0]
    assert b'<thread id="p64.64" core="0" name="main" handle="4027ddf7ff7f0000"/>' in document
    assert b'<thread id="p64.65" core="1" name="worker1" handle="c0065df7ff7f0000"/>' in document


def test_a_thread_sharing_another_ones_fs_base_has_no_handle(gdb: Transcript, process: FakeProcess) -> None:
    """A raw clone(2) without CLONE_SETTLS runs on its parent's TLS: it is not a pthread of its own,
    and the parent, listed first, keeps the handle (gdbserver's libthread_db lookup drops the child)."""
    process.pointers = {PID: 0x7FFFF7DD2740, PID + 1: 0x7FFFF7DD2740}
    resume_and_stop(gdb, process, 0x400010)
    document = gdb.replies(THREADS)[0]
    assert document.count(b"handle=") == 1
    assert b'<thread id="p64.64" core="0" name="main" handle="4027ddf7ff7f0000"/>' in document

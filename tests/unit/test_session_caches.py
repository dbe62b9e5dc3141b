"""The session's per-stop caches (design-notes, "Speed with GDB in the loop") against a fake target.

What GDB reads while the world is stopped is kept until something can change it: a register write
(`G`, `P`), a resume, a new stop. Each test counts the target's reads and checks that a reply after
such a change shows the new state, never the cached one.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

import pytest

from ptstub.arch import xsave
from ptstub.events import BreakpointHit, StopEvent
from ptstub.rsp.framing import expand_runs
from ptstub.session import Session
from ptstub.target import ResumeAction, ThreadInfo, ThreadState

PID = 100
RIP_OFFSET = 16 * 8  # user_regs_struct.rip


@pytest.fixture(autouse=True)
def no_cpuid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PKRU placement from the image size alone, whatever CPU runs the tests (as test_arch_x86_64)."""
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: None)
    yield


def make_gpr(rip: int) -> bytes:
    values = [0x1122334455667700 + i for i in range(27)]
    values[16] = rip
    return struct.pack("<27Q", *values)


def make_xstate(size: int = 2440) -> bytes:
    xs = bytearray(size)
    struct.pack_into("<QQ", xs, 464, 0x207, 0)  # XCR0 in the sw_reserved bytes: x87, SSE, AVX, PKRU
    struct.pack_into("<Q", xs, 512, 0x207)
    return bytes(xs)


class FakeTarget:
    """Two stopped threads whose registers and names the test changes between stops."""

    pid = PID
    alive = True
    world_resumes = 0  # names are read at every threads() here: nothing to refresh

    def refresh_names(self) -> None:
        pass

    def __init__(self) -> None:
        self.gpr = {PID: make_gpr(0x1000), PID + 1: make_gpr(0x2000)}
        self.xstate = make_xstate()
        self.names = {PID: "main", PID + 1: "worker"}
        self.pointers: dict[int, int] = {}  # tid -> fs_base (its pthread_t); 0 when absent
        self.register_reads = 0
        self.thread_reads = 0
        self.next_event: StopEvent = BreakpointHit(PID, 0x1000)

    def has_thread(self, tid: int) -> bool:
        return tid in self.gpr

    def thread_ids(self) -> list[int]:
        return list(self.gpr)

    def threads(self) -> list[ThreadInfo]:
        self.thread_reads += 1
        return [
            ThreadInfo(tid, self.names[tid], -1, ThreadState.STOPPED, self.pointers.get(tid, 0)) for tid in self.gpr
        ]

    def read_gpr(self, tid: int) -> bytes:
        self.register_reads += 1
        return self.gpr[tid]

    def read_xstate(self, tid: int) -> bytes:
        self.register_reads += 1
        return self.xstate

    def write_gpr(self, tid: int, data: bytes) -> None:
        self.gpr[tid] = data

    def write_xstate(self, tid: int, data: bytes) -> None:
        self.xstate = data

    def resume(self, actions: Mapping[int, ResumeAction], default: ResumeAction | None = None) -> None:
        pass

    def wait(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        return self.next_event

    def set_options(self, **options: bool) -> None:
        pass

    def set_pass_signals(self, signals: set[int]) -> None:
        pass


def rip_of_g(session: Session, reply: bytes) -> int:
    layout = session.regs.layout_for(PID)
    reg = layout.registers[layout.regnum("rip")]
    raw = bytes.fromhex(expand_runs(reply).decode())
    return int.from_bytes(raw[reg.g_offset : reg.g_offset + 8], "little")


@pytest.fixture
def stopped() -> tuple[Session, FakeTarget]:
    target = FakeTarget()
    session = Session(target)
    session.handle_packet(b"qSupported:multiprocess+;swbreak+")
    session.handle_packet(b"QStartNoAckMode")
    return session, target


def resume_and_stop(session: Session, target: FakeTarget, rip: int) -> bytes:
    """`vCont;c`, the program runs and moves the pc of the main thread, which stops again."""
    assert session.handle_packet(b"vCont;c") == []
    target.gpr[PID] = make_gpr(rip)
    target.next_event = BreakpointHit(PID, rip)
    reply = session.wait_for_stop(-1)
    assert reply is not None
    return reply


def test_g_is_read_from_the_target_once_per_stop(stopped: tuple[Session, FakeTarget]) -> None:
    session, target = stopped
    first = session.handle_packet(b"g")[0]
    reads = target.register_reads
    assert session.handle_packet(b"g") == [first]
    assert target.register_reads == reads
    assert rip_of_g(session, first) == 0x1000


def test_g_after_a_register_write_shows_the_write(stopped: tuple[Session, FakeTarget]) -> None:
    session, target = stopped
    session.handle_packet(b"g")
    assert session.handle_packet(b"P10=%s" % (0x1234).to_bytes(8, "little").hex().encode()) == [b"OK"]
    assert rip_of_g(session, session.handle_packet(b"g")[0]) == 0x1234
    assert target.gpr[PID][RIP_OFFSET : RIP_OFFSET + 8] == (0x1234).to_bytes(8, "little")
    whole = bytearray(bytes.fromhex(expand_runs(session.handle_packet(b"g")[0]).decode()))
    layout = session.regs.layout_for(PID)
    reg = layout.registers[layout.regnum("rip")]
    whole[reg.g_offset : reg.g_offset + 8] = (0x5678).to_bytes(8, "little")
    assert session.handle_packet(b"G" + bytes(whole).hex().encode()) == [b"OK"]
    assert rip_of_g(session, session.handle_packet(b"g")[0]) == 0x5678


def test_g_after_a_resume_is_read_again(stopped: tuple[Session, FakeTarget]) -> None:
    session, target = stopped
    session.handle_packet(b"g")
    stop = resume_and_stop(session, target, 0x3000)
    assert b"10:0030000000000000" in stop  # rip expedited from the new registers
    assert rip_of_g(session, session.handle_packet(b"g")[0]) == 0x3000


def test_g_of_another_thread_is_its_own(stopped: tuple[Session, FakeTarget]) -> None:
    session, _ = stopped
    assert rip_of_g(session, session.handle_packet(b"g")[0]) == 0x1000
    assert session.handle_packet(b"Hgp%x.%x" % (PID, PID + 1)) == [b"OK"]
    assert rip_of_g(session, session.handle_packet(b"g")[0]) == 0x2000


def test_thread_list_is_built_again_after_a_resume(stopped: tuple[Session, FakeTarget]) -> None:
    session, target = stopped
    first = session.handle_packet(b"qXfer:threads:read::0,1000")[0]
    assert b'name="worker"' in first
    assert session.handle_packet(b"qXfer:threads:read::0,1000") == [first]
    target.names[PID + 1] = "renamed"
    resume_and_stop(session, target, 0x1000)
    assert b'name="renamed"' in session.handle_packet(b"qXfer:threads:read::0,1000")[0]
    del target.gpr[PID + 1]  # the worker exited while the program ran
    resume_and_stop(session, target, 0x1000)
    assert b"renamed" not in session.handle_packet(b"qXfer:threads:read::0,1000")[0]


def test_thread_handles_appear_once_tls_is_set_up(stopped: tuple[Session, FakeTarget]) -> None:
    """No `handle` while fs_base is 0 (gdbserver has none before libthread_db knows the thread); the
    pthread_t as 8 little-endian bytes once it is set, in a list built again, not the cached one."""
    session, target = stopped
    assert b"handle=" not in session.handle_packet(b"qXfer:threads:read::0,1000")[0]
    target.pointers = {PID: 0x7FFFF7DD2740, PID + 1: 0x7FFFF75D06C0}
    resume_and_stop(session, target, 0x1000)
    document = session.handle_packet(b"qXfer:threads:read::0,1000")[0]
    assert b'<thread id="p64.64" name="main" handle="4027ddf7ff7f0000"/>' in document
    assert b'<thread id="p64.65" name="worker" handle="c0065df7ff7f0000"/>' in document


def test_a_thread_sharing_another_ones_fs_base_has_no_handle(stopped: tuple[Session, FakeTarget]) -> None:
    """A raw clone(2) without CLONE_SETTLS runs on its parent's TLS: it is not a pthread of its own,
    and the parent, listed first, keeps the handle (gdbserver's libthread_db lookup drops the child)."""
    session, target = stopped
    target.pointers = {PID: 0x7FFFF7DD2740, PID + 1: 0x7FFFF7DD2740}
    resume_and_stop(session, target, 0x1000)
    document = session.handle_packet(b"qXfer:threads:read::0,1000")[0]
    assert document.count(b"handle=") == 1
    assert b'<thread id="p64.64" name="main" handle="4027ddf7ff7f0000"/>' in document

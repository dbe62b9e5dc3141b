"""Reply encoders, checked against gdbserver 13.1's wire bytes for the same values."""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

import pytest

from ptstub.events import (
    BreakpointHit,
    Exec,
    Forked,
    Interrupted,
    SignalReceived,
    StepDone,
    SyscallStop,
    VforkDone,
    WatchKind,
    WatchpointHit,
)
from ptstub.rsp import replies as r
from ptstub.rsp.framing import encode_packet, expand_runs, unescape_binary
from ptstub.rsp.threadid import ALL, ThreadId


def _regs(rbp: str, rsp: str, rip: str) -> list[tuple[int, bytes]]:
    return [(6, bytes.fromhex(rbp)), (7, bytes.fromhex(rsp)), (0x10, bytes.fromhex(rip))]


def test_breakpoint_stop_reply_matches_gdbserver() -> None:
    body = r.stop_reply_signal(
        5,
        ThreadId(0xD06, 0xFF6),
        _regs("a80eddf7ff7f0000", "a80eddf7ff7f0000", "7f51555555550000"),
        r.SOFTWARE_BREAKPOINT,
        core=0,
    )
    assert body == (b"T05swbreak:;06:a80eddf7ff7f0000;07:a80eddf7ff7f0000;10:7f51555555550000;thread:pd06.ff6;core:0;")
    assert encode_packet(body) == (
        b'$T05swbreak:;06:a80eddf7ff7f0* ;07:a80eddf7ff7f0* ;10:7f515*"550* ;thread:pd06.ff6;core:0;#a3'
    )


def test_initial_stop_reply_matches_gdbserver() -> None:
    body = r.stop_reply_signal(
        5, ThreadId(0xD06, 0xD06), _regs("0000000000000000", "10e8ffffff7f0000", "704bfef7ff7f0000"), core=1
    )
    assert encode_packet(body) == b'$T0506:0*,;07:10e8f*"7f0* ;10:704bfef7ff7f0* ;thread:pd06.d06;core:1;#49'


def test_watchpoint_stop_reply_matches_gdbserver() -> None:
    reason = r.StopReason(r.StopReasonKind.WATCH, address=0x555555558084)
    body = r.stop_reply_signal(
        5,
        ThreadId(0x1B4B, 0x1B4B),
        _regs("00e7ffffff7f0000", "f0e6ffffff7f0000", "7a51555555550000"),
        reason,
        core=1,
    )
    assert encode_packet(body) == (
        b'$T05watch:0* 5*"558084;06:00e7f*"7f0* ;07:f0e6f*"7f0* ;10:7a515*"550* ;thread:p1b4b.1b4b;core:1;#59'
    )


def test_syscall_stop_reply_matches_gdbserver() -> None:
    reason = r.StopReason(r.StopReasonKind.SYSCALL_ENTRY, syscall=0x27)
    body = r.stop_reply_signal(
        5,
        ThreadId(0x1B4B, 0x1B4B),
        _regs("00e7ffffff7f0000", "e8e6ffffff7f0000", "e7a4eaf7ff7f0000"),
        reason,
        core=0,
    )
    assert encode_packet(body) == (
        b'$T05syscall_entry:27;06:00e7f*"7f0* ;07:e8e6f*"7f0* ;10:e7a4eaf7ff7f0* ;thread:p1b4b.1b4b;core:0;#18'
    )


def test_interrupt_stop_reply_matches_gdbserver() -> None:
    body = r.stop_reply_signal(
        2, ThreadId(0x1DB3, 0x1DB3), _regs("00e7ffffff7f0000", "f8e6ffffff7f0000", "d08deaf7ff7f0000"), core=1
    )
    assert encode_packet(body) == (
        b'$T0206:00e7f*"7f0* ;07:f8e6f*"7f0* ;10:d08deaf7ff7f0* ;thread:p1db3.1db3;core:1;#ae'
    )


def test_stop_reply_signals_are_translated() -> None:
    assert r.stop_reply_signal(10, None) == b"T1e"  # SIGUSR1
    assert r.stop_reply_signal(7, None) == b"T0a"  # SIGBUS
    assert r.stop_reply_signal(34, None) == b"T2e"  # SIGRTMIN = GDB_SIGNAL_REALTIME_34
    assert r.stop_reply_signal(11, ThreadId(5, 6), multiprocess=False) == b"T0bthread:6;"


def test_event_reasons() -> None:
    tid = ThreadId(0x10, 0x11)
    fork = r.StopReason(r.StopReasonKind.FORK, child=ThreadId(0x20, 0x20))
    assert r.stop_reply_signal(5, tid, (), fork) == b"T05fork:p20.20;thread:p10.11;"
    vfork = r.StopReason(r.StopReasonKind.VFORK, child=ThreadId(0x20, 0x20))
    assert r.stop_reply_signal(0, tid, (), vfork) == b"T05vfork:p20.20;thread:p10.11;"  # always SIGTRAP
    assert r.stop_reply_signal(5, tid, (), r.VFORK_DONE) == b"T05vforkdone:;thread:p10.11;"
    execd = r.StopReason(r.StopReasonKind.EXEC, path=b"/bin/true")
    assert r.stop_reply_signal(5, tid, (), execd) == b"T05exec:2f62696e2f74727565;thread:p10.11;"
    ret = r.StopReason(r.StopReasonKind.SYSCALL_RETURN, syscall=0xE7)
    assert r.stop_reply_signal(5, tid, (), ret) == b"T05syscall_return:e7;thread:p10.11;"
    assert r.stop_reply_signal(5, tid, (), r.HARDWARE_BREAKPOINT) == b"T05hwbreak:;thread:p10.11;"
    rwatch = r.StopReason(r.StopReasonKind.READ_WATCH, address=0x1000)
    assert r.stop_reply_signal(5, tid, (), rwatch) == b"T05rwatch:0000000000001000;thread:p10.11;"
    assert r.stop_reply_signal(5, tid, library_changed=True) == b"T05thread:p10.11;library:;"
    assert r.stop_reply_signal(5, tid, (), r.THREAD_CREATED) == b"T05create:;thread:p10.11;"


def test_stop_reason_for_events() -> None:
    assert r.stop_reason_for(BreakpointHit(1, 0x1000)) == (5, r.SOFTWARE_BREAKPOINT)
    assert r.stop_reason_for(BreakpointHit(1, 0x1000, hardware=True)) == (5, r.HARDWARE_BREAKPOINT)
    assert r.stop_reason_for(WatchpointHit(1, 0x1000, 0x2000, WatchKind.ACCESS)) == (
        5,
        r.StopReason(r.StopReasonKind.ACCESS_WATCH, address=0x2000),
    )
    assert r.stop_reason_for(StepDone(1, 0x1000)) == (5, None)
    assert r.stop_reason_for(SignalReceived(1, 0x1000, 10)) == (10, None)
    assert r.stop_reason_for(Interrupted(1, 0x1000)) == (2, None)
    assert r.stop_reason_for(Forked(1, 0x1000, 77, vfork=True)) == (
        5,
        r.StopReason(r.StopReasonKind.VFORK, child=ThreadId(77, 77)),
    )
    assert r.stop_reason_for(VforkDone(1, 0x1000)) == (5, r.VFORK_DONE)
    assert r.stop_reason_for(Exec(1, 0x1000, "/bin/true")) == (
        5,
        r.StopReason(r.StopReasonKind.EXEC, path=b"/bin/true"),
    )
    assert r.stop_reason_for(SyscallStop(1, 0x1000, 39, returned=False)) == (
        5,
        r.StopReason(r.StopReasonKind.SYSCALL_ENTRY, syscall=39),
    )


def test_process_end_replies_match_gdbserver() -> None:
    assert encode_packet(r.exited(3, 0x1C55)) == b"$W3;process:1c55#fc"
    assert encode_packet(r.killed(10, 0x1CB7)) == b"$X1e;process:1cb7#8f"  # SIGUSR1 killed it
    assert r.exited(0, None) == b"W00"
    assert r.killed(9, None) == b"X09"
    assert r.no_resumed() == b"N"
    assert r.thread_exited(0, ThreadId(0x10, 0x11)) == b"w0;p10.11"


def test_standard_replies() -> None:
    assert r.ok() == b"OK"
    assert r.unsupported() == b""
    assert r.error(1) == b"E01"
    assert r.error(0x16) == b"E16"
    assert r.error(0x1FF) == b"Eff"
    assert encode_packet(r.error_message("Btrace not enabled.")) == b"$E.Btrace not enabled.#4e"
    assert r.hex_bytes(b"\x00\xff") == b"00ff"
    assert r.register_list([b"\x01\x00", b"\xff"]) == b"0100ff"


def test_thread_replies() -> None:
    threads = [ThreadId(0xD06, 0xD06), ThreadId(0xD06, 0xFF6)]
    assert r.thread_list(threads) == b"mpd06.d06,pd06.ff6"
    assert r.thread_list(threads, multiprocess=False) == b"md06,ff6"
    assert r.thread_list([]) == b"l"
    assert r.thread_list_end() == b"l"
    assert r.current_thread(ThreadId(0xD06, 0xFF6)) == b"QCpd06.ff6"
    assert r.thread_alive(True) == b"OK" and r.thread_alive(False) == b"E01"
    assert r.thread_extra_info(b"Name: mt") == b"4e616d653a206d74"


def test_threads_xml_matches_gdbserver() -> None:
    threads = [
        r.ThreadDescription(ThreadId(0xD06, 0xD06), 1, "mt", bytes.fromhex("4027ddf7ff7f0000")),
        r.ThreadDescription(ThreadId(0xD06, 0xFF6), 0, "mt", bytes.fromhex("c016ddf7ff7f0000")),
    ]
    document = r.threads_xml(threads)
    assert encode_packet(r.qxfer_chunk(document, 0, 0x1000)) == (
        b'$l<threads>\n<thread id="pd06.d06" core="1" name="mt" handle="4027ddf7ff7f0* "/>\n'
        b'<thread id="pd06.ff6" core="0" name="mt" handle="c016ddf7ff7f0* "/>\n</threads>\n#f3'
    )
    single = r.threads_xml([r.ThreadDescription(ThreadId(0xD06, 0xD06), 1, "mt")])
    assert encode_packet(r.qxfer_chunk(single, 0, 0x1000)) == (
        b'$l<threads>\n<thread id="pd06.d06" core="1" name="mt"/>\n</threads>\n#e2'
    )


def test_thread_names_are_escaped_for_xml() -> None:
    document = r.threads_xml([r.ThreadDescription(ThreadId(1, 2), None, "a<b>&\"c'\x01é")])
    assert document == (b'<threads>\n<thread id="p1.2" name="a&lt;b&gt;&amp;&quot;c&apos;?\xc3\xa9"/>\n</threads>\n')
    assert r.threads_xml([r.ThreadDescription(ThreadId(1, 2), None, "\udcff")]).count(b"?") == 1


def test_qxfer_chunks() -> None:
    document = b"0123456789"
    assert r.qxfer_chunk(document, 0, 4) == b"m0123"
    assert r.qxfer_chunk(document, 4, 6) == b"l456789"
    assert r.qxfer_chunk(document, 8, 100) == b"l89"
    assert r.qxfer_chunk(document, 10, 4) == b"l"
    assert r.qxfer_chunk(document, 50, 4) == b"l"
    assert r.qxfer_chunk(b"#}*$", 0, 4) == b"l}\x03}]}\x0a}\x04"


def test_qxfer_chunk_respects_a_body_limit_after_escaping() -> None:
    document = b"####" + b"a" * 4
    chunk = r.qxfer_chunk(document, 0, 8, max_body=7)  # `m` + 3 escaped `#` = 7
    assert chunk == b"m}\x03}\x03}\x03"
    assert r.qxfer_chunk(document, 3, 8, max_body=7) == b"l}\x03aaaa"
    assert r.qxfer_chunk(document, 3, 8, max_body=6) == b"m}\x03aaa"


def test_siginfo_chunk_matches_gdbserver() -> None:
    siginfo = expand_runs(b'\x05\x00*"\x00\x80\x00*}\x00*2')
    assert len(siginfo) == 0x80
    assert encode_packet(r.qxfer_chunk(siginfo, 0, 0x80)) == b'$l\x05\x00*"\x00\x80\x00*}\x00*2#40'


def test_file_replies() -> None:
    assert encode_packet(r.file_result(6)) == b"$F6#7c"
    assert encode_packet(r.file_error(2)) == b"$F-1,2#02"  # ENOENT
    assert r.file_error(36) == b"F-1,5b"  # ENAMETOOLONG is 91 in File-I/O
    assert r.file_error(1234) == b"F-1,270f"  # EUNKNOWN 9999
    assert encode_packet(r.file_data(b"")) == b"$F0;#b1"
    assert r.file_data(b"a}b") == b"F3;a}]b"
    assert r.file_data(b"####", max_body=7) == b"F2;}\x03}\x03"  # 7 bytes in all


@dataclass
class FakeStat:
    st_dev: int
    st_ino: int
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blksize: int
    st_blocks: int
    st_atime: float
    st_mtime: float
    st_ctime: float


def test_fstat_reply_matches_gdbserver() -> None:
    wire = (
        b'$F40;\x00\x00\xfe\x00\x00 \xc1\x12\x00\x00\x81\xed\x00\x00\x00\x01\x00*.H\xb8\x00*"\x10\x00*"'
        b"\x00\x00(k\x071\x98k\x071\x98k\x071\x98#1e"
    )
    packed = unescape_binary(expand_runs(wire[5 : wire.rindex(b"#")]))
    dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atime, mtime, ctime = struct.unpack(">7I3Q3I", packed)
    status = FakeStat(dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks, atime + 0.5, mtime, ctime)
    assert encode_packet(r.file_stat(status)) == wire


def test_fstat_of_a_real_file_keeps_type_and_permissions() -> None:
    status = os.stat(__file__)
    packed = unescape_binary(r.file_stat(status)[4:])
    fields = struct.unpack(">7I3Q3I", packed)
    assert fields[2] == status.st_mode & 0o100777
    assert fields[7] == status.st_size


def test_misc_replies() -> None:
    assert r.resume_actions() == b"vCont;c;C;s;S"
    assert r.resume_actions(stop=True, range_step=True) == b"vCont;c;C;t;s;S;r"
    assert r.attached(True) == b"1" and r.attached(False) == b"0"
    assert r.tls_address(0x7FFFF7D8F6BC) == b"7ffff7d8f6bc"
    assert r.symbol_request(b"__nptl_version") == b"qSymbol:5f5f6e70746c5f76657273696f6e"
    assert r.console_output(b"hi\n") == b"O68690a"
    assert encode_packet(r.search_result(0x555555558046)) == b'$1,5*"558046#1a'
    assert r.search_result(None) == b"0"
    assert r.crc_result(0xDEADBEEF) == b"Cdeadbeef"


@pytest.mark.parametrize("data", [b"", b"a", b"123456789", bytes(range(256))])
def test_gdb_crc32_is_the_msb_first_variant(data: bytes) -> None:
    # Reference: CRC-32/MPEG-2 style (poly 0x04c11db7, init 0xffffffff, no reflection, no final xor).
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    assert r.gdb_crc32(data) == crc
    if data == b"123456789":
        assert crc == 0x0376E6E7  # the published CRC-32/MPEG-2 check value
    assert r.gdb_crc32(data) != zlib.crc32(data) or not data


def test_thread_all_formats_in_stop_reply() -> None:
    assert r.stop_reply_signal(5, ThreadId(0x10, ALL)) == b"T05thread:p10.-1;"

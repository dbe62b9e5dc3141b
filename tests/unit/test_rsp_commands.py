"""Typed commands from literal packet bodies (GDB 13.1 traces), malformed bodies and unknown packets."""

from __future__ import annotations

import pytest

from ptstub.rsp import commands as c
from ptstub.rsp.commands import parse_command
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.features import TransferObject
from ptstub.rsp.threadid import ALL, ThreadId
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind

P1B4B = ThreadId(0x1B4B, 0x1B4B)

# Bodies GDB 13.1 sent to gdbserver 13.1 here, and what they mean.
CASES: list[tuple[bytes, c.Command]] = [
    (b"?", c.QueryStopReason()),
    (b"!", c.EnableExtendedMode()),
    (b"g", c.ReadRegisters()),
    (b"G0500000000000000c016", c.WriteRegisters(bytes.fromhex("0500000000000000c016"))),
    (b"p39", c.ReadRegister(0x39)),
    (b"P0=0500000000000000", c.WriteRegister(0, bytes.fromhex("0500000000000000"))),
    (b"m7fffffffe658,40", c.ReadMemory(0x7FFFFFFFE658, 0x40)),
    (b"M555555558040,2:7d23", c.WriteMemory(0x555555558040, b"}#")),
    (b"X555555558040,0:", c.WriteMemory(0x555555558040, b"", binary=True)),
    (b"X555555558040,1:}]", c.WriteMemory(0x555555558040, b"}", binary=True)),
    (b"X555555558041,1:}\x03", c.WriteMemory(0x555555558041, b"#", binary=True)),
    (
        b"X7fffffffe658,8:o\xe6\xff\xff\xff\x7f\x00\x00",
        c.WriteMemory(0x7FFFFFFFE658, b"o\xe6\xff\xff\xff\x7f\x00\x00", True),
    ),
    (b"c", c.Continue()),
    (b"c401000", c.Continue(address=0x401000)),
    (b"C1e", c.Continue(signal=10)),  # GDB's SIGUSR1 (30) is Linux 10
    (b"C0a;401000", c.Continue(signal=7, address=0x401000)),  # GDB's SIGBUS (10) is Linux 7
    (b"s", c.Step()),
    (b"S05", c.Step(signal=5)),
    (b"C07", c.Continue(signal=0)),  # GDB_SIGNAL_EMT does not exist on Linux: resumed without one
    (b"vCont?", c.QueryResumeActions()),
    (b"vCtrlC", c.InterruptTarget()),
    (b"Hgp0.0", c.SelectThread(c.ThreadPurpose.REGISTERS, ThreadId(0, 0))),
    (b"Hgpd06.d06", c.SelectThread(c.ThreadPurpose.REGISTERS, ThreadId(0xD06, 0xD06))),
    (b"Hc-1", c.SelectThread(c.ThreadPurpose.RESUME, ThreadId.ALL_THREADS)),
    (b"Tp1b4b.1b4b", c.IsThreadAlive(P1B4B)),
    (b"qC", c.QueryCurrentThread()),
    (b"qfThreadInfo", c.ListThreads(first=True)),
    (b"qsThreadInfo", c.ListThreads(first=False)),
    (b"qAttached:1b4b", c.QueryAttached(0x1B4B)),
    (b"qAttached", c.QueryAttached(None)),
    (b"qOffsets", c.QuerySectionOffsets()),
    (b"qSymbol::", c.SymbolLookup()),
    (b"qSymbol::5f5f6e70746c5f76657273696f6e", c.SymbolLookup(b"__nptl_version", None)),
    (b"qSymbol:7ffff7fc2160:5f5f6e70746c5f76657273696f6e", c.SymbolLookup(b"__nptl_version", 0x7FFFF7FC2160)),
    (b"qGetTLSAddr:pd06.ff6,0,7ffff7ffe2e0", c.GetTlsAddress(ThreadId(0xD06, 0xFF6), 0, 0x7FFFF7FFE2E0)),
    (b"qRcmd,65786974", c.MonitorCommand(b"exit")),
    (b"qXfer:features:read:target.xml:1000,1000", c.ReadObject(TransferObject.FEATURES, b"target.xml", 0x1000, 0x1000)),
    (b"qXfer:threads:read::0,1000", c.ReadObject(TransferObject.THREADS, b"", 0, 0x1000)),
    (b"qXfer:exec-file:read:1b4b:0,1000", c.ReadObject(TransferObject.EXEC_FILE, b"1b4b", 0, 0x1000)),
    (b"qXfer:libraries-svr4:read::0,1000", c.ReadObject(TransferObject.LIBRARIES_SVR4, b"", 0, 0x1000)),
    (b"qXfer:siginfo:read::0,80", c.ReadObject(TransferObject.SIGINFO, b"", 0, 0x80)),
    (b"qXfer:siginfo:write::0:\x05\x00}]:", c.WriteObject(TransferObject.SIGINFO, b"", 0, b"\x05\x00}:")),
    (b"qCRC:318,1c", c.ComputeCrc(0x318, 0x1C)),
    (b"qSearch:memory:555555558040;40;d", c.SearchMemory(0x555555558040, 0x40, b"d")),
    (b"qSearch:memory:10;4;a;b}]", c.SearchMemory(0x10, 4, b"a;b}")),
    (b"qThreadExtraInfo,p1b4b.1b4b", c.QueryThreadExtraInfo(P1B4B)),
    (b"QStartNoAckMode", c.StartNoAckMode()),
    (b"QPassSignals:", c.PassSignals(frozenset())),
    (b"QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97;", c.PassSignals(frozenset({14, 23, 17, 29, 26, 27, 28}))),
    (
        b"QPassSignals:e;10;14;17;1a;1b;1c;1e;21;24;25;2c;4c;97;",
        c.PassSignals(frozenset({14, 23, 17, 29, 26, 27, 28, 10})),
    ),
    (b"QProgramSignals:0;1;3;4;6;97;", c.ProgramSignals(frozenset({1, 3, 4, 6}))),
    (b"QNonStop:0", c.SetNonStop(False)),
    (b"QDisableRandomization:1", c.SetDisableRandomization(True)),
    (b"QStartupWithShell:1", c.SetStartupWithShell(True)),
    (b"QEnvironmentReset", c.ResetEnvironment()),
    (b"QEnvironmentHexEncoded:464f4f3d613d62", c.SetEnvironmentVariable(b"FOO", b"a=b")),
    (b"QEnvironmentUnset:464f4f", c.UnsetEnvironmentVariable(b"FOO")),
    (b"QSetWorkingDir:", c.SetWorkingDirectory(None)),
    (b"QSetWorkingDir:2f746d70", c.SetWorkingDirectory(b"/tmp")),
    (b"QCatchSyscalls:1;27", c.CatchSyscalls(True, frozenset({0x27}))),
    (b"QCatchSyscalls:1", c.CatchSyscalls(True, None)),
    (b"QCatchSyscalls:0", c.CatchSyscalls(False)),
    (b"QThreadEvents:1", c.SetThreadEvents(True)),
    (b"vRun;2f62696e2f74727565;2d61;", c.RunProgram(b"/bin/true", (b"-a", b""))),
    (b"vRun;", c.RunProgram(b"", ())),
    (b"vAttach;1db3", c.AttachProcess(0x1DB3)),
    (b"vKill;1b4b", c.KillProcess(0x1B4B)),
    (b"k", c.KillProcess(None)),
    (b"D", c.Detach(None)),
    (b"D;1db3", c.Detach(0x1DB3)),
    (b"R00", c.Restart()),
    (b"Z0,555555555160,1", c.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x555555555160, 1)),
    (b"Z1,401000,1", c.InsertBreakpoint(BreakpointKind.HARDWARE, 0x401000, 1)),
    (b"Z2,555555558084,4", c.InsertBreakpoint(BreakpointKind.WRITE_WATCH, 0x555555558084, 4)),
    (b"z0,555555555160,1", c.RemoveBreakpoint(BreakpointKind.SOFTWARE, 0x555555555160, 1)),
    (b"z4,555555558084,8", c.RemoveBreakpoint(BreakpointKind.ACCESS_WATCH, 0x555555558084, 8)),
    (b"Z0,401000,1;X3,220027", c.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x401000, 1, (b"\x22\x00\x27",))),
    (
        b"Z0,401000,1;X2,2200X1,27;cmds:1,X1,aa",
        c.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x401000, 1, (b"\x22\x00", b"\x27"), (b"\xaa",), True),
    ),
    (b"vFile:setfs:0", c.FileSetFilesystem(0)),
    (b"vFile:open:2f746d702f72737074726163652f7374,0,0", c.FileOpen(b"/tmp/rsptrace/st", 0, 0)),
    (b"vFile:open:2f70726f632f6d617073,0,1c0", c.FileOpen(b"/proc/maps", 0, 0o700)),
    (b"vFile:open:2f74,601,1a4", c.FileOpen(b"/t", 0o1 | 0o100 | 0o1000, 0o644)),  # WRONLY|CREAT|TRUNC
    (b"vFile:pread:6,47ff,34218", c.FileRead(6, 0x47FF, 0x34218)),
    (b"vFile:pwrite:6,10,ab,}]", c.FileWrite(6, 0x10, b"ab,}")),
    (b"vFile:close:6", c.FileClose(6)),
    (b"vFile:fstat:7", c.FileStat(7)),
    (b"vFile:unlink:2f74", c.FileUnlink(b"/t")),
    (b"vFile:readlink:2f70726f632f73656c662f657865", c.FileReadLink(b"/proc/self/exe")),
]


@pytest.mark.parametrize(
    ("body", "expected"), CASES, ids=lambda v: v[:30].decode("latin-1") if isinstance(v, bytes) else ""
)
def test_parse(body: bytes, expected: c.Command) -> None:
    assert parse_command(body) == expected
    assert parse_command(body) == expected  # memoized path gives the same value


def test_qsupported_carries_client_features() -> None:
    command = parse_command(b"qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
    assert isinstance(command, c.QuerySupported)
    assert command.features.multiprocess and command.features.swbreak
    assert command.features.xml_registers == ("i386",)
    assert isinstance(parse_command(b"qSupported"), c.QuerySupported)


def test_vcont_continue_all() -> None:
    command = parse_command(b"vCont;c:p1b4b.-1")
    assert command == c.Resume((c.ThreadAction(c.ThreadActionKind.CONTINUE, ThreadId(0x1B4B, ALL)),))


def test_vcont_step_one_thread_leaves_the_others_stopped() -> None:
    command = parse_command(b"vCont;s:p1b4b.1b4b")
    assert isinstance(command, c.Resume)
    assert command.action_for(0x1B4B, 0x1B4B) == c.ThreadAction(c.ThreadActionKind.STEP, P1B4B)
    assert command.action_for(0x1B4B, 0x1B4C) is None


def test_vcont_range_step_then_continue_first_match_wins() -> None:
    command = parse_command(b"vCont;r555555555160,555555555175:p1b4b.1b4c;c:p1b4b.-1")
    assert isinstance(command, c.Resume)
    step = command.action_for(0x1B4B, 0x1B4C)
    assert step == c.ThreadAction(
        c.ThreadActionKind.RANGE_STEP, ThreadId(0x1B4B, 0x1B4C), 0, 0x555555555160, 0x555555555175
    )
    assert step.to_resume_action() == ResumeAction(ResumeKind.RANGE_STEP, 0, 0x555555555160, 0x555555555175)
    other = command.action_for(0x1B4B, 0x1B4B)
    assert other is not None and other.kind is c.ThreadActionKind.CONTINUE


def test_vcont_signals_are_linux_numbers_and_default_action() -> None:
    command = parse_command(b"vCont;C1e:p10.11;S0a:p10.12;t:p10.13;c")
    assert isinstance(command, c.Resume)
    kinds = [(a.kind, a.signal, a.thread) for a in command.actions]
    assert kinds == [
        (c.ThreadActionKind.CONTINUE, 10, ThreadId(0x10, 0x11)),  # GDB 0x1e = SIGUSR1 = Linux 10
        (c.ThreadActionKind.STEP, 7, ThreadId(0x10, 0x12)),  # GDB 0x0a = SIGBUS = Linux 7
        (c.ThreadActionKind.STOP, 0, ThreadId(0x10, 0x13)),
        (c.ThreadActionKind.CONTINUE, 0, None),
    ]
    assert command.actions[2].to_resume_action() is None
    assert command.actions[0].to_resume_action() == ResumeAction(ResumeKind.CONTINUE, 10)
    default = command.action_for(0x10, 0x99)
    assert default is not None and default.thread is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"vMustReplyEmpty",
        b"qTStatus",
        b"qTfV",
        b"qTsV",
        b"qTfP",
        b"QTinit",
        b"qXfer:btrace-nonsense:read::0,10",
        b"qXfer:features:frobnicate:x:0,10",
        b"vFile:stat:2f",
        b"Z5,1000,1",
        b"Hm1",
        b"qSearch:flash:1;2;3",
        b"x1000,10",
        b"i",
        b"qCustom",
        b"QThreadOptions;0",
        b"\xff\x00",
    ],
)
def test_unknown_packets(body: bytes) -> None:
    assert parse_command(body) == c.UnknownCommand(body)


@pytest.mark.parametrize(
    "body",
    [
        b"m",
        b"m1000",
        b"m1000,",
        b"mzz,4",
        b"m1000,-4",
        b"m0x10,4",
        b"m1000,200000",  # above MAX_TRANSFER
        b"m11112222333344445,4",  # wider than 64 bits
        b"M1000,2:ab",  # length says 2, data has 1
        b"M1000,1:zz",
        b"M1000,1",
        b"X1000,2:a",
        b"X1000,1:a}",
        b"G123",
        b"Gxy",
        b"P1",
        b"P1=zz",
        b"pzz",
        b"C",
        b"Cxx",
        b"cxyz",
        b"Hg",
        b"Hgpzz",
        b"T",
        b"D1",
        b"D;",
        b"Z0,1000",
        b"Z0,1000,1,2",
        b"Z0,zz,1",
        b"Z0,1000,1;Q",
        b"Z0,1000,1;X4,22",
        b"z2,1000",
        b"vCont",
        b"vCont;",
        b"vCont;x",
        b"vCont;C:p1.1",
        b"vCont;C07",  # GDB_SIGNAL_EMT: no Linux counterpart, gdbserver refuses
        b"vCont;r1000:p1.1",
        b"vCont;c:pzz",
        b"qSymbol",
        b"qSymbol:zz:41",
        b"qGetTLSAddr:p1.1,0",
        b"qRcmd,6",
        b"qXfer:features:read:target.xml:0",
        b"qXfer:features:read:target.xml",
        b"qXfer:siginfo:write::0",
        b"qCRC:318",
        b"qSearch:memory:1;2",
        b"qAttached:zz",
        b"QPassSignals:e;1g",
        b"QPassSignals:-1",
        b"QNonStop:",
        b"QNonStop:x",
        b"QEnvironmentHexEncoded:464f4f",  # no '='
        b"QEnvironmentHexEncoded:3d31",  # empty name
        b"QCatchSyscalls:1;zz",
        b"vAttach;",
        b"vKill;zz",
        b"vRun;zz",
        b"qThreadExtraInfo,",
    ],
)
def test_malformed_packets_raise_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_command(body)
    assert raised.value.errno == 1 and raised.value.reply is None


@pytest.mark.parametrize(
    "body",
    [b"vFile:open:zz,0,0", b"vFile:open:2f,0", b"vFile:open:2f,1000,0", b"vFile:pread:6,47ff", b"vFile:close:"],
)
def test_malformed_vfile_packets_answer_in_file_io_form(body: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_command(body)
    assert raised.value.reply == b"F-1,16"


def test_values_are_frozen() -> None:
    command = parse_command(b"m1000,4")
    with pytest.raises(AttributeError):
        command.address = 5  # type: ignore[misc,union-attr]


def test_mutated_real_packets_raise_nothing_but_protocol_error() -> None:
    import random

    rng = random.Random(99)
    seeds = [body for body, _ in CASES] + [b"vCont;c:p1b4b.-1", b"qSupported:multiprocess+"]
    alphabet = b"0123456789abcdef,;:.-=pP}X$#*\x00\xff"
    for _ in range(4000):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            position = rng.randint(0, len(body))
            if choice < 0.4 and body:
                del body[min(position, len(body) - 1)]
            elif choice < 0.8:
                body.insert(position, rng.choice(alphabet))
            else:
                body[:] = body[:position]
        try:
            parse_command(bytes(body))
        except ProtocolError:
            pass

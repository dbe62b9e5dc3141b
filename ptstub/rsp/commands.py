"""The command parser: a packet body to its typed command (`command_values`, re-exported here).

GDB manual, Remote Protocol appendix: "Packets", "General Query Packets", "Host I/O Packets"
(vFile), "Stop Reply Packets" (for vCont semantics). Packet letters appear only in docstrings and in
the dispatch tables; the values are named for what they mean.

Invariants:
- `parse_command` returns `UnknownCommand` for every packet ptstub does not implement (the session
  answers it with an empty reply, which GDB reads as "not supported"), and raises `ProtocolError`
  for a malformed packet of a family it does implement (answered `E NN`, or `ProtocolError.reply`).
- Numbers are hex on the wire and plain ints here. Signals are translated at this edge: every
  `signal` field holds a *Linux* signal number (see `ptstub.rsp.signals`). vFile open flags are
  translated from GDB's File-I/O values to Linux `O_*` values.
- Byte counts are bounded (`MAX_TRANSFER`) so a hostile or corrupt packet cannot make the stub
  allocate gigabytes. The session may still clamp a read to its packet size (a short `m` reply is
  allowed by the protocol).
- Dispatch is a dict on the first byte, then, for `q`/`Q`/`v` packets, a dict on the name up to the
  first `:`, `;` or `,`. Short bodies' results are memoized: they are immutable, and the hot packets
  of a breakpoint loop (`vCont;c:p1.-1`, `QPassSignals:...`, `Z0,...`, `qXfer:threads:read::0,1000`)
  repeat byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable

from ptstub.rsp.command_values import (
    AttachProcess,
    CatchSyscalls,
    Command,
    ComputeCrc,
    Continue,
    Detach,
    EnableExtendedMode,
    FileClose,
    FileOpen,
    FileRead,
    FileReadLink,
    FileSetFilesystem,
    FileStat,
    FileUnlink,
    FileWrite,
    GetTlsAddress,
    InsertBreakpoint,
    InterruptTarget,
    IsThreadAlive,
    KillProcess,
    ListThreads,
    MonitorCommand,
    NextStopNotification,
    PassSignals,
    ProgramSignals,
    QueryAttached,
    QueryCurrentThread,
    QueryResumeActions,
    QuerySectionOffsets,
    QueryStopReason,
    QuerySupported,
    QueryThreadExtraInfo,
    ReadMemory,
    ReadObject,
    ReadRegister,
    ReadRegisters,
    RemoveBreakpoint,
    ResetEnvironment,
    Restart,
    Resume,
    RunProgram,
    SearchMemory,
    SelectThread,
    SetDisableRandomization,
    SetEnvironmentVariable,
    SetNonStop,
    SetStartupWithShell,
    SetThreadEvents,
    SetWorkingDirectory,
    StartNoAckMode,
    Step,
    SymbolLookup,
    ThreadAction,
    ThreadActionKind,
    ThreadPurpose,
    UnknownCommand,
    UnsetEnvironmentVariable,
    WriteMemory,
    WriteObject,
    WriteRegister,
    WriteRegisters,
)
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.features import TransferObject, parse_client_features
from ptstub.rsp.framing import unescape_binary
from ptstub.rsp.hexutil import HEX_DIGITS, parse_address, parse_hex, parse_hex_bytes, parse_length
from ptstub.rsp.signals import gdb_signal_set_to_host, gdb_to_host_signal
from ptstub.rsp.threadid import parse_thread_id
from ptstub.target import BreakpointKind

MAX_TRANSFER = 1 << 20
"""Largest byte count accepted in a read request (`m`, `qXfer`, `vFile:pread`, `qCRC` excluded)."""

# Singletons for packets without arguments (values are immutable, so sharing is safe).
_QUERY_STOP_REASON = QueryStopReason()
_ENABLE_EXTENDED = EnableExtendedMode()
_READ_REGISTERS = ReadRegisters()
_QUERY_RESUME_ACTIONS = QueryResumeActions()
_INTERRUPT = InterruptTarget()
_NEXT_STOP = NextStopNotification()
_QUERY_CURRENT_THREAD = QueryCurrentThread()
_LIST_FIRST = ListThreads(first=True)
_LIST_NEXT = ListThreads(first=False)
_QUERY_OFFSETS = QuerySectionOffsets()
_START_NO_ACK = StartNoAckMode()
_RESET_ENVIRONMENT = ResetEnvironment()
_RESTART = Restart()

# --- field helpers -------------------------------------------------------------------------------------


def _split(args: bytes, separator: bytes, count: int, packet: str) -> list[bytes]:
    """Split `args` into exactly `count` fields or raise."""
    fields = args.split(separator, count - 1)
    if len(fields) != count:
        raise ProtocolError(f"{packet}: expected {count} fields, got {args[:60]!r}")
    return fields


def _flag(args: bytes, packet: str) -> bool:
    return parse_hex(args, packet) != 0


def _optional_address(args: bytes) -> int | None:
    return parse_address(args) if args else None


def _gdb_signal(field: bytes) -> int:
    """A GDB signal field (two hex digits in C/S actions) as a Linux signal; raises if unknown."""
    host = gdb_to_host_signal(parse_hex(field, "signal"))
    if host is None:
        raise ProtocolError(f"signal {field!r} does not exist on Linux")
    return host


def _signal_list(args: bytes, packet: str) -> frozenset[int]:
    # One C-level check for the whole list instead of one per item: this runs on every resume.
    if args.translate(None, HEX_DIGITS + b";"):
        raise ProtocolError(f"{packet}: bad signal list {args[:60]!r}")
    return gdb_signal_set_to_host([int(item, 16) for item in args.split(b";") if item])


# --- single-letter packets -----------------------------------------------------------------------------


def _parse_query_stop_reason(body: bytes) -> Command:
    return _QUERY_STOP_REASON


def _parse_extended(body: bytes) -> Command:
    return _ENABLE_EXTENDED


def _parse_read_registers(body: bytes) -> Command:
    return _READ_REGISTERS


def _parse_write_registers(body: bytes) -> Command:
    return WriteRegisters(parse_hex_bytes(body[1:], "register data"))


def _parse_read_register(body: bytes) -> Command:
    return ReadRegister(parse_hex(body[1:], "register number"))


def _parse_write_register(body: bytes) -> Command:
    number, equals, value = body[1:].partition(b"=")
    if not equals:
        raise ProtocolError(f"P: missing '=' in {body[:60]!r}")
    return WriteRegister(parse_hex(number, "register number"), parse_hex_bytes(value, "register value"))


def _parse_read_memory(body: bytes) -> Command:
    address, comma, length = body[1:].partition(b",")
    if not comma:
        raise ProtocolError(f"m: missing length in {body[:60]!r}")
    return ReadMemory(parse_address(address), parse_length(length, MAX_TRANSFER))


def _parse_write_memory(body: bytes) -> Command:
    binary = body[:1] == b"X"
    header, colon, payload = body[1:].partition(b":")
    if not colon:
        raise ProtocolError(f"{body[:1].decode()}: missing ':' in {body[:60]!r}")
    address, length = _split(header, b",", 2, "write memory")
    count = parse_length(length, MAX_TRANSFER)
    data = unescape_binary(payload) if binary else parse_hex_bytes(payload, "memory data")
    if len(data) != count:
        raise ProtocolError(f"write memory: length 0x{count:x} but 0x{len(data):x} bytes of data")
    return WriteMemory(parse_address(address), data, binary)


def _parse_legacy_resume(body: bytes) -> Command:
    letter = body[:1]
    if letter in (b"c", b"s"):
        signal, address = 0, _optional_address(body[1:])
    else:
        sig, _, addr = body[1:].partition(b";")
        # gdbserver resumes with no signal when GDB names one the host does not have.
        signal = gdb_to_host_signal(parse_hex(sig, "signal")) or 0
        address = _optional_address(addr)
    if letter in (b"c", b"C"):
        return Continue(signal, address)
    return Step(signal, address)


def _parse_select_thread(body: bytes) -> Command:
    purpose = body[1:2]
    if purpose == b"g":
        return SelectThread(ThreadPurpose.REGISTERS, parse_thread_id(body[2:]))
    if purpose == b"c":
        return SelectThread(ThreadPurpose.RESUME, parse_thread_id(body[2:]))
    return UnknownCommand(body)


def _parse_thread_alive(body: bytes) -> Command:
    return IsThreadAlive(parse_thread_id(body[1:]))


def _parse_kill(body: bytes) -> Command:
    return KillProcess(None)


def _parse_detach(body: bytes) -> Command:
    if len(body) == 1:
        return Detach(None)
    if body[1:2] != b";":
        raise ProtocolError(f"D: expected 'D;pid', got {body[:60]!r}")
    return Detach(parse_hex(body[2:], "pid"))


def _parse_restart(body: bytes) -> Command:
    return _RESTART


_BREAKPOINT_KINDS = {ord(str(kind.value)): kind for kind in BreakpointKind}


def _parse_breakpoint(body: bytes) -> Command:
    kind = _BREAKPOINT_KINDS.get(body[1]) if len(body) > 2 else None
    if kind is None or body[2] != 0x2C:  # `Z5`..: not a breakpoint type GDB knows; `,` follows the type
        return UnknownCommand(body)
    head, semicolon, extras = body[3:].partition(b";")
    address, length = _split(head, b",", 2, "breakpoint")
    if body[:1] == b"z":
        return RemoveBreakpoint(kind, parse_address(address), parse_hex(length, "breakpoint kind"))
    conditions: tuple[bytes, ...] = ()
    commands: tuple[bytes, ...] = ()
    persist = False
    if semicolon:
        conditions, commands, persist = _parse_breakpoint_extras(extras)
    return InsertBreakpoint(
        kind, parse_address(address), parse_hex(length, "breakpoint kind"), conditions, commands, persist
    )


def _parse_breakpoint_extras(extras: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...], bool]:
    """Parse `X<len>,<hex>...` conditions, then an optional `;cmds:<persist>,X<len>,<hex>...`."""
    condition_text, _, command_text = extras.partition(b"cmds:")
    conditions = _parse_agent_expressions(condition_text)
    if not command_text:
        return conditions, (), False
    persist, comma, rest = command_text.partition(b",")
    if not comma:
        raise ProtocolError(f"Z: bad cmds list {command_text[:60]!r}")
    return conditions, _parse_agent_expressions(rest), _flag(persist, "Z cmds persist")


def _parse_agent_expressions(text: bytes) -> tuple[bytes, ...]:
    """Parse concatenated `X<len>,<2*len hex digits>` items (GDB may also put `;` between them)."""
    expressions = []
    pos = 0
    while pos < len(text):
        if text[pos : pos + 1] == b";":
            pos += 1
            continue
        comma = text.find(b",", pos)
        if text[pos : pos + 1] != b"X" or comma < 0:
            raise ProtocolError(f"Z: bad agent expression at {text[pos : pos + 40]!r}")
        length = parse_length(text[pos + 1 : comma], MAX_TRANSFER, "agent expression length")
        end = comma + 1 + 2 * length
        if end > len(text):
            raise ProtocolError("Z: agent expression shorter than its length")
        expressions.append(parse_hex_bytes(text[comma + 1 : end], "agent expression"))
        pos = end
    return tuple(expressions)


# --- q packets -----------------------------------------------------------------------------------------


def _parse_supported(body: bytes, args: bytes) -> Command:
    return QuerySupported(parse_client_features(args))


def _parse_current_thread(body: bytes, args: bytes) -> Command:
    return _QUERY_CURRENT_THREAD


def _parse_list_first(body: bytes, args: bytes) -> Command:
    return _LIST_FIRST


def _parse_list_next(body: bytes, args: bytes) -> Command:
    return _LIST_NEXT


def _parse_attached(body: bytes, args: bytes) -> Command:
    return QueryAttached(parse_hex(args, "pid") if args else None)


def _parse_offsets(body: bytes, args: bytes) -> Command:
    return _QUERY_OFFSETS


def _parse_symbol(body: bytes, args: bytes) -> Command:
    value, colon, name = args.partition(b":")
    if not colon:
        raise ProtocolError(f"qSymbol: missing ':' in {body[:60]!r}")
    if not value and not name:
        return SymbolLookup()
    symbol = parse_hex_bytes(name, "symbol name")
    return SymbolLookup(symbol, parse_address(value, "symbol value") if value else None)


def _parse_tls_address(body: bytes, args: bytes) -> Command:
    thread, offset, load_module = _split(args, b",", 3, "qGetTLSAddr")
    return GetTlsAddress(parse_thread_id(thread), parse_address(offset), parse_address(load_module))


def _parse_monitor(body: bytes, args: bytes) -> Command:
    return MonitorCommand(parse_hex_bytes(args, "monitor command"))


_TRANSFER_OBJECTS = {obj.value.encode(): obj for obj in TransferObject}


def _parse_transfer(body: bytes, args: bytes) -> Command:
    fields = args.split(b":", 3)
    if len(fields) != 4:
        raise ProtocolError(f"qXfer: expected object:operation:annex:..., got {body[:60]!r}")
    name, operation, annex, rest = fields
    obj = _TRANSFER_OBJECTS.get(name)
    if obj is None:
        return UnknownCommand(body)
    if operation == b"read":
        offset, length = _split(rest, b",", 2, "qXfer read")
        return ReadObject(obj, annex, parse_address(offset, "offset"), parse_length(length, MAX_TRANSFER))
    if operation == b"write":
        offset, colon, data = rest.partition(b":")
        if not colon:
            raise ProtocolError(f"qXfer write: missing data in {body[:60]!r}")
        return WriteObject(obj, annex, parse_address(offset, "offset"), unescape_binary(data))
    return UnknownCommand(body)


def _parse_crc(body: bytes, args: bytes) -> Command:
    address, length = _split(args, b",", 2, "qCRC")
    return ComputeCrc(parse_address(address), parse_address(length, "length"))


def _parse_search(body: bytes, args: bytes) -> Command:
    space, colon, rest = args.partition(b":")
    if space != b"memory" or not colon:
        return UnknownCommand(body)
    address, length, pattern = _split(rest, b";", 3, "qSearch:memory")
    return SearchMemory(parse_address(address), parse_address(length, "length"), unescape_binary(pattern))


def _parse_thread_extra_info(body: bytes, args: bytes) -> Command:
    return QueryThreadExtraInfo(parse_thread_id(args))


# --- Q packets -----------------------------------------------------------------------------------------


def _parse_start_no_ack(body: bytes, args: bytes) -> Command:
    return _START_NO_ACK


def _parse_pass_signals(body: bytes, args: bytes) -> Command:
    return PassSignals(_signal_list(args, "QPassSignals"))


def _parse_program_signals(body: bytes, args: bytes) -> Command:
    return ProgramSignals(_signal_list(args, "QProgramSignals"))


def _parse_non_stop(body: bytes, args: bytes) -> Command:
    return SetNonStop(_flag(args, "QNonStop"))


def _parse_disable_randomization(body: bytes, args: bytes) -> Command:
    return SetDisableRandomization(_flag(args, "QDisableRandomization"))


def _parse_environment_set(body: bytes, args: bytes) -> Command:
    name, equals, value = parse_hex_bytes(args, "environment entry").partition(b"=")
    if not equals or not name:
        raise ProtocolError(f"QEnvironmentHexEncoded: expected NAME=value, got {body[:60]!r}")
    return SetEnvironmentVariable(name, value)


def _parse_environment_unset(body: bytes, args: bytes) -> Command:
    return UnsetEnvironmentVariable(parse_hex_bytes(args, "environment name"))


def _parse_environment_reset(body: bytes, args: bytes) -> Command:
    return _RESET_ENVIRONMENT


def _parse_working_dir(body: bytes, args: bytes) -> Command:
    return SetWorkingDirectory(parse_hex_bytes(args, "directory") if args else None)


def _parse_startup_with_shell(body: bytes, args: bytes) -> Command:
    return SetStartupWithShell(_flag(args, "QStartupWithShell"))


def _parse_catch_syscalls(body: bytes, args: bytes) -> Command:
    enabled, _, numbers = args.partition(b";")
    if not _flag(enabled, "QCatchSyscalls"):
        return CatchSyscalls(False)
    if not numbers:
        return CatchSyscalls(True, None)
    return CatchSyscalls(True, frozenset(parse_hex(n, "syscall number") for n in numbers.split(b";") if n))


def _parse_thread_events(body: bytes, args: bytes) -> Command:
    return SetThreadEvents(_flag(args, "QThreadEvents"))


# --- v packets -----------------------------------------------------------------------------------------


def _parse_resume_actions_query(body: bytes, args: bytes) -> Command:
    return _QUERY_RESUME_ACTIONS


def _parse_resume(body: bytes, args: bytes) -> Command:
    if body[5:6] != b";" or not args:
        raise ProtocolError(f"vCont: no actions in {body[:60]!r}")
    return Resume(tuple(_parse_thread_action(item) for item in args.split(b";")))


def _parse_thread_action(item: bytes) -> ThreadAction:
    action, colon, thread_text = item.partition(b":")
    thread = parse_thread_id(thread_text) if colon else None
    letter = action[:1]
    if len(action) == 1:
        kind = _SIMPLE_ACTIONS.get(letter)
        if kind is not None:
            return ThreadAction(kind, thread)
    elif letter == b"C":
        return ThreadAction(ThreadActionKind.CONTINUE, thread, _gdb_signal(action[1:]))
    elif letter == b"S":
        return ThreadAction(ThreadActionKind.STEP, thread, _gdb_signal(action[1:]))
    elif letter == b"r":
        start, end = _split(action[1:], b",", 2, "vCont;r")
        return ThreadAction(ThreadActionKind.RANGE_STEP, thread, 0, parse_address(start), parse_address(end))
    raise ProtocolError(f"vCont: bad action {item[:60]!r}")


_SIMPLE_ACTIONS = {
    b"c": ThreadActionKind.CONTINUE,
    b"s": ThreadActionKind.STEP,
    b"t": ThreadActionKind.STOP,
}


def _parse_ctrl_c(body: bytes, args: bytes) -> Command:
    return _INTERRUPT


def _parse_stopped(body: bytes, args: bytes) -> Command:
    if body != b"vStopped":
        return UnknownCommand(body)
    return _NEXT_STOP


def _parse_run(body: bytes, args: bytes) -> Command:
    fields = [parse_hex_bytes(field, "vRun argument") for field in args.split(b";")]
    return RunProgram(fields[0], tuple(fields[1:]))


def _parse_attach(body: bytes, args: bytes) -> Command:
    return AttachProcess(parse_hex(args, "pid"))


def _parse_kill_process(body: bytes, args: bytes) -> Command:
    return KillProcess(parse_hex(args, "pid"))


# GDB File-I/O open flags ("Open Flags" in the manual) -> Linux x86-64 O_* values.
_FILEIO_OPEN_FLAGS = (
    (0x1, 0o1),  # O_WRONLY
    (0x2, 0o2),  # O_RDWR
    (0x8, 0o2000),  # O_APPEND
    (0x200, 0o100),  # O_CREAT
    (0x400, 0o1000),  # O_TRUNC
    (0x800, 0o200),  # O_EXCL
)
_FILEIO_SUPPORTED_FLAGS = 0xE0B
_FILE_EINVAL_REPLY = b"F-1,16"  # GDB File-I/O EINVAL is 22 (0x16), as gdbserver's hostio_packet_error


def _file_error(message: str) -> ProtocolError:
    return ProtocolError(message, errno=22, reply=_FILE_EINVAL_REPLY)


def _parse_file(body: bytes, args: bytes) -> Command:
    operation, _, rest = args.partition(b":")
    parser = _FILE_OPERATIONS.get(operation)
    if parser is None:
        return UnknownCommand(body)
    try:
        return parser(rest)
    except ProtocolError as error:
        if error.reply is not None:
            raise
        raise _file_error(str(error)) from None


def _parse_file_open(rest: bytes) -> Command:
    path, flags, mode = _split(rest, b",", 3, "vFile:open")
    fileio_flags = parse_hex(flags, "open flags")
    if fileio_flags & ~_FILEIO_SUPPORTED_FLAGS:
        raise _file_error(f"vFile:open: unsupported flags 0x{fileio_flags:x}")
    host_flags = 0
    for fileio_bit, host_bit in _FILEIO_OPEN_FLAGS:
        if fileio_flags & fileio_bit:
            host_flags |= host_bit
    return FileOpen(parse_hex_bytes(path, "path"), host_flags, parse_hex(mode, "mode") & 0o777)


def _parse_file_read(rest: bytes) -> Command:
    fd, count, offset = _split(rest, b",", 3, "vFile:pread")
    return FileRead(parse_hex(fd, "fd"), parse_length(count, MAX_TRANSFER), parse_address(offset, "offset"))


def _parse_file_write(rest: bytes) -> Command:
    fd, offset, data = _split(rest, b",", 3, "vFile:pwrite")
    return FileWrite(parse_hex(fd, "fd"), parse_address(offset, "offset"), unescape_binary(data))


_FILE_OPERATIONS: dict[bytes, Callable[[bytes], Command]] = {
    b"setfs": lambda rest: FileSetFilesystem(parse_hex(rest, "pid")),
    b"open": _parse_file_open,
    b"close": lambda rest: FileClose(parse_hex(rest, "fd")),
    b"pread": _parse_file_read,
    b"pwrite": _parse_file_write,
    b"fstat": lambda rest: FileStat(parse_hex(rest, "fd")),
    b"unlink": lambda rest: FileUnlink(parse_hex_bytes(rest, "path")),
    b"readlink": lambda rest: FileReadLink(parse_hex_bytes(rest, "path")),
}

# --- dispatch ------------------------------------------------------------------------------------------

_NamedParser = Callable[[bytes, bytes], Command]

_QUERIES: dict[bytes, _NamedParser] = {
    b"qSupported": _parse_supported,
    b"qC": _parse_current_thread,
    b"qfThreadInfo": _parse_list_first,
    b"qsThreadInfo": _parse_list_next,
    b"qAttached": _parse_attached,
    b"qOffsets": _parse_offsets,
    b"qSymbol": _parse_symbol,
    b"qGetTLSAddr": _parse_tls_address,
    b"qRcmd": _parse_monitor,
    b"qXfer": _parse_transfer,
    b"qCRC": _parse_crc,
    b"qSearch": _parse_search,
    b"qThreadExtraInfo": _parse_thread_extra_info,
}

_SETTINGS: dict[bytes, _NamedParser] = {
    b"QStartNoAckMode": _parse_start_no_ack,
    b"QPassSignals": _parse_pass_signals,
    b"QProgramSignals": _parse_program_signals,
    b"QNonStop": _parse_non_stop,
    b"QDisableRandomization": _parse_disable_randomization,
    b"QEnvironmentHexEncoded": _parse_environment_set,
    b"QEnvironmentUnset": _parse_environment_unset,
    b"QEnvironmentReset": _parse_environment_reset,
    b"QSetWorkingDir": _parse_working_dir,
    b"QStartupWithShell": _parse_startup_with_shell,
    b"QCatchSyscalls": _parse_catch_syscalls,
    b"QThreadEvents": _parse_thread_events,
}

_VERBOSE: dict[bytes, _NamedParser] = {
    b"vCont?": _parse_resume_actions_query,
    b"vCont": _parse_resume,
    b"vCtrlC": _parse_ctrl_c,
    b"vStopped": _parse_stopped,
    b"vRun": _parse_run,
    b"vAttach": _parse_attach,
    b"vKill": _parse_kill_process,
    b"vFile": _parse_file,
}


def _name_end(body: bytes) -> int:
    """Where the name of a `q`/`Q`/`v` packet ends: its first `:`, `;` or `,` (or the body's end)."""
    end = len(body)
    for separator in (b":", b";", b","):
        found = body.find(separator, 0, end)
        if found >= 0:
            end = found
    return end


def _named_dispatcher(table: dict[bytes, _NamedParser]) -> Callable[[bytes], Command]:
    def dispatch(body: bytes) -> Command:
        end = _name_end(body)
        parser = table.get(body[:end])
        if parser is None:
            return UnknownCommand(body)
        return parser(body, body[end + 1 :])

    return dispatch


_BY_FIRST_BYTE: dict[int, Callable[[bytes], Command]] = {
    ord("?"): _parse_query_stop_reason,
    ord("!"): _parse_extended,
    ord("g"): _parse_read_registers,
    ord("G"): _parse_write_registers,
    ord("p"): _parse_read_register,
    ord("P"): _parse_write_register,
    ord("m"): _parse_read_memory,
    ord("M"): _parse_write_memory,
    ord("X"): _parse_write_memory,
    ord("c"): _parse_legacy_resume,
    ord("C"): _parse_legacy_resume,
    ord("s"): _parse_legacy_resume,
    ord("S"): _parse_legacy_resume,
    ord("H"): _parse_select_thread,
    ord("T"): _parse_thread_alive,
    ord("k"): _parse_kill,
    ord("D"): _parse_detach,
    ord("R"): _parse_restart,
    ord("Z"): _parse_breakpoint,
    ord("z"): _parse_breakpoint,
    ord("q"): _named_dispatcher(_QUERIES),
    ord("Q"): _named_dispatcher(_SETTINGS),
    ord("v"): _named_dispatcher(_VERBOSE),
}

_MEMO_MAX_BODY = 200
_MEMO_MAX_ENTRIES = 2048
_memo: dict[bytes, Command] = {}


def parse_command(body: bytes) -> Command:
    """Parse one packet body (as `framing.Packet.body`) into its typed command.

    Raises `ProtocolError` for a malformed packet of an implemented family.
    """
    short = len(body) <= _MEMO_MAX_BODY
    if short:
        known = _memo.get(body)
        if known is not None:
            return known
    parser = _BY_FIRST_BYTE.get(body[0]) if body else None
    command = parser(body) if parser is not None else UnknownCommand(body)
    if short:
        if len(_memo) >= _MEMO_MAX_ENTRIES:
            _memo.clear()
        _memo[body] = command
    return command

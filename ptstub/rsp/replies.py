"""Reply encoders: the bodies ptstub sends back, in gdbserver 13's exact formats.

GDB manual, Remote Protocol appendix: "Standard Replies", "Stop Reply Packets", "General Query
Packets" (`qC`, `qfThreadInfo`, `qXfer`, `qSymbol`, `qRcmd`), "Host I/O Packets" and the File-I/O
"Constants" (errno values, `struct stat`), and "Thread List Format" for `qXfer:threads:read`.

Invariants:
- Every function returns a reply *body*; `framing.encode_packet` frames it. Binary payloads
  (`qXfer` chunks, `vFile:pread`/`readlink` data, `fstat` structs) are escaped here, and nothing
  else needs escaping.
- Signals are given in Linux numbering and written in GDB's (`signals.host_to_gdb_signal`).
- Formats follow gdbserver 13.1 as captured on this machine, e.g.
  `T05swbreak:;06:<rbp>;07:<rsp>;10:<rip>;thread:p1a.1b;core:1;`, `W3;process:1c55`,
  `X1e;process:1cb7`, `<thread id="pd06.d06" core="1" name="mt"/>`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from enum import Enum

from ptstub.events import (
    BreakpointHit,
    Exec,
    Forked,
    Interrupted,
    SignalReceived,
    StepDone,
    SyscallStop,
    ThreadStop,
    VforkDone,
    WatchKind,
    WatchpointHit,
)
from ptstub.rsp.framing import Encoded, escape_binary
from ptstub.rsp.hexutil import hex_encode
from ptstub.rsp.signals import GDB_SIGNAL_TRAP, host_to_gdb_signal
from ptstub.rsp.threadid import ThreadId
from ptstub.values import frozen

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # a structural type for mypy; at run time a plain base with the documented methods

_SIGTRAP = 5
_SIGINT = 2

# --- standard replies ----------------------------------------------------------------------------------


def ok() -> bytes:
    """`OK`."""
    return b"OK"


def unsupported() -> bytes:
    """The empty reply: "this packet is not supported"."""
    return b""


def error(errno: int) -> bytes:
    """`E NN` with two hex digits (gdbserver uses `E01` for most failures)."""
    return b"E%02x" % (errno & 0xFF)


def error_message(text: str) -> bytes:
    """`E.<text>`, the textual error form gdbserver 13 also uses (`E.Btrace not enabled.`)."""
    return b"E." + text.encode("ascii", "replace")


# Zero runs shorter than this go out as plain hex: each run costs the stub a few µs of Python, more than
# GDB spends reading 64 more hex digits (it decodes ~15 ns a byte either way; design-notes, "Speed").
_SHORTEST_ZERO_RUN = bytes(32)
_FULL_ZERO_RUN = b"0*}"  # one '0' repeated 96 more times: the longest run gdbserver sends
_BAD_COUNTS = frozenset(b"#$+-*")  # count characters that would read as framing, an ack or a marker


@functools.lru_cache(maxsize=512)
def _zero_chars(count: int) -> bytes:
    """`count` ASCII '0's, run-length encoded (GDB manual, "Overview": `c*n` repeats c n-29 times)."""
    full, rest = divmod(count, 97)
    parts = [_FULL_ZERO_RUN * full]
    while rest:
        if rest < 4:
            parts.append(b"0" * rest)
            break
        repeats = rest - 1
        while repeats + 29 in _BAD_COUNTS:
            repeats -= 1
        parts.append(b"0*" + bytes((repeats + 29,)))
        rest -= repeats + 1
    return b"".join(parts)


_ZERO_BLOCK = bytes(4096)


def _zero_run_end(data: bytes, pos: int) -> int:
    """The first index at or after `pos` that holds a non-zero byte (or the length of `data`).

    `lstrip` walks a byte at a time, so it only sees the last 256 bytes of a run; whole 4 KiB blocks
    before them are compared with a zero block (memcmp speed). The cost follows the run's length, not
    what follows it, so memory with many zero runs stays linear."""
    size = len(data)
    while True:
        tail = data[pos : pos + 256]
        rest = len(tail.lstrip(b"\0"))
        if rest or pos + 256 >= size:
            return pos + len(tail) - rest
        pos += 256
        while pos + 4096 <= size and data[pos : pos + 4096] == _ZERO_BLOCK:
            pos += 4096


def memory_hex(data: bytes) -> Encoded:
    """An `m` reply: hex with runs of zero bytes run-length encoded, done on the raw bytes (fast:
    memory is mostly zeros where it is large, and `bytes.find` / block compares run at C speed)."""
    parts = []
    pos = 0
    while (start := data.find(_SHORTEST_ZERO_RUN, pos)) >= 0:
        end = _zero_run_end(data, start + len(_SHORTEST_ZERO_RUN))
        parts.append(data[pos:start].hex().encode())
        parts.append(_zero_chars(2 * (end - start)))
        pos = end
    parts.append(data[pos:].hex().encode())
    return Encoded(b"".join(parts))


def registers_hex(data: bytes) -> Encoded:
    """A `g` reply: the register block as hex, zero runs compressed as in `memory_hex` (the AVX and
    x87 state of a `g` is mostly zeros)."""
    return memory_hex(data)


def hex_bytes(data: bytes) -> bytes:
    """Raw bytes as hex: replies to `g`, `p`, `m`."""
    return hex_encode(data)


# --- stop replies --------------------------------------------------------------------------------------


class StopReasonKind(Enum):
    """The `reason:value;` pair of a `T` stop reply."""

    SOFTWARE_BREAKPOINT = "swbreak"
    HARDWARE_BREAKPOINT = "hwbreak"
    WATCH = "watch"
    READ_WATCH = "rwatch"
    ACCESS_WATCH = "awatch"
    FORK = "fork"
    VFORK = "vfork"
    VFORK_DONE = "vforkdone"
    EXEC = "exec"
    SYSCALL_ENTRY = "syscall_entry"
    SYSCALL_RETURN = "syscall_return"
    THREAD_CREATED = "create"


@frozen
class StopReason:
    """Why a thread stopped, beyond its signal. Fields other than `kind` apply to some kinds only:
    `address` to watchpoints, `child` to fork/vfork, `path` to exec, `syscall` to syscall stops."""

    kind: StopReasonKind
    address: int = 0
    child: ThreadId | None = None
    path: bytes = b""
    syscall: int = 0


SOFTWARE_BREAKPOINT = StopReason(StopReasonKind.SOFTWARE_BREAKPOINT)
HARDWARE_BREAKPOINT = StopReason(StopReasonKind.HARDWARE_BREAKPOINT)
VFORK_DONE = StopReason(StopReasonKind.VFORK_DONE)
THREAD_CREATED = StopReason(StopReasonKind.THREAD_CREATED)

# Reasons that are events rather than traps: gdbserver always reports them with SIGTRAP.
_EVENT_KINDS = frozenset(
    {
        StopReasonKind.FORK,
        StopReasonKind.VFORK,
        StopReasonKind.VFORK_DONE,
        StopReasonKind.EXEC,
        StopReasonKind.SYSCALL_ENTRY,
        StopReasonKind.SYSCALL_RETURN,
        StopReasonKind.THREAD_CREATED,
    }
)
_WATCH_KINDS = {
    WatchKind.WRITE: StopReasonKind.WATCH,
    WatchKind.READ: StopReasonKind.READ_WATCH,
    WatchKind.ACCESS: StopReasonKind.ACCESS_WATCH,
}


def _reason_field(reason: StopReason, multiprocess: bool) -> bytes:
    kind = reason.kind
    if kind is StopReasonKind.SOFTWARE_BREAKPOINT:
        return b"swbreak:;"
    if kind is StopReasonKind.HARDWARE_BREAKPOINT:
        return b"hwbreak:;"
    if kind in (StopReasonKind.WATCH, StopReasonKind.READ_WATCH, StopReasonKind.ACCESS_WATCH):
        return b"%s:%016x;" % (kind.value.encode(), reason.address)  # gdbserver pads to 16 digits
    if kind in (StopReasonKind.FORK, StopReasonKind.VFORK):
        child = reason.child if reason.child is not None else ThreadId.ANY_THREAD
        return b"%s:%s;" % (kind.value.encode(), child.format(multiprocess))
    if kind is StopReasonKind.EXEC:
        return b"exec:%s;" % hex_encode(reason.path)
    if kind in (StopReasonKind.SYSCALL_ENTRY, StopReasonKind.SYSCALL_RETURN):
        return b"%s:%x;" % (kind.value.encode(), reason.syscall)
    return b"%s:;" % kind.value.encode()  # vforkdone, create


def stop_reply_signal(
    signal: int,
    thread: ThreadId | None,
    registers: Iterable[tuple[int, bytes]] = (),
    reason: StopReason | None = None,
    *,
    core: int | None = None,
    multiprocess: bool = True,
    library_changed: bool = False,
) -> bytes:
    """A `T` stop reply: `T<sig>[reason;]<regno>:<hex>;...thread:<id>;core:<n>;[library:;]`.

    `signal` is a Linux signal (forced to SIGTRAP for event reasons such as fork or exec, as
    gdbserver does); `registers` are (target-description number, raw little-endian bytes) pairs
    to expedite, normally rbp (6), rsp (7) and rip (16).
    """
    if reason is not None and reason.kind in _EVENT_KINDS:
        gdb_signal = GDB_SIGNAL_TRAP
    else:
        gdb_signal = host_to_gdb_signal(signal)
    parts = [b"T%02x" % gdb_signal]
    if reason is not None:
        parts.append(_reason_field(reason, multiprocess))
    for number, value in registers:
        parts.append(b"%02x:%s;" % (number, hex_encode(value)))
    if thread is not None:
        parts.append(b"thread:%s;" % thread.format(multiprocess))
    if core is not None:
        parts.append(b"core:%x;" % core)
    if library_changed:
        parts.append(b"library:;")
    return b"".join(parts)


def stop_reason_for(event: ThreadStop) -> tuple[int, StopReason | None]:
    """The (Linux signal, reason) pair a backend stop event is reported with.

    The session still drops reasons GDB did not negotiate (`swbreak`, `hwbreak`, fork/exec events).
    `Interrupted` is reported as SIGINT, which is what GDB shows after Ctrl-C with gdbserver.
    """
    if isinstance(event, BreakpointHit):
        return _SIGTRAP, HARDWARE_BREAKPOINT if event.hardware else SOFTWARE_BREAKPOINT
    if type(event) is StepDone:  # second: GDB steps over its breakpoint after every hit
        return _SIGTRAP, None
    if isinstance(event, WatchpointHit):
        return _SIGTRAP, StopReason(_WATCH_KINDS[event.kind], address=event.address)
    if isinstance(event, SignalReceived):
        return event.signal, None
    if isinstance(event, Interrupted):
        return _SIGINT, None
    if isinstance(event, Forked):
        kind = StopReasonKind.VFORK if event.vfork else StopReasonKind.FORK
        return _SIGTRAP, StopReason(kind, child=ThreadId(event.child_pid, event.child_pid))
    if isinstance(event, VforkDone):
        return _SIGTRAP, VFORK_DONE
    if isinstance(event, Exec):
        return _SIGTRAP, StopReason(StopReasonKind.EXEC, path=event.path.encode("utf-8", "surrogateescape"))
    if isinstance(event, SyscallStop):
        kind = StopReasonKind.SYSCALL_RETURN if event.returned else StopReasonKind.SYSCALL_ENTRY
        return _SIGTRAP, StopReason(kind, syscall=event.number)
    assert isinstance(event, StepDone), event
    return _SIGTRAP, None


def exited(code: int, pid: int | None) -> bytes:
    """`W<code>;process:<pid>` (gdbserver 13 prints `%x`: `W3;process:1c55`), or `W<code:02x>`
    without multiprocess (`pid` None)."""
    if pid is None:
        return b"W%02x" % (code & 0xFF)
    return b"W%x;process:%x" % (code & 0xFF, pid)


def killed(signal: int, pid: int | None) -> bytes:
    """`X<gdb sig>;process:<pid>` for a process killed by Linux `signal` (`X%02x` without pid)."""
    gdb_signal = host_to_gdb_signal(signal)
    if pid is None:
        return b"X%02x" % gdb_signal
    return b"X%x;process:%x" % (gdb_signal, pid)


def thread_exited(code: int, thread: ThreadId, multiprocess: bool = True) -> bytes:
    """`w<code>;<thread>` (only after `QThreadEvents:1`)."""
    return b"w%x;%s" % (code & 0xFF, thread.format(multiprocess))


def no_resumed() -> bytes:
    """`N`: no thread is left to resume (only if GDB offered `no-resumed+`)."""
    return b"N"


# --- threads -------------------------------------------------------------------------------------------


def current_thread(thread: ThreadId, multiprocess: bool = True) -> bytes:
    """`QC<thread>`, the `qC` reply."""
    return b"QC" + thread.format(multiprocess)


def thread_list(threads: Iterable[ThreadId], multiprocess: bool = True) -> bytes:
    """`m<id>,<id>,...` for `qfThreadInfo`, or `l` if there are none."""
    ids = b",".join(thread.format(multiprocess) for thread in threads)
    return b"m" + ids if ids else b"l"


def thread_list_end() -> bytes:
    """`l`: the `qsThreadInfo` reply once `thread_list` sent every thread."""
    return b"l"


def thread_alive(alive: bool) -> bytes:
    """The `T<thread>` reply: `OK`, or `E01` for a thread that does not exist."""
    return b"OK" if alive else b"E01"


@frozen
class ThreadDescription:
    """One `<thread>` element of `qXfer:threads:read`. `handle` is the raw pthread_t, if known."""

    thread: ThreadId
    core: int | None = None
    name: str | None = None
    handle: bytes | None = None


_XML_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&apos;"}
# XML 1.0 forbids control characters even as references; GDB's expat would reject the whole list.
_XML_ESCAPES.update({code: "?" for code in range(0x20)})
_XML_ESCAPES[0x7F] = "?"
_escaped_names: dict[str, bytes] = {}


def _xml_attribute(text: str) -> bytes:
    escaped = _escaped_names.get(text)
    if escaped is None:
        escaped = text.translate(_XML_ESCAPES).encode("utf-8", "replace")
        if len(_escaped_names) < 4096:
            _escaped_names[text] = escaped
    return escaped


def threads_xml(threads: Iterable[ThreadDescription], multiprocess: bool = True) -> bytes:
    """The `qXfer:threads:read` document, byte for byte as gdbserver 13 writes it."""
    return b"".join([b"<threads>\n", *(thread_xml_line(entry, multiprocess) for entry in threads), b"</threads>\n"])


def thread_xml_line(entry: ThreadDescription, multiprocess: bool = True) -> bytes:
    """One thread's line of the `qXfer:threads:read` document."""
    line = b'<thread id="%s"' % entry.thread.format(multiprocess)
    if entry.core is not None:
        line += b' core="%d"' % entry.core  # decimal: GDB parses it with strtoulst(..., 0)
    if entry.name is not None:
        line += b' name="%s"' % _xml_attribute(entry.name)
    if entry.handle is not None:
        line += b' handle="%s"' % hex_encode(entry.handle)
    return line + b"/>\n"


def thread_extra_info(text: bytes) -> bytes:
    """The `qThreadExtraInfo` reply: the description, hex-encoded."""
    return hex_encode(text)


# --- qXfer ---------------------------------------------------------------------------------------------


def _escape_limited(data: bytes, limit: int | None) -> tuple[bytes, int]:
    """Escape `data`, cutting it so the escaped form fits in `limit`; return (escaped, bytes used)."""
    escaped = escape_binary(data)
    if limit is None or len(escaped) <= limit:
        return escaped, len(data)
    used = 0
    size = 0
    for byte in data:  # rare: only when escapes push a full-size chunk past the limit
        cost = 2 if byte in b"#$}*" else 1
        if size + cost > limit:
            break
        size += cost
        used += 1
    return escape_binary(data[:used]), used


def qxfer_chunk(document: bytes, offset: int, length: int, max_body: int | None = None) -> bytes:
    """The `qXfer:...:read` reply: `m<data>` if more follows, `l<data>` for the last part.

    `max_body` (optional) bounds the reply body; the chunk is cut so its escaped form fits, and
    GDB simply asks again from where the chunk ended.
    """
    chunk = document[offset : offset + length]
    limit = None if max_body is None else max_body - 1
    escaped, used = _escape_limited(chunk, limit)
    more = offset + used < len(document)
    return (b"m" if more else b"l") + escaped


# --- vFile ---------------------------------------------------------------------------------------------

# Linux errno -> GDB File-I/O errno ("Errno Values"); anything else is EUNKNOWN (9999).
_FILEIO_ERRNO = {
    1: 1,  # EPERM
    2: 2,  # ENOENT
    4: 4,  # EINTR
    5: 5,  # EIO
    9: 9,  # EBADF
    13: 13,  # EACCES
    14: 14,  # EFAULT
    16: 16,  # EBUSY
    17: 17,  # EEXIST
    19: 19,  # ENODEV
    20: 20,  # ENOTDIR
    21: 21,  # EISDIR
    22: 22,  # EINVAL
    23: 23,  # ENFILE
    24: 24,  # EMFILE
    27: 27,  # EFBIG
    28: 28,  # ENOSPC
    29: 29,  # ESPIPE
    30: 30,  # EROFS
    36: 91,  # ENAMETOOLONG
    38: 88,  # ENOSYS
}
FILEIO_EUNKNOWN = 9999


def file_result(value: int) -> bytes:
    """`F<hex>`: a successful vFile call (`open` returns the fd, `close`/`unlink` 0, `pwrite` a count)."""
    return b"F%x" % value


def file_error(errno: int) -> bytes:
    """`F-1,<errno>` with the Linux errno translated to GDB's File-I/O numbering."""
    return b"F-1,%x" % _FILEIO_ERRNO.get(errno, FILEIO_EUNKNOWN)


def file_data(data: bytes, max_body: int | None = None) -> bytes:
    """`F<count>;<escaped data>` for `vFile:pread` and `vFile:readlink`; `count` is the number of
    bytes included, which `max_body` may cut, as gdbserver does."""
    limit = None
    if max_body is not None:
        limit = max_body - len(b"F%x;" % len(data))
    escaped, used = _escape_limited(data, limit)
    return b"F%x;%s" % (used, escaped)


class StatResult(Protocol):
    """What `file_stat` reads: the shape of `os.stat_result`."""

    @property
    def st_dev(self) -> int: ...
    @property
    def st_ino(self) -> int: ...
    @property
    def st_mode(self) -> int: ...
    @property
    def st_nlink(self) -> int: ...
    @property
    def st_uid(self) -> int: ...
    @property
    def st_gid(self) -> int: ...
    @property
    def st_rdev(self) -> int: ...
    @property
    def st_size(self) -> int: ...
    @property
    def st_blksize(self) -> int: ...
    @property
    def st_blocks(self) -> int: ...
    @property
    def st_atime(self) -> float: ...
    @property
    def st_mtime(self) -> float: ...
    @property
    def st_ctime(self) -> float: ...


# File-I/O `struct stat`: 7 x u32, 3 x u64, 3 x u32 time_t, big-endian, 64 bytes ("struct stat").
_FILEIO_STAT = struct.Struct(">7I3Q3I")
_FILE_TYPES = (0o100000, 0o040000, 0o020000)  # S_IFREG, S_IFDIR, S_IFCHR: all File-I/O knows
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


def file_stat(status: StatResult) -> bytes:
    """`F40;<escaped struct stat>` for `vFile:fstat`, in GDB's File-I/O layout."""
    file_type = status.st_mode & 0o170000
    mode = (status.st_mode & 0o777) | (file_type if file_type in _FILE_TYPES else 0)
    packed = _FILEIO_STAT.pack(
        status.st_dev & _U32,
        status.st_ino & _U32,
        mode,
        status.st_nlink & _U32,
        status.st_uid & _U32,
        status.st_gid & _U32,
        status.st_rdev & _U32,
        status.st_size & _U64,
        status.st_blksize & _U64,
        status.st_blocks & _U64,
        int(status.st_atime) & _U32,
        int(status.st_mtime) & _U32,
        int(status.st_ctime) & _U32,
    )
    return b"F%x;%s" % (len(packed), escape_binary(packed))


# --- other queries -------------------------------------------------------------------------------------


def resume_actions(stop: bool = False, range_step: bool = False) -> bytes:
    """The `vCont?` reply, e.g. `vCont;c;C;t;s;S;r` (gdbserver 13's order)."""
    actions = [b"vCont", b"c", b"C"]
    if stop:
        actions.append(b"t")
    actions += [b"s", b"S"]
    if range_step:
        actions.append(b"r")
    return b";".join(actions)


def attached(was_attached: bool) -> bytes:
    """The `qAttached` reply: `1` (attached: GDB detaches on quit) or `0` (created: GDB kills)."""
    return b"1" if was_attached else b"0"


def tls_address(address: int) -> bytes:
    """The `qGetTLSAddr` reply: the address in hex."""
    return b"%x" % address


def symbol_request(name: bytes) -> bytes:
    """`qSymbol:<hex name>`: ask GDB for a symbol's value (the reply to a `qSymbol` packet)."""
    return b"qSymbol:" + hex_encode(name)


def console_output(text: bytes) -> bytes:
    """`O<hex>`: text for GDB's console, sent before the final reply to `qRcmd`."""
    return b"O" + hex_encode(text)


@functools.cache
def _crc_table() -> tuple[int, ...]:
    """Built on the first `qCRC` (`compare-sections`), not at import: ~1 ms that no other request needs."""
    table = []
    for index in range(256):
        crc = index << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & _U32)
    return tuple(table)


def gdb_crc32(data: bytes, crc: int = _U32) -> int:
    """GDB's `qCRC` checksum: MSB-first CRC-32 (polynomial 0x04c11db7), seeded with 0xffffffff and
    not inverted at the end (libiberty `xcrc32`, gdbserver `crc32`). Not `zlib.crc32`."""
    table = _crc_table()
    for byte in data:
        crc = ((crc << 8) & _U32) ^ table[(crc >> 24) ^ byte]
    return crc


def crc_result(crc: int) -> bytes:
    """The `qCRC` reply: `C<crc32 hex>`."""
    return b"C%x" % (crc & _U32)


def search_result(address: int | None) -> bytes:
    """The `qSearch:memory` reply: `1,<addr>` if found, `0` if not."""
    return b"0" if address is None else b"1,%x" % address


def register_list(values: Sequence[bytes]) -> bytes:
    """The `g` reply from per-register raw values already in target-description order."""
    return hex_encode(b"".join(values))

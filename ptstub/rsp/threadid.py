"""Thread ids as RSP writes them: `p<pid>.<tid>`, `p<pid>` (= `.-1`), `p-1`, `-1`, `0`, plain `<tid>`.

GDB manual, Remote Protocol appendix, "Packets" (thread-id syntax) and "General Query Packets"
(`multiprocess` feature). All numbers are hex; `-1` means "all" and `0` means "any (the stub picks)".
Invariants: a `ThreadId` is immutable and hashable; `pid` is None when the id had no `p` part (GDB
then means "in the current process"); `parse_thread_id(x.format(True)) == x` for every id this module
produces.
"""

from __future__ import annotations

from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.hexutil import parse_hex
from ptstub.values import frozen

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import ClassVar

ALL = -1
"""The `-1` wildcard: every thread (or, as a pid, every process)."""
ANY = 0
"""The `0` wildcard: an arbitrary thread (or process) of the stub's choosing."""


@frozen
class ThreadId:
    """One RSP thread id. `pid` None = no `p` part; `tid` (and `pid`) may be ALL (-1) or ANY (0)."""

    pid: int | None
    tid: int

    ANY_THREAD: ClassVar[ThreadId]
    ALL_THREADS: ClassVar[ThreadId]

    @property
    def is_all(self) -> bool:
        """True for `-1` / `p<pid>.-1` / `p-1`: every thread (of the process)."""
        return self.tid == ALL

    @property
    def is_any(self) -> bool:
        """True for `0` / `p<pid>.0`: GDB lets the stub choose."""
        return self.tid == ANY

    def matches(self, pid: int, tid: int) -> bool:
        """Whether the concrete thread (`pid`, `tid`) is selected by this id (wildcards match)."""
        return (self.pid is None or self.pid == pid or self.pid <= 0) and (self.tid == tid or self.tid <= 0)

    def format(self, multiprocess: bool) -> bytes:
        """The id as GDB expects it: `p<pid>.<tid>` with multiprocess, otherwise the bare tid."""
        tid = b"-1" if self.tid == ALL else b"%x" % self.tid
        if not multiprocess or self.pid is None:
            return tid
        pid = b"-1" if self.pid == ALL else b"%x" % self.pid
        return b"p%s.%s" % (pid, tid)

    def __str__(self) -> str:
        return self.format(self.pid is not None).decode()


ThreadId.ANY_THREAD = ThreadId(None, ANY)
ThreadId.ALL_THREADS = ThreadId(None, ALL)


_MAX_ID = 0xFFFFFFFF  # pids and tids are 32-bit (Linux pid_max is at most 2**22)


def _parse_number(field: bytes) -> int:
    if field == b"-1":
        return ALL
    value = parse_hex(field, "thread id")
    if value > _MAX_ID:
        raise ProtocolError(f"thread id {field[:40]!r} is out of range")
    return value


_parsed: dict[bytes, ThreadId] = {}


def parse_thread_id(text: bytes) -> ThreadId:
    """Parse any RSP thread-id form; raise `ProtocolError` on anything else.

    Results are memoized (ids are immutable and GDB repeats the same few in every packet).
    """
    known = _parsed.get(text)
    if known is None:
        known = _parse_thread_id(text)
        if len(_parsed) >= 4096:
            _parsed.clear()
        _parsed[text] = known
    return known


def _parse_thread_id(text: bytes) -> ThreadId:
    if text[:1] == b"p":
        pid_field, dot, tid_field = text[1:].partition(b".")
        pid = _parse_number(pid_field)
        if not dot:
            return ThreadId(pid, ALL)  # `p<pid>` means every thread of that process
        tid = _parse_number(tid_field)
        if pid == ALL and tid != ALL:
            raise ProtocolError(f"thread id {text!r}: a specific thread of all processes")
        return ThreadId(pid, tid)
    return ThreadId(None, _parse_number(text))

"""Program memory of one process through the engine (csrc/ptcore_memory.c, /proc/PID/mem).

Reads show the program's own bytes: the engine hides the int3 of each inserted breakpoint behind the
byte it saved. Writes may go to read-only text (/proc/PID/mem writes through page protections, proc(5))
and keep breakpoints under them in force. A failure names the address range (`MemoryAccessError`).
"""

from __future__ import annotations

import errno as errno_mod

from ptstub.linux.ffi import check_memory, ffi, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any


def read(e: Any, address: int, length: int) -> bytes:
    """Up to `length` bytes at `address` (fewer where readable memory ends)."""
    if length <= 0:
        return b""
    buf = ffi.new("uint8_t[]", length)
    n = check_memory(lib.pt_read_memory(e, address, buf, length), address, length, "read")
    return ffi.buffer(buf, n)[:]


def write(e: Any, address: int, data: bytes) -> None:
    """Every byte of `data` at `address`, or a `MemoryAccessError` naming the first range not written."""
    if not data:
        return
    n = check_memory(lib.pt_write_memory(e, address, data, len(data)), address, len(data), "write")
    if n != len(data):
        check_memory(-errno_mod.EIO, address + n, len(data) - n, "write")

"""Memory: `m`, `M`/`X`, `qCRC` and `qSearch:memory`, on the process `Hg` selected."""

from __future__ import annotations

import errno as errno_mod

from ptstub import logs
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.errors import ProtocolError

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")

MAX_CRC_LENGTH = 1 << 31


class MemoryAccess:
    """Memory requests; no state of its own."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def handle_read_memory(self, c: cmd.ReadMemory) -> bytes:
        length = min(c.length, self.s.conn.features.packet_size // 2)  # GDB sizes `m` so the hex fills PacketSize
        data = self.s.current().read_memory(c.address, length)
        if not data:
            return replies.error(errno_mod.EFAULT)
        return replies.memory_hex(data)

    def handle_write_memory(self, c: cmd.WriteMemory) -> bytes:
        self.s.current().write_memory(c.address, c.data)
        self.s.objects.libraries_doc = None
        return replies.ok()

    def handle_crc(self, c: cmd.ComputeCrc) -> bytes:
        if c.length > MAX_CRC_LENGTH:  # GDB's compare-sections asks for one section at a time
            raise ProtocolError(f"qCRC: length {c.length:#x} is too large", errno_mod.EINVAL)
        data = self.s.current().read_memory(c.address, c.length)
        if len(data) != c.length:
            return replies.error(errno_mod.EFAULT)
        return replies.crc_result(replies.gdb_crc32(data))

    def handle_search_memory(self, c: cmd.SearchMemory) -> bytes:
        target = self.s.current()
        chunk = 1 << 16
        address, end = c.address, min(c.address + c.length, 1 << 64)  # the address space ends there
        while address < end:
            data = target.read_memory(address, min(chunk + len(c.pattern) - 1, end - address))
            index = data.find(c.pattern)
            if index >= 0:
                return replies.search_result(address + index)
            if len(data) < min(chunk, end - address):
                break
            address += chunk
        return replies.search_result(None)

"""Host I/O (`vFile:*`, GDB manual "Host I/O Packets") over `ptstub.hostio.HostFiles`; errors answer
in the packets' own `F-1,errno` form.
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Callable

from ptstub import logs
from ptstub.hostio import HostFiles
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.errors import ProtocolError

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class HostFileHandlers:
    """The `vFile` handlers of one connection."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.files = HostFiles()

    def handle_file_setfs(self, c: cmd.FileSetFilesystem) -> bytes:
        self.files.set_filesystem(c.pid)
        return replies.file_result(0)

    def handle_file_open(self, c: cmd.FileOpen) -> bytes:
        return host_call(lambda: replies.file_result(self.files.open(c.path, c.flags, c.mode)))

    def handle_file_close(self, c: cmd.FileClose) -> bytes:
        def close() -> bytes:
            self.files.close(c.fd)
            return replies.file_result(0)

        return host_call(close)

    def handle_file_read(self, c: cmd.FileRead) -> bytes:
        packet_size = self.s.conn.features.packet_size
        count = min(c.count, packet_size // 2)
        return host_call(lambda: replies.file_data(self.files.pread(c.fd, count, c.offset), packet_size - 16))

    def handle_file_write(self, c: cmd.FileWrite) -> bytes:
        return host_call(lambda: replies.file_result(self.files.pwrite(c.fd, c.data, c.offset)))

    def handle_file_stat(self, c: cmd.FileStat) -> bytes:
        return host_call(lambda: replies.file_stat(self.files.fstat(c.fd)))

    def handle_file_unlink(self, c: cmd.FileUnlink) -> bytes:
        def unlink() -> bytes:
            self.files.unlink(c.path)
            return replies.file_result(0)

        return host_call(unlink)

    def handle_file_readlink(self, c: cmd.FileReadLink) -> bytes:
        return host_call(lambda: replies.file_data(self.files.readlink(c.path)))


def host_call(call: Callable[[], bytes]) -> bytes:
    """One host file operation. An errno answers in vFile's own form (`F-1,errno`); a value the host
    cannot take (a NUL byte in a path: ValueError, an offset beyond off_t: OverflowError, both raised
    by the os module before any system call) is a malformed request, answered `E16` (EINVAL)."""
    try:
        return call()
    except OSError as err:
        return replies.file_error(err.errno or errno_mod.EIO)
    except (ValueError, OverflowError) as err:
        raise ProtocolError(f"vFile: {err}", errno_mod.EINVAL) from None

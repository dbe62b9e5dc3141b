"""Host I/O (`vFile:*`, GDB manual "Host I/O Packets") over `ptstub.hostio.HostFiles`; errors answer
in the packets' own `F-1,errno` form.
"""

from __future__ import annotations

import errno as errno_mod
import logging
from typing import TYPE_CHECKING

from ptstub.hostio import HostFiles
from ptstub.rsp import commands as cmd
from ptstub.rsp import replies

if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logging.getLogger("ptstub.rsp")


class HostFileHandlers:
    """The `vFile` handlers of one connection."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.files = HostFiles()

    def handle_file_setfs(self, c: cmd.FileSetFilesystem) -> bytes:
        self.files.set_filesystem(c.pid)
        return replies.file_result(0)

    def handle_file_open(self, c: cmd.FileOpen) -> bytes:
        try:
            return replies.file_result(self.files.open(c.path, c.flags, c.mode))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_close(self, c: cmd.FileClose) -> bytes:
        try:
            self.files.close(c.fd)
            return replies.file_result(0)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_read(self, c: cmd.FileRead) -> bytes:
        try:
            count = min(c.count, self.s.conn.features.packet_size // 2)
            return replies.file_data(self.files.pread(c.fd, count, c.offset), self.s.conn.features.packet_size - 16)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_write(self, c: cmd.FileWrite) -> bytes:
        try:
            return replies.file_result(self.files.pwrite(c.fd, c.data, c.offset))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_stat(self, c: cmd.FileStat) -> bytes:
        try:
            return replies.file_stat(self.files.fstat(c.fd))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_unlink(self, c: cmd.FileUnlink) -> bytes:
        try:
            self.files.unlink(c.path)
            return replies.file_result(0)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_readlink(self, c: cmd.FileReadLink) -> bytes:
        try:
            return replies.file_data(self.files.readlink(c.path))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

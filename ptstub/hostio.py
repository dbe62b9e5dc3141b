"""GDB's Host I/O (`vFile:*`) on the machine ptstub runs on.

GDB 13's default sysroot is `target:`, so it reads the executable, the dynamic loader and every
shared library through these packets (GDB manual, "Host I/O Packets"). Files are opened in the
filesystem of the process named by `vFile:setfs` (through /proc/PID/root), like gdbserver.
"""

from __future__ import annotations

import os


class HostFiles:
    """The open-file table of one debug connection."""

    def __init__(self) -> None:
        self.fds: set[int] = set()
        self.fs_pid = 0

    def _path(self, path: bytes) -> bytes:
        if self.fs_pid and path.startswith(b"/") and os.path.exists(f"/proc/{self.fs_pid}/root"):
            root = os.readlink(f"/proc/{self.fs_pid}/root").encode()
            if root != b"/":
                return root + path
        return path

    def set_filesystem(self, pid: int) -> None:
        self.fs_pid = pid

    def open(self, path: bytes, flags: int, mode: int) -> int:
        fd = os.open(self._path(path), flags | os.O_CLOEXEC, mode)
        self.fds.add(fd)
        return fd

    def _own(self, fd: int) -> int:
        if fd not in self.fds:
            raise OSError(9, "bad file descriptor")  # EBADF: never touch ptstub's own descriptors
        return fd

    def close(self, fd: int) -> None:
        os.close(self._own(fd))
        self.fds.discard(fd)

    def pread(self, fd: int, count: int, offset: int) -> bytes:
        return os.pread(self._own(fd), count, offset)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        return os.pwrite(self._own(fd), data, offset)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(self._own(fd))

    def unlink(self, path: bytes) -> None:
        os.unlink(self._path(path))

    def readlink(self, path: bytes) -> bytes:
        return os.readlink(self._path(path))

    def close_all(self) -> None:
        for fd in list(self.fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds.clear()

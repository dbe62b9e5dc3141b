"""Thread names from `/proc/PID/task/TID/comm`, through descriptors kept open for the first threads.

The kernel gives another thread's name nowhere else (`prctl(PR_GET_NAME)` reads the caller's own). A
descriptor kept open turns a read into one `pread(2)` instead of open, fstat, ioctl, lseek, read and
close; proc(5) regenerates the text at every read at offset 0, so a rename is seen at once. At most
`COMM_FDS_MAX` are kept: beyond, a read opens and closes the file. When a name is read at all is the
Inferior's decision (`Inferior.threads`, docs/design-notes.md "Thread names").
"""

from __future__ import annotations

import os

COMM_FDS_MAX = 256  # well inside RLIMIT_NOFILE's usual soft limit (1,024), which a launched program inherits


class CommReader:
    """Reads thread names of one process; `close()` lets every descriptor go."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fds: dict[int, int] = {}  # tid -> open comm file, re-read with pread

    def read(self, tid: int) -> str:
        """The thread's name, or "" if it is gone."""
        fd = self._fds.get(tid)
        if fd is not None:
            try:
                return os.pread(fd, 64, 0).rstrip(b"\n").decode(errors="replace")
            except OSError:
                # ESRCH: the thread this fd was opened for exited; its tid may now be a new thread's.
                self.forget(tid)
        try:
            fd = os.open(f"/proc/{self.pid}/task/{tid}/comm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ""  # ESRCH race: the thread exited since the engine last saw it
        try:
            data = os.pread(fd, 64, 0)
        except OSError:
            data = b""
        if len(self._fds) < COMM_FDS_MAX and data:
            self._fds[tid] = fd
        else:
            os.close(fd)
        return data.rstrip(b"\n").decode(errors="replace")

    def forget(self, tid: int) -> None:
        """The thread is gone (or its tid is a new thread's): its descriptor goes."""
        fd = self._fds.pop(tid, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

"""`ThreadList`: the live threads of one traced process as `ThreadInfo` values, for GDB's thread list.

GDB lists every thread at every stop (qXfer:threads:read), with its name and handle. Names come from
/proc/PID/task/TID/comm (proc(5)), read once per stop through a descriptor kept open per thread; the
handle is the thread's fs_base, read once per thread. A `ThreadInfo` value is made again only when
something in it changed. Invariant: the caches hold only threads of the last listing; `clear()`
forgets them all (exec, detach, kill).
"""

from __future__ import annotations

import os

from ptstub.linux.ffi import ffi, lib
from ptstub.target import ThreadInfo, ThreadState

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

STATES = {
    lib.PT_RUNNING: ThreadState.RUNNING,
    lib.PT_STOPPED: ThreadState.STOPPED,
    lib.PT_EXITING: ThreadState.EXITING,
    lib.PT_GONE: ThreadState.GONE,
}
GPR_SIZE = 216  # struct user_regs_struct (<sys/user.h>)
FS_BASE_OFFSET = 21 * 8  # user_regs_struct.fs_base
COMM_FDS_MAX = 256  # comm descriptors kept open; threads beyond these open and close theirs per read
PHASE_EXITING = lib.PT_PHASE_EXITING


class ThreadList:
    """Thread names and handles of process `pid`, cached per stop (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._names: dict[int, tuple[str, int, ThreadInfo | None]] = {}  # tid -> (comm, resumes when read, info)
        self._comm_fds: dict[int, int] = {}  # tid -> open /proc/PID/task/TID/comm, re-read with pread
        self._pointer_unset: dict[int, int] = {}  # tid -> resumes when its fs_base was last read as 0
        self._gpr_buf = ffi.new("uint8_t[]", GPR_SIZE)  # reused by _thread_pointer

    def threads(self, e: Any, resumes: int) -> list[ThreadInfo]:
        """Live threads of engine `e` in creation order (threads past their exit are left out);
        `resumes` counts the resumes so far: a cached name is good until the next one."""
        names = self._names
        result = []
        for i in range(e.nthreads):
            t = e.threads[i]
            state, tid = t.state, t.tid
            if state == lib.PT_GONE or (
                state == lib.PT_EXITING and (t.phase != PHASE_EXITING or _is_zombie(self.pid, tid))
            ):
                continue  # a zombie leader (it called pthread_exit) is gone for GDB, as for gdbserver
            # /proc comm, read once per stop: GDB may ask several times, but any thread that ran may
            # have renamed itself or another (pthread_setname_np; gdb.threads/names.exp). The kernel
            # gives another thread's name nowhere else (PR_GET_NAME reads the caller's own), so this
            # is the one /proc read per stop left: a pread per known thread, an open per new one.
            cached = names.get(tid)
            if cached is None or cached[1] != resumes:
                cached = names[tid] = (self._read_comm(tid), resumes, cached[2] if cached is not None else None)
            name, info, thread_state = cached[0], cached[2], STATES[state]
            pointer = info.thread_pointer if info is not None else 0
            if not pointer and state == lib.PT_STOPPED:
                pointer = self._thread_pointer(e, tid, resumes)
            if info is None or info.state is not thread_state or info.name != name or info.thread_pointer != pointer:
                # A new value only when something changed: GDB lists the threads at every stop.
                info = ThreadInfo(tid, name, -1, thread_state, pointer)
                names[tid] = (name, resumes, info)
            result.append(info)
        if len(names) != len(result):  # a thread exited (one born since was added above)
            self._forget({info.tid for info in result})
        return result

    def _read_comm(self, tid: int) -> str:
        """A thread's comm through a file descriptor kept open per thread: one pread(2) a stop instead
        of open, fstat, ioctl, lseek, read and close (GDB reads every name at every stop). proc(5)
        regenerates the text on each read at offset 0, so a rename is seen at once."""
        fd = self._comm_fds.get(tid)
        if fd is not None:
            try:
                return os.pread(fd, 64, 0).rstrip(b"\n").decode(errors="replace")
            except OSError:
                # ESRCH: the thread this fd was opened for exited; its tid may now be a new thread's.
                del self._comm_fds[tid]
                os.close(fd)
        try:
            fd = os.open(f"/proc/{self.pid}/task/{tid}/comm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ""  # ESRCH race: the thread exited since the engine last saw it
        try:
            data = os.pread(fd, 64, 0)
        except OSError:
            data = b""
        if len(self._comm_fds) < COMM_FDS_MAX and data:
            self._comm_fds[tid] = fd
        else:
            os.close(fd)
        return data.rstrip(b"\n").decode(errors="replace")

    def _thread_pointer(self, e: Any, tid: int, resumes: int) -> int:
        """fs_base of a stopped thread, the `pthread_t` GDB gets as the thread's handle, or 0.

        Read once per thread: the value is kept in its ThreadInfo from the first stop where it is not
        0, as gdbserver keeps the handle libthread_db gave it for the thread's life. A thread that
        moves its own TLS later (arch_prctl(ARCH_SET_FS)) keeps the first value, as with gdbserver;
        exec forgets them all (`clear`). While it reads 0 (the first instructions, before
        the C library set up TLS) it is read again at most once per resume."""
        if self._pointer_unset.get(tid) == resumes:
            return 0
        # ESRCH: the thread exited since the engine saw it stopped; no handle then.
        pointer = 0
        if lib.pt_get_regs(e, tid, self._gpr_buf) == 0:
            pointer = int.from_bytes(ffi.buffer(self._gpr_buf, GPR_SIZE)[FS_BASE_OFFSET : FS_BASE_OFFSET + 8], "little")
        if pointer:
            self._pointer_unset.pop(tid, None)
        else:
            self._pointer_unset[tid] = resumes
        return pointer

    def _forget(self, live: set[int]) -> None:
        """Drop the names (and comm descriptors) of threads that are gone."""
        for tid in [tid for tid in self._pointer_unset if tid not in live]:
            del self._pointer_unset[tid]
        for tid in [tid for tid in self._names if tid not in live]:
            del self._names[tid]
            fd = self._comm_fds.pop(tid, None)
            if fd is not None:
                os.close(fd)

    def clear(self) -> None:
        """Forget every name and handle, closing the comm descriptors."""
        for fd in self._comm_fds.values():
            os.close(fd)
        self._comm_fds.clear()
        self._names.clear()
        self._pointer_unset.clear()


def _is_zombie(pid: int, tid: int) -> bool:
    """The thread has exited and waits to be reaped (state Z in /proc/PID/task/TID/stat), or is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True

"""`ThreadList`: the live threads of one traced process as `ThreadInfo` values, for GDB's thread list.

GDB lists every thread at every stop (qXfer:threads:read), with its name and handle. Names come from
/proc/PID/task/TID/comm (proc(5), `ptstub.linux.comm`), read for a thread seen for the first time, for
the thread of the last event at each stop, and for every thread after `refresh_names()`
(docs/design-notes.md, "Thread names"); the handle is the thread's fs_base, read once per thread. A
`ThreadInfo` value is made again only when something in it changed. Invariant: the caches hold only
threads of the last listing, each tied to its engine record (`serial`: a reused tid is a new thread);
`clear()` forgets them all (exec, detach, kill).
"""

from __future__ import annotations

import errno as errno_mod

from ptstub.linux.comm import CommReader
from ptstub.linux.ffi import check_thread, ffi, lib
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
PHASE_EXITING = lib.PT_PHASE_EXITING


class ThreadList:
    """Thread names and handles of process `pid`, cached per stop (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # tid -> (comm, resumes when read, _epoch when read, the engine record's serial, info)
        self._names: dict[int, tuple[str, int, int, int, ThreadInfo | None]] = {}
        self._epoch = 0  # bumped by refresh_names(): every name is read again
        self._comm = CommReader(pid)
        self._pointer_unset: dict[int, int] = {}  # tid -> resumes when its fs_base was last read as 0
        self._gpr_buf = ffi.new("uint8_t[]", GPR_SIZE)  # reused by _thread_pointer

    def threads(self, e: Any, resumes: int, event_tid: int) -> list[ThreadInfo]:
        """Live threads of engine `e` in creation order (threads past their exit are left out);
        `resumes` counts the resumes so far, `event_tid` is the thread of the last event."""
        names, epoch = self._names, self._epoch
        result = []
        for i in range(e.nthreads):
            t = e.threads[i]
            state, tid, serial = t.state, t.tid, t.serial
            if state == lib.PT_GONE or (
                state == lib.PT_EXITING and (t.phase != PHASE_EXITING or _is_zombie(self.pid, tid))
            ):
                continue  # a zombie leader (it called pthread_exit) is gone for GDB, as for gdbserver
            # The kernel gives another thread's name nowhere but /proc comm (PR_GET_NAME reads the
            # caller's own) and says nothing when one changes (PR_SET_NAME, or a write to
            # /proc/PID/task/TID/comm by any thread allowed to: pthread_setname_np on another thread).
            # Read for a thread seen for the first time, for the thread of the last event at each stop
            # (GDB prints its name in the stop line) and for every thread after refresh_names(): with
            # thousands of idle threads a read per thread per stop was most of the stop.
            cached = names.get(tid)
            if cached is not None and cached[3] != serial:
                self._forget_thread(tid)  # a reused tid is a new thread (a new engine record)
                cached = None
            if cached is None or cached[2] != epoch or (tid == event_tid and cached[1] != resumes):
                info = cached[4] if cached is not None else None
                cached = names[tid] = (self._comm.read(tid), resumes, epoch, serial, info)
            name, info, thread_state = cached[0], cached[4], STATES[state]
            pointer = info.thread_pointer if info is not None else 0
            if not pointer and state == lib.PT_STOPPED:
                pointer = self._thread_pointer(e, tid, resumes)
            if info is None or info.state is not thread_state or info.name != name or info.thread_pointer != pointer:
                # A new value only when something changed: GDB lists the threads at every stop.
                info = ThreadInfo(tid, name, -1, thread_state, pointer)
                names[tid] = (name, cached[1], cached[2], serial, info)
            result.append(info)
        if len(names) != len(result):  # a thread exited (one born since was added above)
            self._forget({info.tid for info in result})
        return result

    def refresh_names(self) -> None:
        """Read every thread's name again at the next `threads()`."""
        self._epoch += 1

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
            self._forget_thread(tid)

    def _forget_thread(self, tid: int) -> None:
        self._names.pop(tid, None)
        self._pointer_unset.pop(tid, None)
        self._comm.forget(tid)

    def clear(self) -> None:
        """Forget every name and handle, closing the comm descriptors."""
        self._comm.close()
        self._names.clear()
        self._pointer_unset.clear()


def _is_zombie(pid: int, tid: int) -> bool:
    """The thread has exited and waits to be reaped (state Z in /proc/PID/task/TID/stat), or is gone."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def live_tids(e: Any) -> list[int]:
    """The tids of the threads that run or are stopped (not those on their way out)."""
    threads = e.threads
    return [threads[i].tid for i in range(e.nthreads) if threads[i].state in (lib.PT_STOPPED, lib.PT_RUNNING)]


def thread_record(e: Any, tid: int) -> Any:
    """The engine's record of thread `tid`; NoSuchThreadError when it has none."""
    index = lib.pt_find_thread(e, tid)
    if index < 0:
        check_thread(-errno_mod.ESRCH, "find", tid)
    return e.threads[index]


def thread_ended(e: Any, tid: int) -> bool:
    """`tid` is not a thread of this process, or it ended and nothing about it is left to report."""
    index = lib.pt_find_thread(e, tid)
    return index < 0 or e.threads[index].state == lib.PT_GONE

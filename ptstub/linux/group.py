"""The Linux `ProcessGroup` and `HostServices` (ptstub.target) that the session is built with.

`LinuxProcessGroup` serves several traced processes through the engines' process group
(csrc/ptcore_group.c) and its one waiter (csrc/ptcore_waiter.c): every call below is one C call over
all the processes it names, which resumes, waits, stops and picks the event to report. Through this
seam the session sees only processes and typed stop events.
`LinuxHost` answers the machine-wide questions from /proc and the filesystem.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, Sequence

from ptstub.events import StopEvent
from ptstub.linux.ffi import check, check_resumed, check_waited, ffi, lib
from ptstub.target import HostServices, ProcessGroup, ResumeAction, ServedProcesses, Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.linux.inferior import Inferior

WAIT_FOREVER = -1


def _engines(processes: Sequence[Any]) -> Any:
    return ffi.new("pt_engine *[]", [process.engine for process in processes] or 1)


def _owner(processes: Sequence[Any], engine: Any) -> Any:
    return next(process for process in processes if process.engine == engine)


class LinuxProcessGroup(ServedProcesses):
    """Every `Inferior` of one session; their engines form one group with one waiter over all of them."""

    def join(self, served: Target, process: Target) -> None:
        into, newcomer = _engines([served, process])  # Inferiors: process joins the group of served
        check(lib.pt_join_group(into, newcomer), "join the process group")

    def resume(self, plans: Sequence[tuple[Target, Mapping[int, ResumeAction]]]) -> list[Target]:
        processes: list[Any] = [process for process, _ in plans]
        for process, (_, actions) in zip(processes, plans, strict=True):
            process.plan_resume(actions)
        which = ffi.new("pt_engine **")
        # each engine raises the tracer's priority for its own resume batch as its policy allows (boost_begin)
        rc = check_resumed(lib.pt_group_resume(_engines(processes), len(processes), which))
        ready = _owner(processes, which[0]) if rc == 1 else None
        for process in processes:
            process.group_resumed(process is ready)
        if ready is not None:  # it had an event pending and ran nothing; the ones started before it are held
            return [ready]
        return list(processes)

    def wait(
        self, running: list[Target], served: Sequence[Target], wake_fd: int | None
    ) -> tuple[Target, StopEvent] | None:
        if running and running[0].ready:
            return running[0], running[0].take_event()
        held: list[Any] = [process for process in served if process not in running]  # they report once ended
        count = ffi.new("int32_t *", len(running))
        engines, which = _engines(running), ffi.new("pt_engine **")
        fd = -1 if wake_fd is None else wake_fd
        rc = lib.pt_group_wait(engines, count, _engines(held), len(held), WAIT_FOREVER, fd, which)
        everyone: list[Any] = [*running, *held]
        running[:] = [_owner(everyone, engines[i]) for i in range(count[0])]
        if rc == -errno.EDEADLK:  # the event went away and a process then had nothing to run
            check_resumed(rc)
        if check_waited(rc) != 1:
            return None
        process = _owner(everyone, which[0])
        return process, process.take_event()

    def next_event(self, processes: Sequence[Target], wake_fd: int, first: int = 0) -> tuple[Target, StopEvent] | None:
        which = ffi.new("pt_engine **")
        count = len(processes)
        rc = lib.pt_group_next_event(_engines(processes), count, first % (count or 1), WAIT_FOREVER, wake_fd, which)
        if rc != 1:
            if rc != -errno.ECHILD:  # -ECHILD: no thread runs anywhere and nothing is pending
                check(rc, "wait")
            return None
        process: Any = _owner(processes, which[0])
        return process, process.take_event()


class LinuxHost:
    """`info os`, executables by pid and the libthread_db search, on the machine ptstub runs on."""

    def osdata(self, table: str) -> bytes | None:
        from ptstub.linux.osdata import osdata  # `info os` only: keep its imports off GDB's connect path

        return osdata(table)

    def executable_of(self, pid: int) -> str:
        return os.readlink(f"/proc/{pid}/exe")

    def thread_db_findable(self, search_path: str | None) -> bool:
        """Whether gdbserver would find a libthread_db along `search_path` (None: never set, the default)."""
        if search_path is None:
            return True
        for entry in search_path.split(":"):
            if entry in ("$pdir", "$sdir") or os.path.exists(os.path.join(entry, "libthread_db.so.1")):
                return True
        return False


def _conforms(
    inferior: Inferior, group: LinuxProcessGroup, host: LinuxHost
) -> tuple[Target, ProcessGroup, HostServices]:
    return inferior, group, host  # mypy: the Linux backend implements the three protocols of the seam

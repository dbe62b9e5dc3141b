"""The Linux `ProcessGroup` and `HostServices` (ptstub.target) that the session is built with.

`LinuxProcessGroup` serves several traced processes through `ptstub.linux.processes`, over engines
that form one process group (csrc/ptcore_group.c); the engines' own return codes (another process has
the event, nothing runs) stay inside that module: through this seam the session sees only processes
and typed stop events.
`LinuxHost` answers the machine-wide questions from /proc and the filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ptstub.events import StopEvent
from ptstub.target import HostServices, ProcessGroup, ResumeAction, Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.linux.inferior import Inferior


class LinuxProcessGroup:
    """Every `Inferior` of one session; their engines form one group, share `waitpid(-1)`, hand statuses over."""

    def join(self, served: Target, process: Target) -> None:
        link: Any = served
        link.link(process)  # served and process are Inferiors: process joins the group of served

    def resume(self, plans: Sequence[tuple[Target, Mapping[int, ResumeAction]]]) -> list[Target]:
        from ptstub.linux.processes import resume_processes

        return resume_processes(plans)

    def wait(
        self, running: list[Target], served: Sequence[Target], wake_fd: int | None
    ) -> tuple[Target, StopEvent] | None:
        from ptstub.linux.processes import wait_processes

        return wait_processes(running, served, wake_fd)

    def next_event(self, processes: Sequence[Target], wake_fd: int, first: int = 0) -> tuple[Target, StopEvent] | None:
        from ptstub.linux.processes import next_event_non_stop

        return next_event_non_stop(processes, wake_fd, first)


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

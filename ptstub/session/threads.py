"""Thread selection: `Hg`/`Hc`, `T`, `qC`, `qfThreadInfo`, `qThreadExtraInfo`, and the rule that turns a
wildcard selection into a concrete thread (the last reported one, else the leader).

The selections themselves are connection state (`ConnectionState.g_thread`, `g_pid`, `c_thread`).
"""

from __future__ import annotations

import errno as errno_mod

from ptstub import logs
from ptstub.errors import TargetError
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.threadid import ThreadId

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class ThreadSelection:
    """Which thread a request is about."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def thread_id(self, tid: int) -> ThreadId:
        if len(self.s.group) > 1:
            owner = self.s.owner(tid)
            if owner is not None:
                return ThreadId(owner.pid, tid)
        return ThreadId(self.s.pid, tid)

    def select(self, tid: int) -> int:
        """A concrete tid for a possibly wildcard selection (0/-1 → the last reported thread)."""
        target = self.s.current()
        if tid > 0 and (target.has_thread(tid) or self.s.owner(tid) is not None):
            return tid
        if tid > 0:
            raise TargetError(f"no thread {tid}", errno_mod.ESRCH)
        last_tid = getattr(self.s.last_event, "tid", 0)
        if last_tid and target.has_thread(last_tid):
            return int(last_tid)
        ids = target.thread_ids()
        if target.pid in ids:
            return int(target.pid)
        if not ids:
            raise TargetError("no threads", errno_mod.ESRCH)
        return int(ids[0])

    def handle_select_thread(self, c: cmd.SelectThread) -> bytes:
        tid = c.thread.tid
        if c.purpose is cmd.ThreadPurpose.REGISTERS:
            if self.s.target is None:
                return replies.error(1)
            pid = c.thread.pid if c.thread.pid is not None and c.thread.pid > 0 else 0
            process = self.s.group.get(pid) if pid else (self.s.owner(tid) if tid > 0 else None)
            if pid and process is None:
                return replies.error(errno_mod.ESRCH)
            process = process or self.s.target
            if tid > 0 and not process.has_thread(tid):
                return replies.error(errno_mod.ESRCH)
            self.s.conn.g_thread = tid
            self.s.conn.g_pid = process.pid if process is not None else 0
        else:
            self.s.conn.c_thread = tid
        return replies.ok()

    def handle_thread_alive(self, c: cmd.IsThreadAlive) -> bytes:
        return replies.thread_alive(self.s.owner(c.thread.tid) is not None)

    def handle_current_thread(self, c: cmd.QueryCurrentThread) -> bytes:
        if self.s.target is None or not self.s.target.alive:
            return replies.unsupported()
        return replies.current_thread(self.thread_id(self.select(0)), self.s.conn.features.multiprocess)

    def handle_list_threads(self, c: cmd.ListThreads) -> bytes:
        if not c.first or self.s.target is None or not self.s.target.alive:
            return replies.thread_list_end()
        ids = [ThreadId(p.pid, tid) for p in self.s.served() for tid in p.thread_ids()]
        return replies.thread_list(ids, self.s.conn.features.multiprocess)

    def handle_thread_extra_info(self, c: cmd.QueryThreadExtraInfo) -> bytes:
        for info in self.s.process_for(c.thread.tid).threads():
            if info.tid == c.thread.tid:
                return replies.thread_extra_info(info.name.encode())
        return replies.error(errno_mod.ESRCH)

"""Non-stop mode (GDB manual, "Remote Non-Stop"): `QNonStop`, `vCont` per thread, `vCtrlC`, the `%Stop`
notification and the `vStopped` queue, and the stop GDB was last told of for each thread.
"""

from __future__ import annotations

from ptstub import logs
from ptstub.events import (
    BreakpointHit,
    Interrupted,
    StopEvent,
    SyscallStop,
)
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.notifications import StopQueue
from ptstub.rsp.threadid import ThreadId
from ptstub.session.runcontrol import resume_actions_of
from ptstub.target import ResumeAction, ResumeKind, Target, ThreadState

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class NonStopQueue:
    """The stops of non-stop mode: queued for GDB, told per thread, asked for by `vCont;t` or `vCtrlC`."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.stops = StopQueue()  # stop replies for `%Stop` / `vStopped`
        self.thread_stops: dict[int, bytes] = {}  # stop reply of each thread GDB knows stopped
        self.stop_asked: set[int] = set()  # threads GDB stopped with vCont;t, not reported yet
        self.ctrl_c_tids: set[int] = set()
        self.rotation = 0  # over several processes: which one is looked at first
        # fork child pid -> (the thread that forked, its fork stop reply)
        self.fork_parents: dict[int, tuple[int, bytes]] = {}

    def handle_set_thread_events(self, c: cmd.SetThreadEvents) -> bytes:
        """`QThreadEvents:0|1`. GDB turns it on while it stops every thread in non-stop mode: it waits
        for each thread it asked to stop, so a thread that ends meanwhile must be reported (`w`), or
        GDB waits for ever (gdb.threads/forking-threads-plus-breakpoint.exp). As gdbserver, only
        exits are reported; GDB finds new threads in the thread list."""
        self.s.conn.thread_events = c.enabled
        for process in self.s.served():
            process.set_options(thread_exits=c.enabled)
        return replies.ok()

    def handle_set_non_stop(self, c: cmd.SetNonStop) -> bytes:
        """`QNonStop:1|0`. GDB switches with no thread running; leaving non-stop stops any that still runs."""
        if not c.enabled and self.s.conn.non_stop:
            for process in self.s.served():
                if process.any_running():
                    self.s.replies.report(process.stop(), process)
        self.s.conn.non_stop = c.enabled
        self.stops.discard()
        self.thread_stops.clear()
        return replies.ok()

    def handle_next_stop(self, c: cmd.NextStopNotification) -> bytes:
        return self.stops.acknowledge()

    def handle_ctrl_c(self, c: cmd.InterruptTarget) -> bytes:
        """`vCtrlC` (non-stop's Ctrl-C): stop one running thread, reported as SIGINT like gdbserver's,
        of the process started or attached last (gdbserver's `kill (-signal_pid, SIGINT)`) if one of
        its threads runs."""
        if not self.s.conn.non_stop:
            return replies.unsupported()
        self.s.alive()
        processes = self.s.served()
        processes.sort(key=lambda p: p.pid != self.s.signal_pid)
        for process in processes:
            for tid in sorted(process.thread_ids(), key=lambda t: t != process.pid):
                if process.is_running(tid) and process.stop_thread(tid):
                    self.ctrl_c_tids.add(tid)
                    return replies.ok()
        return replies.ok()

    def query_stop_reason_non_stop(self) -> bytes:
        """`?` in non-stop: a stop reply for every stopped thread, the first now, the rest by `vStopped`."""
        target = self.s.target
        if target is None or not target.alive:
            return self.stops.restart([])
        stopped = [t.tid for t in target.threads() if t.state is ThreadState.STOPPED]
        elsewhere = [
            t.tid for p in self.s.served() if p is not target for t in p.threads() if t.state is ThreadState.STOPPED
        ]
        if stopped and not self.thread_stops:
            # GDB has been told of no stop yet (a new connection): like gdbserver after an attach or a
            # launch, report one thread stopped and let the others run; GDB takes them as running
            # and stops them itself if it wants them stopped (vCont;t, each reported as signal 0).
            main = self.s.pid if self.s.pid in stopped else stopped[0]
            others = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in stopped if tid != main}
            if others:
                self.s.invalidate()
                target.resume_threads(others)
            stopped = [main]
        return self.stops.restart(
            [(tid, self.thread_stops.get(tid) or self.initial_stop(tid)) for tid in stopped + elsewhere]
        )

    def initial_stop(self, tid: int) -> bytes:
        """A stopped thread GDB was never told about: SIGTRAP for the leader of a launched process
        (stopped at its first instruction), signal 0 otherwise (gdbserver's T00 after an attach)."""
        signal = 5 if self.s.last_event is None and tid == self.s.pid and not self.s.attached else 0
        reply = self.s.replies.stop_reply_for_thread(signal, tid, None)
        self.thread_stops[tid] = reply
        return reply

    def resume_non_stop(self, c: cmd.Resume) -> bytes:
        """vCont in non-stop: each action applies to the threads it names (of any process served), the
        rest keep their state. A process that ended has nothing to resume: `OK`, and its exit is
        (or was just) sent as a notification, which GDB may not have read yet."""
        for process in self.s.served():
            if self.unannounced_child(process.pid):
                continue
            resumes, stops = resume_actions_of(c, process.pid, process.thread_ids())
            # As gdbserver (linux_set_resume_request): a running thread keeps running as it is, and
            # a thread whose stop GDB has not pulled out of the vStopped queue yet stays stopped.
            # (`resume_threads` leaves running threads alone.)
            actions = {tid: resume for tid, resume in resumes.items() if not self.stops.holds(tid)}
            if actions:
                self.s.invalidate()
                for tid in actions:
                    self.thread_stops.pop(tid, None)
                    self.stop_asked.discard(tid)
                self.s.run.last_resume.update(actions)
                process.resume_threads(actions)
            for tid in stops:
                # Also a thread already stopped with an event not handed over yet: if that event is a
                # hit nobody hears of, the stop GDB asked for is what it reports (see _collect_event).
                process.stop_thread(tid)
                self.stop_asked.add(tid)
        if self.s.conn.thread_events:
            self.report_gone_threads(c)
        return replies.ok()

    def report_gone_threads(self, c: cmd.Resume) -> None:
        """A thread GDB asks to stop that ended before the request (and whose end was not reported,
        thread events being off then): its end answers the request, or GDB waits for its stop."""
        for action in c.actions:
            thread = action.thread
            if action.kind is not cmd.ThreadActionKind.STOP or thread is None or thread.tid <= 0:
                continue
            if all(p.thread_ended(thread.tid) for p in self.s.served()) and not self.stops.holds(thread.tid):
                pid = thread.pid if thread.pid is not None and thread.pid > 0 else self.s.pid
                reply = replies.thread_exited(0, ThreadId(pid, thread.tid), self.s.conn.features.multiprocess)
                self.stops.push(reply, thread.tid)

    def unannounced_child(self, pid: int) -> bool:
        """Non-stop: `pid` is a fork child whose parent's fork stop GDB has not taken out of the
        vStopped queue yet. GDB does not know the process, so its wildcard `vCont;c` is not for it
        (gdbserver skips such a child too); resumed, it could run to its end before GDB detaches it."""
        fork = self.fork_parents.get(pid)
        if fork is None:
            return False
        if self.stops.holds(*fork):
            return True
        del self.fork_parents[pid]
        return False

    def next_notification(self, wake_fd: int) -> bytes | None:
        """Non-stop: the `Stop:` notification to send now, collecting thread events until there is one.

        None when GDB has sent something (`wake_fd` readable) or nothing can happen (no thread runs).
        """
        note = self.stops.take_notification()
        while note is None and self.collect_event(wake_fd):
            note = self.stops.take_notification()
        return note

    def collect_event(self, wake_fd: int) -> bool:
        """Take the next thread event GDB hears of into the queue; False when there was none (GDB sent
        something, or nothing runs)."""
        target = self.s.target
        if not self.s.conn.non_stop or target is None:
            return False
        found = self.s.run.next_reported(
            wake_fd, lambda: self.next_event(target, wake_fd), self.resume_unreported, stale_hits=True
        )
        if found is None:
            return False
        process, event = found
        tid: int | None = getattr(event, "tid", None)
        if tid is not None:
            self.stop_asked.discard(tid)
        self.stops.push(self.s.replies.report(event, process), tid)
        return True

    def next_event(self, target: Target, wake_fd: int) -> tuple[Target, StopEvent] | None:
        """The next event of one thread of any process served, the others left as they are."""
        if len(self.s.group) == 1:
            if target.ended:  # its exit status came to another call: report it
                return target, target.take_event()
            if not target.alive:
                return None
            event = target.wait_event(None, wake_fd)
            return None if event is None else (target, event)
        ended = [p for p in self.s.group.members() if p.ended]
        self.rotation += 1
        return self.s.group.next_event(self.s.served() + ended, wake_fd, self.rotation)

    def resume_unreported(self, process: Target, event: SyscallStop | BreakpointHit) -> StopEvent | None:
        """A stop GDB does not hear of: the thread goes on as GDB last resumed it, unless GDB asked it to
        stop (vCont;t) and the hit answered that: then the stop GDB asked for is reported, as gdbserver
        does for a thread whose last resume kind is resume_stop."""
        tid = event.tid
        if tid not in self.stop_asked:
            process.resume_threads({tid: self.s.run.last_resume.get(tid, ResumeAction(ResumeKind.CONTINUE))})
            return None
        return Interrupted(tid, event.pc)

    def discard_stops_of(self, process: Target) -> None:
        """Non-stop: drop the queued stops of one process of several (it is detached or killed)."""
        tids = set(process.thread_ids()) if process.alive else set()
        self.stops.discard(lambda key, reply: key in tids)
        for tid in tids:
            self.thread_stops.pop(tid, None)

    def forget_thread_stops(self) -> None:
        """Non-stop: forget the stops of threads no process served has any more."""
        if len(self.s.group) <= 1 and (self.s.target is None or not self.s.target.alive):
            self.thread_stops.clear()
            return
        self.thread_stops = {tid: reply for tid, reply in self.thread_stops.items() if self.s.owner(tid)}

    def attached_non_stop(self) -> bytes:
        """Non-stop attach (gdbserver): `OK`, the leader's SIGSTOP stop as a notification, and every
        other thread running, as GDB assumes of the threads it then finds (it stops them itself)."""
        target = self.s.alive()
        leader = self.s.threads.select(0)
        target.resume_threads({tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids() if tid != leader})
        assert self.s.last_stop is not None
        self.thread_stops[leader] = self.s.last_stop
        self.stops.push(self.s.last_stop, leader)
        return replies.ok()

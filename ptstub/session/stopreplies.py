"""Stop replies: a typed stop event of a process becomes the `T`/`W`/`X`/`w` reply GDB reads (GDB manual,
"Stop Reply Packets"), and what the session learns from it (the reported thread, a fork child, an
exec's new image, an end).
"""

from __future__ import annotations

from ptstub import logs
from ptstub.errors import PtstubError
from ptstub.events import (
    Exec,
    Exited,
    Forked,
    Interrupted,
    Killed,
    StopEvent,
    ThreadExited,
    signal_name,
)
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.features import NegotiatedFeatures
from ptstub.rsp.threadid import ThreadId
from ptstub.target import Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.arch.x86_64 import RegisterLayout
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")

EXPEDITED = (6, 7, 16)  # rbp, rsp, rip: what GDB reads first at every stop


class StopReplies:
    """Turns stop events into stop replies; remembers the last one for `?`."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.stop_replies: dict[tuple[Any, ...], bytes] = {}
        self.reason_filter: tuple[NegotiatedFeatures, dict[replies.StopReasonKind, bool]] | None = None
        self.expedite: tuple[Any, tuple[tuple[int, int, int], ...] | None] | None = None

    def handle_query_stop_reason(self, c: cmd.QueryStopReason) -> bytes:
        if self.s.conn.non_stop:
            return self.s.nonstop.query_stop_reason_non_stop()
        if self.s.target is None or not self.s.target.alive:
            if self.s.last_stop is not None and self.s.last_stop[:1] in (b"W", b"X"):
                return self.s.last_stop
            return replies.exited(0, None)
        if self.s.last_stop is None:
            tid = self.s.threads.select(0)
            self.s.last_stop = self.stop_reply_for_thread(5, tid, None)
        return self.s.last_stop

    def report(self, event: StopEvent, process: Target | None = None) -> bytes:
        """Turn a stop event of `process` (default: the target) into the stop reply (and remember it
        for `?`); in all-stop the process of the event becomes the target, as gdbserver's current
        thread (in non-stop gdbserver keeps the thread GDB selected)."""
        if process is None or process is self.s.target or process.pid not in self.s.group:
            return self.report_target_event(event)
        if not self.s.conn.non_stop:
            self.s.target = process
            return self.report_target_event(event)
        target, self.s.target = self.s.target, process
        try:
            return self.report_target_event(event)
        finally:
            if target is not None and target.pid in self.s.group:
                self.s.target = target

    def report_target_event(self, event: StopEvent) -> bytes:
        """`report` of an event of the target."""
        self.s.last_event = event
        self.s.invalidate()
        if self.s.run.interrupted is not None:
            # Another event came first (the thread GDB stepped finished): the Ctrl-C stays due, as
            # the SIGINT gdbserver queues stays pending in the kernel, and is asked for again at the
            # next resume, of the process that is then the one to stop (the request made now is
            # withdrawn: left in its engine, it stopped that process later, and a second time).
            interrupted, self.s.run.interrupted = self.s.run.interrupted, None
            if not isinstance(event, Interrupted):
                interrupted.cancel_interrupt()
                self.s.run.interrupt_due = bool(interrupted.alive)
        if isinstance(event, Interrupted):
            self.s.run.interrupt_due = False  # a stop on request answers the Ctrl-C, whichever came first
        if isinstance(event, ThreadExited):
            self.s.nonstop.thread_stops.pop(event.tid, None)
            reply = replies.thread_exited(
                event.code, ThreadId(self.s.pid, event.tid), self.s.conn.features.multiprocess
            )
        elif isinstance(event, Exited):
            self.s.announce(f"\nChild exited with status {event.code}")
            reply = replies.exited(event.code, event.pid if self.s.conn.features.multiprocess else None)
            self.s.life.forget_target()
        elif isinstance(event, Killed):
            self.s.announce(f"\nChild terminated with signal = {event.signal:#x} ({signal_name(event.signal)})")
            reply = replies.killed(event.signal, event.pid if self.s.conn.features.multiprocess else None)
            self.s.life.forget_target()
        else:
            signal, reason = replies.stop_reason_for(event)
            if self.s.conn.non_stop and isinstance(event, Interrupted) and event.tid not in self.s.nonstop.ctrl_c_tids:
                signal = 0  # a vCont;t stop: GDB shows "Thread N stopped" (gdbserver reports it as 0)
            self.s.nonstop.ctrl_c_tids.discard(event.tid)
            if reason is not None and not self.reason_negotiated(reason):
                reason = None
            if type(event) is Exec:  # a new image, no breakpoints left in it
                self.s.regs.layout = None
                self.s.book.forget(self.s.pid)
            if isinstance(event, Forked):
                self.s.life.adopt_fork_child(event.child_pid)
            reply = self.stop_reply_for_thread(signal, event.tid, reason)
            if self.s.conn.non_stop and isinstance(event, Forked):
                self.s.nonstop.fork_parents[event.child_pid] = (event.tid, reply)
            if self.s.conn.non_stop:  # as gdbserver: in non-stop a stop does not change GDB's selected thread
                self.s.nonstop.thread_stops[event.tid] = reply
            else:
                self.s.conn.g_thread = event.tid
                self.s.conn.g_pid = self.s.pid
        self.s.last_stop = reply
        return reply

    def reason_negotiated(self, reason: replies.StopReason) -> bool:
        cached = self.reason_filter
        if cached is None or cached[0] is not self.s.conn.features:
            features = self.s.conn.features
            negotiated = {
                replies.StopReasonKind.SOFTWARE_BREAKPOINT: features.swbreak,
                replies.StopReasonKind.HARDWARE_BREAKPOINT: features.hwbreak,
                replies.StopReasonKind.FORK: features.fork_events,
                replies.StopReasonKind.VFORK: features.vfork_events,
                replies.StopReasonKind.VFORK_DONE: features.vfork_events,
                replies.StopReasonKind.EXEC: features.exec_events,
            }
            cached = self.reason_filter = (features, negotiated)
        return cached[1].get(reason.kind, True)

    def stop_reply_for_thread(self, signal: int, tid: int, reason: replies.StopReason | None) -> bytes:
        registers: tuple[tuple[int, bytes], ...] = ()
        try:
            gpr, xstate = self.s.regs.registers(tid, with_xstate=False)
            layout = self.s.regs.layout_for(tid)
            slices = self.expedited_slices(layout)
            if slices is not None:
                registers = tuple([(n, gpr[start:end]) for n, start, end in slices])
            else:
                registers = tuple([(n, layout.read_register(n, gpr, xstate)) for n in EXPEDITED])
        except PtstubError:
            pass
        # A breakpoint loop stops the same thread at the same place again and again: keep those replies
        # (only for the constant reasons, whose identity stands for their value).
        memo = reason is None or reason is replies.SOFTWARE_BREAKPOINT or reason is replies.HARDWARE_BREAKPOINT
        thread = self.s.threads.thread_id(tid) if len(self.s.group) > 1 else None  # else the target's, made on a miss
        key = (
            signal,
            self.s.pid if thread is None else thread.pid,
            tid,
            id(reason),
            self.s.conn.features.multiprocess,
            registers,
        )
        reply = self.stop_replies.get(key) if memo else None
        if reply is None:
            if thread is None:
                thread = self.s.threads.thread_id(tid)
            reply = replies.stop_reply_signal(
                signal, thread, registers, reason, multiprocess=self.s.conn.features.multiprocess
            )
            if memo:
                if len(self.stop_replies) >= 256:
                    self.stop_replies.clear()
                self.stop_replies[key] = reply
        return reply

    def expedited_slices(self, layout: RegisterLayout) -> tuple[tuple[int, int, int], ...] | None:
        """(regnum, start, end) of the expedited registers in the raw general registers, when they all
        live there (rbp, rsp, rip do on x86-64): a slice each per stop instead of `read_register`."""
        cached = self.expedite
        if cached is None or cached[0] is not layout:
            from ptstub.arch import x86_64

            regs = [layout.register(n) for n in EXPEDITED]
            slices = None
            if all(reg.source is x86_64.Source.GPR for reg in regs):
                slices = tuple((n, reg.offset, reg.offset + reg.size) for n, reg in zip(EXPEDITED, regs, strict=True))
            cached = self.expedite = (layout, slices)
        return cached[1]

"""All-stop run control: `vCont`, `c`, `s`, Ctrl-C, and the wait for the next stop GDB hears of.

The state is one `RunState`; the last resume GDB asked for is kept as it was sent, because a stop GDB
will not hear of (a false condition, an uncaught syscall) resumes the world exactly so again.
"""

from __future__ import annotations

import errno as errno_mod
import logging
import select
from typing import TYPE_CHECKING

from ptstub.errors import TargetError
from ptstub.events import (
    SyscallStop,
)
from ptstub.rsp import commands as cmd
from ptstub.rsp import replies
from ptstub.target import ResumeAction, ResumeKind, Target

if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logging.getLogger("ptstub.rsp")


class RunControl:
    """Whether the world runs, what runs, and the Ctrl-C GDB sent."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.running = False
        self.running_processes: list[Target] = []  # the processes the last resume started
        self.ended_first: Target | None = None  # a held process that ended: reported before anything runs
        self.interrupt_due = False  # a Ctrl-C for a process not running yet: applied when it runs
        self.interrupted: Target | None = None  # the process asked to stop by a Ctrl-C; cleared by the next report
        self.last_resume: dict[int, ResumeAction] = {}
        # the threads there were at GDB's last resume: one born since runs on (see resume_unreported)
        self.resumed_among: tuple[int, ...] | frozenset[int] = ()
        self.resume_plans: dict[tuple[int, int, tuple[int, ...]], tuple[cmd.Resume, dict[int, ResumeAction]]] = {}

    def connection_ended(self) -> None:
        """GDB left: nothing it resumed is waited for, and a Ctrl-C it left due is not the next GDB's."""
        self.running = False
        self.interrupt_due, self.interrupted = False, None

    def handle_resume(self, c: cmd.Resume) -> list[bytes] | bytes | None:
        if self.s.conn.non_stop:
            return self.s.nonstop.resume_non_stop(c)
        if len(self.s.processes) > 1:
            return self.resume_processes(c)
        target = self.s.alive()
        tids = tuple(target.thread_ids())
        # Parsed commands are memoized, so a repeated vCont is the same object: key on its identity
        # (hashing the frozen value walks every field in Python) and keep the object to check it.
        key = (id(c), target.pid, tids)
        plan = self.resume_plans.get(key)
        if plan is not None and plan[0] is c:
            actions = plan[1]
        else:
            actions = {}
            for tid in tids:
                action = c.action_for(self.s.pid, tid)
                if action is None:
                    continue
                resume = action.to_resume_action()
                if resume is not None:
                    actions[tid] = resume
            if len(self.resume_plans) >= 256:
                self.resume_plans.clear()
            self.resume_plans[key] = (c, actions)  # never mutated: _resume and the target only read it
        return self.resume(actions, tids)

    def resume_processes(self, c: cmd.Resume) -> list[bytes] | None:
        """vCont over several processes: each action names threads of one process, or all (`-1`)."""
        plans: list[tuple[Target, dict[int, ResumeAction]]] = []
        for process in self.s.served():
            actions: dict[int, ResumeAction] = {}
            for tid in process.thread_ids():
                action = c.action_for(process.pid, tid)
                resume = action.to_resume_action() if action is not None else None
                if resume is not None:
                    actions[tid] = resume
            if actions:
                plans.append((process, actions))
        return self.resume_plans_of(plans)

    def handle_continue(self, c: cmd.Continue) -> list[bytes] | None:
        chosen = self.s.threads.select(self.s.conn.c_thread if self.s.conn.c_thread > 0 else 0)
        target = self.s.process_for(chosen)
        if c.address is not None:
            self.s.regs.set_pc(chosen, c.address)
        actions = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()}
        actions[chosen] = ResumeAction(ResumeKind.CONTINUE, c.signal)
        return self.resume(actions)

    def handle_step(self, c: cmd.Step) -> list[bytes] | None:
        chosen = self.s.threads.select(self.s.conn.c_thread if self.s.conn.c_thread > 0 else 0)
        if c.address is not None:
            self.s.regs.set_pc(chosen, c.address)
        return self.resume({chosen: ResumeAction(ResumeKind.STEP, c.signal)})

    def resume(self, actions: dict[int, ResumeAction], among: tuple[int, ...] | None = None) -> list[bytes] | None:
        """Resume the target as GDB asked; `among`: its threads now, if the caller has them."""
        target = self.s.alive()
        if len(self.s.processes) > 1:
            return self.resume_plans_of([(self.s.process_for(next(iter(actions))), actions)] if actions else [])
        if not actions:
            return [replies.no_resumed() if self.s.conn.features.no_resumed else replies.error(errno_mod.EINVAL)]
        # A signal GDB names in vCont is delivered even if QProgramSignals leaves it out (`signal
        # SIGTRAP`): that list is for signals the stub delivers on its own, at detach (gdbserver).
        self.s.invalidate()
        self.last_resume = actions
        self.resumed_among = among if among is not None else tuple(target.thread_ids())
        target.resume(actions)
        self.running_processes = [target]
        self.running = True
        if self.interrupt_due:
            self.interrupt()
        return None

    def resume_plans_of(self, plans: list[tuple[Target, dict[int, ResumeAction]]]) -> list[bytes] | None:
        """Resume several processes together (all-stop over processes: the `ProcessGroup`)."""
        self.s.invalidate()
        # The process last started or attached first: the wait sleeps in it, so a Ctrl-C stops it
        # and is reported there, as gdbserver's kill(-signal_pid, SIGINT) (detach-step-over.exp).
        plans = sorted(plans, key=lambda plan: plan[0].pid != self.s.signal_pid)
        ended = [p for p in self.s.processes.values() if p.ended]
        if ended:
            # A process ended while held and GDB was not told yet: that comes first, nothing runs.
            self.ended_first = ended[0]
            self.running = True
            return None
        if not plans:
            return [replies.no_resumed() if self.s.conn.features.no_resumed else replies.error(errno_mod.EINVAL)]
        self.last_resume = {tid: action for _, actions in plans for tid, action in actions.items()}
        self.resumed_among = frozenset(tid for process in self.s.served() for tid in process.thread_ids())
        self.running_processes = self.s.group.resume(plans)
        self.running = True
        if self.interrupt_due:
            self.interrupt()
        return None

    def interrupt(self) -> None:
        """All-stop Ctrl-C. It stops the process started or attached last (gdbserver sends SIGINT to
        its group). It waits for a resume when nothing runs (GDB sent `\x03` between a stop and its
        resume) or when GDB is only stepping one thread of another process over a breakpoint (its
        resume of everything comes next), as the SIGINT gdbserver queues does; dropping it left GDB
        waiting for a stop that never came (detach-step-over.exp). Any other time it stops what runs,
        so it cannot wait for ever on a process GDB keeps stopped (schedule-multiple off)."""
        running = self.running_processes if self.running else []
        first = running[0] if running else None
        if (
            first is None
            or first.ready  # it reports an event it had already, and runs nothing
            or (first.pid != self.s.signal_pid and self.s.signal_pid in self.s.processes and self.stepping_one_thread())
        ):
            self.interrupt_due = True
            return
        self.interrupt_due = False
        self.interrupted = first
        first.interrupt()  # the process the wait sleeps in (the `ProcessGroup`)

    def stepping_one_thread(self) -> bool:
        """The last resume was a single step (or range step) of one thread: GDB's in-line step-over."""
        resume = self.last_resume
        if len(resume) != 1:
            return False
        return next(iter(resume.values())).kind in (ResumeKind.STEP, ResumeKind.RANGE_STEP)

    def wait_for_stop(self, wake_fd: int) -> bytes | None:
        """Wait for the running target; the stop reply, or None when GDB sent something first."""
        if len(self.s.processes) > 1 or self.ended_first is not None:
            return self.wait_for_processes(wake_fd)
        target = self.s.alive()
        while True:
            try:
                event = target.wait(None, wake_fd)
            except TargetError as err:
                # Every resumed thread exited while the others stay held (scheduler-locking):
                # gdbserver answers N, GDB says so and keeps the session (schedlock-thread-exit.exp).
                if err.errno != errno_mod.ECHILD or not self.s.conn.features.no_resumed:
                    raise
                self.running = False
                self.running_processes = []
                self.s.invalidate()
                return replies.no_resumed()
            if event is None:
                return None
            uncaught = (
                self.s.conn.catch_syscalls is not None
                and getattr(event, "number", None) not in self.s.conn.catch_syscalls
            )
            if isinstance(event, SyscallStop) and uncaught:
                self.resume_unreported(target)
                if input_waiting(wake_fd):
                    return None  # as below: GDB's packet (a Ctrl-C) before the next unreported stop
                continue
            if not self.s.book.should_report(event):
                # Every condition false: resume exactly as GDB last did; the engine steps the thread
                # over the breakpoint it stands on (it is resumed unmoved), GDB never hears of the hit.
                self.resume_unreported(target)
                if input_waiting(wake_fd):
                    return None  # the world runs again; GDB's packet (a Ctrl-C) is read first
                continue
            break
        self.running = False
        self.running_processes = []
        return self.s.replies.report(event)

    def resume_unreported(self, target: Target) -> None:
        """Resume after a stop GDB does not hear of, as GDB last resumed; a Ctrl-C that waited for
        the process to run (it had that event already) is asked for now."""
        target.resume(self.actions_again(target))
        if self.interrupt_due:
            self.interrupt()

    def actions_again(self, process: Target) -> dict[int, ResumeAction]:
        """The actions of GDB's last resume for the threads of `process`, and continue for a thread
        born since (it ran from its birth; left out, it stayed stopped for ever at a hit GDB never
        heard of, and its joiner with it: step-over-exec.exp, a false condition in a new thread)."""
        last, among = self.last_resume, self.resumed_among
        tids = process.thread_ids()
        if len(self.s.processes) == 1 and all(tid in last for tid in tids):
            return last  # the common case: GDB resumed every thread and none was born since
        actions = {tid: last[tid] for tid in tids if tid in last}
        for tid in tids:
            if tid not in last and tid not in among:
                actions[tid] = ResumeAction(ResumeKind.CONTINUE)
        return actions

    def wait_for_processes(self, wake_fd: int) -> bytes | None:
        """`wait_for_stop` when the process resumed is not the target, or several run."""
        if self.ended_first is not None:
            process, self.ended_first = self.ended_first, None
            self.running = False
            return self.s.replies.report(process.take_event(), process)
        while True:
            try:
                found = self.s.group.wait(self.running_processes, self.s.served(), wake_fd)
            except TargetError as err:
                if err.errno != errno_mod.ECHILD or not self.s.conn.features.no_resumed:
                    raise
                self.running = False
                self.s.invalidate()
                return replies.no_resumed()
            if found is None:
                return None
            process, event = found
            uncaught = (
                self.s.conn.catch_syscalls is not None
                and getattr(event, "number", None) not in self.s.conn.catch_syscalls
            )
            if (isinstance(event, SyscallStop) and uncaught) or not self.s.book.should_report(event):
                # As for one process (wait_for_stop): every process resumed as GDB last did. A hit whose
                # conditions are all false was reported to GDB here (one stop per false condition).
                plans = [(p, self.actions_again(p)) for p in self.s.served()]
                plans.sort(key=lambda plan: plan[0].pid != self.s.signal_pid)
                self.running_processes = self.s.group.resume([(p, a) for p, a in plans if a])
                if self.interrupt_due:  # it waited for a process that was not running
                    self.interrupt()
                if input_waiting(wake_fd):
                    return None
                continue
            break
        self.running = False
        self.running_processes = []
        return self.s.replies.report(event, process)


def input_waiting(fd: int) -> bool:
    """Whether GDB has sent something on `fd` (a poll that does not wait)."""
    return bool(select.select([fd], [], [], 0)[0])

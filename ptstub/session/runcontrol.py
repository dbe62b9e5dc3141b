"""All-stop run control: `vCont`, `c`, `s`, Ctrl-C, and the wait for the next stop GDB hears of.

The run state is one `RunState`. The last resume GDB asked for is kept as it was sent: a stop GDB will
not hear of (a hit whose conditions are false or that runs commands, an uncaught syscall) resumes the
world exactly so again. `next_reported` is the one loop that skips such stops, for all-stop (one
process or several) and non-stop alike; `resume_actions_of` is the one place a `vCont` becomes
`ResumeAction`s.
"""

from __future__ import annotations

import errno as errno_mod
import select
from collections.abc import Callable, Iterable
from enum import Enum

from ptstub import logs
from ptstub.errors import TargetError
from ptstub.events import BreakpointHit, StopEvent, SyscallStop
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.target import ResumeAction, ResumeKind, Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import TypeGuard

    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")

Found = tuple[Target, StopEvent]
UnreportedStop = SyscallStop | BreakpointHit
# What to do with a stop GDB does not hear of: resume (None), or report this event in its place.
ResumeUnreported = Callable[[Target, UnreportedStop], StopEvent | None]


class RunState(Enum):
    """Where all-stop run control stands between packets."""

    STOPPED = "stopped"  # every thread is stopped and GDB was told why (or nothing is served)
    RUNNING = "running"  # the last resume runs: its stop is still to be reported (`wait_for_stop`)
    END_PENDING = "end pending"  # a process ended while held: reported at once, nothing runs


def resume_actions_of(c: cmd.Resume, pid: int, tids: Iterable[int]) -> tuple[dict[int, ResumeAction], list[int]]:
    """The `vCont` actions for the threads `tids` of process `pid`: what each resumed thread does, and
    the threads it asks to stop (`t`, non-stop only). A thread no action names is left out."""
    actions: dict[int, ResumeAction] = {}
    stops: list[int] = []
    for tid in tids:
        action = c.action_for(pid, tid)
        if action is None:
            continue
        if action.kind is cmd.ThreadActionKind.STOP:
            stops.append(tid)
            continue
        resume = action.to_resume_action()
        if resume is not None:
            actions[tid] = resume
    return actions, stops


class RunControl:
    """Whether the world runs, what runs, and the Ctrl-C GDB sent."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.state = RunState.STOPPED
        self.running_processes: list[Target] = []  # the processes the last resume started
        self.pending_end: Target | None = None  # END_PENDING: the process whose end comes first
        self.interrupt_due = False  # a Ctrl-C for a process not running yet: applied when it runs
        self.interrupted: Target | None = None  # the process asked to stop by a Ctrl-C; cleared by the next report
        self.last_resume: dict[int, ResumeAction] = {}
        # the threads there were at GDB's last resume: one born since runs on (see actions_again)
        self.resumed_among: tuple[int, ...] | frozenset[int] = ()
        self.resume_plans: dict[tuple[int, int, tuple[int, ...]], tuple[cmd.Resume, dict[int, ResumeAction]]] = {}

    @property
    def running(self) -> bool:
        """A resume (or an end to report) is waiting for `wait_for_stop`."""
        return self.state is not RunState.STOPPED

    def stopped(self) -> None:
        """The stop GDB waited for was reported (or nothing can run any more)."""
        self.state = RunState.STOPPED

    def connection_ended(self) -> None:
        """GDB left: nothing it resumed is waited for, and a Ctrl-C it left due is not the next GDB's."""
        self.state = RunState.STOPPED
        self.interrupt_due, self.interrupted = False, None

    def forget(self, process: Target) -> None:
        """`process` is no longer served: nothing waits for it."""
        if process in self.running_processes:
            self.running_processes.remove(process)

    def start_over(self) -> None:
        """A new target replaces every process: no resume of the old ones is pending."""
        self.running_processes, self.pending_end = [], None

    # ------------------------------------------------------------------------------------- resume
    def handle_resume(self, c: cmd.Resume) -> list[bytes] | bytes | None:
        if self.s.conn.non_stop:
            return self.s.nonstop.resume_non_stop(c)
        if len(self.s.group) > 1:
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
            actions = resume_actions_of(c, self.s.pid, tids)[0]
            if len(self.resume_plans) >= 256:
                self.resume_plans.clear()
            self.resume_plans[key] = (c, actions)  # never mutated: resume() and the target only read it
        return self.resume(actions, tids)

    def resume_processes(self, c: cmd.Resume) -> list[bytes] | None:
        """vCont over several processes: each action names threads of one process, or all (`-1`)."""
        plans: list[tuple[Target, dict[int, ResumeAction]]] = []
        for process in self.s.served():
            actions = resume_actions_of(c, process.pid, process.thread_ids())[0]
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
        if len(self.s.group) > 1:
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
        self.state = RunState.RUNNING
        if self.interrupt_due:
            self.interrupt()
        return None

    def resume_plans_of(self, plans: list[tuple[Target, dict[int, ResumeAction]]]) -> list[bytes] | None:
        """Resume several processes together (all-stop over processes: the `ProcessGroup`)."""
        self.s.invalidate()
        # The process last started or attached first: the wait sleeps in it, so a Ctrl-C stops it
        # and is reported there, as gdbserver's kill(-signal_pid, SIGINT) (detach-step-over.exp).
        plans = sorted(plans, key=lambda plan: plan[0].pid != self.s.signal_pid)
        ended = [p for p in self.s.group.members() if p.ended]
        if ended:
            # A process ended while held and GDB was not told yet: that comes first, nothing runs.
            self.pending_end = ended[0]
            self.state = RunState.END_PENDING
            return None
        if not plans:
            return [replies.no_resumed() if self.s.conn.features.no_resumed else replies.error(errno_mod.EINVAL)]
        self.last_resume = {tid: action for _, actions in plans for tid, action in actions.items()}
        self.resumed_among = frozenset(tid for process in self.s.served() for tid in process.thread_ids())
        self.running_processes = self.s.group.resume(plans)
        self.state = RunState.RUNNING
        if self.interrupt_due:
            self.interrupt()
        return None

    # ------------------------------------------------------------------------------------- Ctrl-C
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
            or (first.pid != self.s.signal_pid and self.s.signal_pid in self.s.group and self.stepping_one_thread())
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

    # ------------------------------------------------------------------------------------- wait
    def wait_for_stop(self, wake_fd: int) -> bytes | None:
        """Wait for what runs; the stop reply, or None when GDB sent something first."""
        if self.state is RunState.END_PENDING and self.pending_end is not None:
            process, self.pending_end = self.pending_end, None
            self.state = RunState.STOPPED
            return self.s.replies.report(process.take_event(), process)
        if len(self.s.group) > 1:
            next_stop: Callable[[], Found | None] = lambda: self.s.group.wait(  # noqa: E731
                self.running_processes, self.s.served(), wake_fd
            )
        else:
            target = self.s.alive()

            def next_stop() -> Found | None:
                event = target.wait(None, wake_fd)
                return None if event is None else (target, event)

        try:
            found = self.next_reported(wake_fd, next_stop, self.resume_all_again, stale_hits=False)
        except TargetError as err:
            # Every resumed thread exited while the others stay held (scheduler-locking):
            # gdbserver answers N, GDB says so and keeps the session (schedlock-thread-exit.exp).
            if err.errno != errno_mod.ECHILD or not self.s.conn.features.no_resumed:
                raise
            self.state = RunState.STOPPED
            self.running_processes = []
            self.s.invalidate()
            return replies.no_resumed()
        if found is None:
            return None
        self.state = RunState.STOPPED
        self.running_processes = []
        return self.s.replies.report(found[1], found[0])

    def next_reported(
        self,
        wake_fd: int,
        next_stop: Callable[[], Found | None],
        resume_unreported: ResumeUnreported,
        *,
        stale_hits: bool,
    ) -> Found | None:
        """The one loop over stops GDB will not hear of: take the next stop; one GDB does not hear of
        is resumed as GDB last resumed (or replaced by the event `resume_unreported` gives), and GDB's
        packets go first when it sent any (a Ctrl-C; a stream of hits nobody hears of always has the
        next one ready: interrupt-while-step-over.exp). None when GDB sent something or nothing came."""
        while True:
            found = next_stop()
            if found is None:
                return None
            process, event = found
            if not self.unreported(event, process, stale_hits=stale_hits):
                return found
            instead = resume_unreported(process, event)
            if instead is not None:
                return process, instead
            if input_waiting(wake_fd):
                return None

    def unreported(self, event: StopEvent, process: Target, *, stale_hits: bool) -> TypeGuard[UnreportedStop]:
        """Whether GDB does not hear of `event`: a syscall it does not catch, a hit whose conditions are
        all false or that ran its commands, and with `stale_hits` (non-stop, where threads run while
        GDB edits breakpoints) a hit whose breakpoint GDB removed meanwhile, which gdbserver discards."""
        if isinstance(event, SyscallStop):
            catch = self.s.conn.catch_syscalls
            return catch is not None and event.number not in catch
        if stale_hits and isinstance(event, BreakpointHit) and not self.s.book.breakpoint_at(process.pid, event.pc):
            return True
        return not self.s.book.should_report(event)

    def resume_all_again(self, process: Target, event: UnreportedStop) -> StopEvent | None:
        """All-stop: every process resumed as GDB last did (the engine steps a thread off the
        breakpoint it stands on); a Ctrl-C that waited for the process to run is asked for now."""
        if len(self.s.group) > 1:
            plans = [(p, self.actions_again(p)) for p in self.s.served()]
            plans.sort(key=lambda plan: plan[0].pid != self.s.signal_pid)
            self.running_processes = self.s.group.resume([(p, a) for p, a in plans if a])
        else:
            process.resume(self.actions_again(process))
        if self.interrupt_due:
            self.interrupt()
        return None

    def actions_again(self, process: Target) -> dict[int, ResumeAction]:
        """The actions of GDB's last resume for the threads of `process`, and continue for a thread
        born since (it ran from its birth; left out, it stayed stopped for ever at a hit GDB never
        heard of, and its joiner with it: step-over-exec.exp, a false condition in a new thread)."""
        last, among = self.last_resume, self.resumed_among
        tids = process.thread_ids()
        if len(self.s.group) == 1 and all(tid in last for tid in tids):
            return last  # the common case: GDB resumed every thread and none was born since
        actions = {tid: last[tid] for tid in tids if tid in last}
        for tid in tids:
            if tid not in last and tid not in among:
                actions[tid] = ResumeAction(ResumeKind.CONTINUE)
        return actions


def input_waiting(fd: int) -> bool:
    """Whether GDB has sent something on `fd` (a poll that does not wait)."""
    return bool(select.select([fd], [], [], 0)[0])

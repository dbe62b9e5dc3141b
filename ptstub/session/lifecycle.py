"""Process lifecycle: `vRun`, `vAttach`, `R`, `k`/`vKill`, `D`, fork children that join, and processes
that end; with the persistent breakpoint commands GDB can leave running after `D`.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import os
from collections.abc import Callable

from ptstub import logs
from ptstub.errors import PtstubError
from ptstub.events import (
    BreakpointHit,
    Exec,
    Exited,
    Interrupted,
    Killed,
    SignalReceived,
)
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.target import ResumeAction, ResumeKind, Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class ProcessLifecycle:
    """Starts, adopts, detaches, kills and forgets the processes served."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def adopt_fork_child(self, child_pid: int) -> None:
        """The stopped child of a reported fork joins the session as a process of its own: GDB detaches
        it (`D;pid`, detach-on-fork on) or debugs it beside the parent."""
        parent = self.s.alive()
        child = parent.adopt_fork_child(child_pid)
        self.join(parent, child)
        self.s.book.copy_to_child(parent.pid, child_pid)
        if parent.pid in self.s.attached_pids:  # as gdbserver: a child inherits how its parent came
            self.s.attached_pids.add(child_pid)

    def join(self, served: Target | None, process: Target) -> None:
        """`process` is served beside `served`, in one `ProcessGroup`."""
        if self.s.conn.thread_events:
            process.set_options(thread_exits=True)
        self.s.group.serve(process, beside=served)

    def forget_target(self) -> None:
        """The target ended: out of the session; another process (if any) becomes the target."""
        target = self.s.target
        self.s.run.stopped()
        if target is not None:
            self.forget_process(target)
        self.s.nonstop.forget_thread_stops()
        if self.s.target is None and not self.s.conn.extended:
            self.s.exit_requested = True

    def forget_process(self, process: Target) -> None:
        self.s.invalidate()  # its threads leave the thread list (threadapply.exp "kill-and-remove")
        self.s.nonstop.fork_parents.pop(process.pid, None)
        self.s.group.forget(process.pid)
        self.s.attached_pids.discard(process.pid)
        self.s.book.forget(process.pid)
        self.s.run.forget(process)
        process.close()
        if self.s.target is process:
            # Another process becomes the target, even one that ended meanwhile and is still to be
            # reported (it is, at the next resume).
            remaining = self.s.served() or self.s.group.members()
            self.s.target = remaining[0] if remaining else None
        if self.s.conn.g_pid == process.pid:
            self.s.conn.g_pid, self.s.conn.g_thread = 0, 0

    def handle_run(self, c: cmd.RunProgram) -> bytes:
        launcher = self.s.launcher
        if launcher is None:
            return replies.error(errno_mod.EPERM)
        argv = [os.fsdecode(c.program)] + [os.fsdecode(a) for a in c.arguments] if c.program else []
        if not argv:
            argv = list(self.s.settings.program)
        if not argv:
            return replies.error(errno_mod.ENOENT)
        try:
            self.start_target(lambda: launcher(argv, self.s.settings), attached=False)
        except PtstubError as err:
            self.s.announce(str(err))
            return replies.error(errno_mod.ENOENT)
        self.s.settings.program = argv
        if self.s.conn.non_stop:
            # The reply to vRun is a plain stop reply, not a notification; gdbserver also makes the new
            # process's thread the general thread, as GDB expects.
            self.s.conn.g_thread = self.s.threads.select(0)
            return self.s.nonstop.initial_stop(self.s.conn.g_thread)
        return self.s.replies.handle_query_stop_reason(cmd.QueryStopReason())

    def handle_attach(self, c: cmd.AttachProcess) -> bytes:
        attacher = self.s.attacher
        if attacher is None:
            return replies.error(errno_mod.EPERM)
        if any(p.pid == c.pid for p in self.s.served()):
            # Already ours: replacing the target would detach it first and attach anew; gdbserver's
            # PTRACE_ATTACH fails here and GDB reports the attach as failed.
            self.s.announce(f"Cannot attach to process {c.pid}: Operation not permitted (1)")
            return replies.error(errno_mod.EPERM)
        try:
            self.start_target(lambda: attacher(c.pid), attached=True)
        except PtstubError as err:
            self.s.announce(str(err))
            return replies.error(errno_mod.EPERM)
        # gdbserver reports an attach as a SIGSTOP stop of the leader (T13), or as the signal that
        # arrived with it (the Linux backend keeps that one; other targets have none).
        pending = self.s.alive().take_pending_signal()
        if pending is not None:
            return self.s.replies.report(pending)
        self.s.last_stop = self.s.replies.stop_reply_for_thread(19, self.s.threads.select(0), None)
        if self.s.conn.non_stop:
            return self.s.nonstop.attached_non_stop()
        return self.s.last_stop

    def handle_query_attached(self, c: cmd.QueryAttached) -> bytes:
        if c.pid is not None and c.pid in self.s.group:
            return replies.attached(c.pid in self.s.attached_pids)
        return replies.attached(self.s.attached)

    def handle_restart(self, c: cmd.Restart) -> None:
        launcher = self.s.launcher
        if self.s.conn.extended and self.s.settings.program and launcher is not None:
            self.replace_target(lambda: launcher(list(self.s.settings.program), self.s.settings), attached=False)
        return None

    def start_target(self, start: Callable[[], Target], attached: bool) -> None:
        """vRun / vAttach: with the multiprocess extensions in extended mode the new process joins the
        ones served (GDB's `add-inferior` then `run` or `attach`; gdbserver refuses a second process
        only without them), otherwise it replaces the target."""
        if not (self.s.conn.extended and self.s.conn.features.multiprocess and self.s.served()):
            self.replace_target(start, attached)
            return
        process = start()
        self.join(self.s.target, process)
        self.s.target = process
        self.s.signal_pid = process.pid
        self.s.apply_target_options()
        if self.s.conn.pass_signals:
            process.set_pass_signals(self.s.conn.pass_signals)
        if attached:
            self.s.attached_pids.add(process.pid)
        else:
            self.s.attached_pids.discard(process.pid)
        self.s.conn.g_pid, self.s.conn.g_thread = process.pid, process.pid  # gdbserver: the new process is current
        self.s.last_event = None
        self.s.last_stop = None
        self.s.regs.layout = None
        self.s.invalidate()

    def replace_target(self, start: Callable[[], Target], attached: bool) -> None:
        """End the current process (if any) and serve the one `start` gives, with fresh stop state."""
        self.drop_target()
        self.s.nonstop.stops.discard()
        self.s.nonstop.thread_stops.clear()
        self.s.run.start_over()
        self.s.target = start()
        self.s.group.start_over(self.s.target)
        self.s.signal_pid = self.s.target.pid
        self.s.apply_target_options()
        self.s.attached_pids = {self.s.target.pid} if attached else set()
        self.s.last_event = None
        self.s.last_stop = None
        self.s.regs.layout = None

    def drop_target(self) -> None:
        if self.s.target is not None and self.s.target.alive:
            if self.s.attached:
                self.s.target.detach()
            else:
                self.s.target.kill()
        if self.s.target is not None:
            self.s.target.close()
        self.s.target = None
        self.release_others()
        self.s.book.clear()
        self.s.invalidate()

    def release_others(self) -> None:
        """Let every process but the target go (fork children GDB kept, processes run or attached
        beside it): attached ones are detached, the ones ptstub started are killed, as gdbserver's
        detach_or_kill_for_exit does; detached, a started program ran on after ptstub had gone."""
        for process in self.s.group.members():
            if process is self.s.target:
                continue
            self.s.group.forget(process.pid)
            self.s.book.forget(process.pid)
            try:
                if process.pid in self.s.attached_pids:
                    process.detach()
                else:
                    process.kill()
            finally:
                self.s.attached_pids.discard(process.pid)
                process.close()
        self.s.run.running_processes = [p for p in self.s.run.running_processes if p is self.s.target]

    def handle_kill(self, c: cmd.KillProcess) -> bytes | None:
        self.s.run.interrupt_due = False
        if c.pid is not None and len(self.s.group) > 1:
            process = self.s.group.get(c.pid)
            if process is None:
                return replies.error(errno_mod.ESRCH)
            # One of several processes (`vKill;pid`): the others stay (GDB's `kill inferiors N`).
            if self.s.conn.non_stop:
                self.s.nonstop.discard_stops_of(process)
            if process.alive:
                process.kill()
            self.forget_process(process)
            self.s.last_stop = None
            return replies.ok()
        if self.s.target is not None:
            pid = self.s.target.pid
            self.s.nonstop.stops.discard()
            self.s.nonstop.thread_stops.clear()
            for other in self.s.group.members():
                if other is not self.s.target:  # `k`: every process
                    other.kill()
                    self.forget_process(other)
            if self.s.target.alive:
                self.s.target.kill()
            self.s.target.close()
            self.s.group.forget(pid)
            self.s.target = None
            self.s.last_stop = replies.killed(9, pid if self.s.conn.features.multiprocess else None)
        if not self.s.conn.extended:
            self.s.exit_requested = True
            if c.pid is None:
                self.s.finished = True
        return replies.ok() if c.pid is not None else None

    def handle_detach(self, c: cmd.Detach) -> bytes:
        self.s.run.interrupt_due = False
        process = self.s.group.get(c.pid) if c.pid is not None else None
        if c.pid is not None and process is None:
            return replies.error(errno_mod.ESRCH)
        target = process or self.s.alive()
        if self.keeps_commands_after_detach(target):
            return self.detach_leaving_commands(target)
        self.s.announce(f"Detaching from process {target.pid}")
        if self.s.conn.non_stop and len(self.s.group) > 1:
            self.s.nonstop.discard_stops_of(target)
        elif target is self.s.target or self.s.conn.non_stop:
            self.s.nonstop.stops.discard()
            self.s.nonstop.thread_stops.clear()
        allowed = self.s.conn.program_signals
        was_target = target is self.s.target
        target.detach(None if allowed is None or not was_target else allowed.__contains__)
        self.forget_process(target)
        if was_target:
            self.s.last_stop = None
        if self.s.target is not None:
            # Others remain (GDB let one of several go; with follow-fork-mode child the child it kept
            # is now the process served, as gdbserver keeps serving it).
            self.s.apply_target_options()
            self.s.invalidate()
            return replies.ok()
        self.s.last_stop = None
        if not self.s.conn.extended:
            self.s.exit_requested = True
            self.s.finished = True
        return replies.ok()

    def keeps_commands_after_detach(self, target: Target) -> bool:
        """Whether `D` leaves the program traced and running with its breakpoint commands (GDB sets
        `persist` by default: `set disconnected-dprintf on`). Served for the simple case only: one
        process, all-stop, `target remote`; otherwise the detach is a plain one and the commands end."""
        pid = target.pid
        if self.s.conn.extended or self.s.conn.non_stop or target is not self.s.target or len(self.s.group) != 1:
            return False
        return self.s.book.has_persistent_commands(pid)

    def detach_leaving_commands(self, target: Target) -> bytes:
        """gdbserver's `handle_detach` with persistent commands: it stays attached, says so (its words),
        resumes every thread and answers OK; the commands keep printing while no GDB is connected.
        Signals GDB would have been told of go to the program, forks are let go (no GDB to follow them)."""
        import _signal

        self.s.announce("Persistent commands are present, leaving gdbserver attached to the process")
        target.set_options(fork_events=False, catch_syscalls=False, thread_exits=False)
        target.set_pass_signals(frozenset(range(1, 65)) - {_signal.SIGTRAP, _signal.SIGSTOP})
        self.s.conn.catch_syscalls = None
        target.resume({tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()})
        self.s.detached_with_commands = True
        self.s.finished = True
        return replies.ok()

    def run_detached_commands(self, wake_fd: int | None) -> bool:
        """Serve the program GDB detached from leaving persistent commands, with no GDB: hits run their
        commands, a signal goes to the program, anything else resumes it. True once it ended (told as
        when GDB is connected); False when `wake_fd` (a new GDB) is readable first: the program is
        stopped and keeps no breakpoint, as `close` leaves a program whose GDB left it running."""
        self.s.detached_with_commands = False
        target = self.s.target
        while target is not None and target.alive:
            event = target.wait(None, wake_fd)
            if event is None:
                self.stop_for_next_client(target)
                return False
            if isinstance(event, (Exited, Killed)):
                self.s.replies.report(event)
                return True
            if type(event) is Exec:
                self.s.replies.report(event)  # the new image has none of the breakpoints: the session forgets them
            else:
                self.s.book.should_report(event)  # runs the commands of a hit, reports nothing
            actions = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()}
            if isinstance(event, SignalReceived):
                actions[event.tid] = ResumeAction(ResumeKind.CONTINUE, event.signal)
            target.resume(actions)
        return True

    def stop_for_next_client(self, target: Target) -> None:
        """A GDB connects to the program left running with commands: stop it and make that stop the one
        `?` reports (not GDB's last stop, long gone). A hit the stop caught runs its commands and is
        reported as a plain stop: the breakpoints go with the departed GDB (`close`)."""
        with contextlib.suppress(PtstubError):
            event = target.stop()
            if type(event) is BreakpointHit:
                self.s.book.should_report(event)
                event = Interrupted(event.tid, event.pc)
            self.s.replies.report(event)
        self.s.finished = False  # the program is served again, to the GDB that is connecting

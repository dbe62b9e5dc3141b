"""One GDB debug connection's server: the handler table, the processes served, and the parts.

`Session` owns what every part needs (the `ProcessGroup`, which holds the processes served, and the
target among them, the launcher and attacher, the last stop) and the connection state; each part
owns its own state and handlers: thread selection (threads), the register cache (registers),
memory, the breakpoint book (breakpoints), run control (runcontrol), non-stop's queue (nonstop), stop
replies (stopreplies), process lifecycle (lifecycle), qXfer objects (objects), `monitor` and `vFile`.
The dispatcher maps a failure to `E NN` in one place (`handle_packet`). The session never parses or frames bytes
(`ptstub.rsp` does) and never calls ptrace: it speaks to the backend only through `ptstub.target`.
Behaviour follows GNU gdbserver 13.1 as the tests capture it (tests/gdb/ runs each GDB script against
both stubs, conformance/ compares GDB's own testsuite with gdbserver's checked-in result).
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import sys
from collections.abc import Callable, Mapping, Sequence

from ptstub import logs
from ptstub.errors import PtstubError, TargetError
from ptstub.events import StopEvent
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.commands import parse_command
from ptstub.rsp.errors import ProtocolError
from ptstub.session.breakpoints import BreakpointBook
from ptstub.session.connection import ConnectionState
from ptstub.session.hostfiles import HostFileHandlers
from ptstub.session.lifecycle import ProcessLifecycle
from ptstub.session.memory import MemoryAccess
from ptstub.session.monitor import MonitorCommands
from ptstub.session.nonstop import NonStopQueue
from ptstub.session.objects import TransferObjects
from ptstub.session.options import ConnectionOptions
from ptstub.session.registers import RegisterCache
from ptstub.session.runcontrol import RunControl
from ptstub.session.stopreplies import StopReplies
from ptstub.session.threads import ThreadSelection
from ptstub.settings import LaunchSettings
from ptstub.target import HostServices, ProcessGroup, ResumeAction, ResumeKind, ServedProcesses, Target

log = logs.logger("ptstub.rsp")

Launcher = Callable[[list[str], LaunchSettings], Target]
Attacher = Callable[[int], Target]
TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    Handler = Callable[[Any], bytes | list[bytes] | None]


class Session:
    """Serves one target (or none, in extended mode) to one GDB at a time."""

    def __init__(
        self,
        target: Target | None,
        *,
        group: ProcessGroup | None = None,
        host: HostServices | None = None,
        launcher: Launcher | None = None,
        attacher: Attacher | None = None,
        extended: bool = False,
        attached: bool = False,
        announce: Callable[[str], None] | None = None,
        program: list[str] | None = None,
    ) -> None:
        self.target = target
        # Every process served (docs/design-notes.md, "Several processes"), owned by the group: the
        # first one and each fork child GDB keeps; `target` is the one events and wildcard selections
        # fall back to.
        self.group: ProcessGroup = group if group is not None else NoProcessGroup()
        self.group.start_over(target)
        self.host: HostServices = host or NoHost()
        self.launcher = launcher
        self.attacher = attacher
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.settings = LaunchSettings(program=list(program or []))
        self.conn = ConnectionState(extended=extended)
        self.finished = False
        self.exit_requested = False
        # GDB detached leaving persistent breakpoint commands: the program runs on, traced, with them
        # (`run_detached_commands`, called by the CLI once the connection is over).
        self.detached_with_commands = False
        self.last_stop: bytes | None = None
        self.last_event: StopEvent | None = None
        self.signal_pid = target.pid if target is not None else 0  # gdbserver's signal_pid: Ctrl-C goes there
        # Processes ptstub attached to (detached at the end), not started (killed): gdbserver's
        # process->attached, which a fork child inherits.
        self.attached_pids: set[int] = {target.pid} if attached and target is not None else set()
        self.agent_output_fd = 1  # where a command's printf writes: the program's stdout (ptstub's own)
        self.threads = ThreadSelection(self)
        self.regs = RegisterCache(self)
        self.memory = MemoryAccess(self)
        self.book = BreakpointBook(self)
        self.nonstop = NonStopQueue(self)
        self.run = RunControl(self)
        self.replies = StopReplies(self)
        self.life = ProcessLifecycle(self)
        self.objects = TransferObjects(self)
        self.monitor = MonitorCommands(self)
        self.files = HostFileHandlers(self)
        self.options = ConnectionOptions(self)
        self.handlers = self._handler_table()

    def _handler_table(self) -> dict[type, Handler]:
        """Each command type and the part that answers it."""
        options, threads, regs, memory = self.options, self.threads, self.regs, self.memory
        run, nonstop, life, objects, files = self.run, self.nonstop, self.life, self.objects, self.files
        return {
            cmd.QuerySupported: options.handle_query_supported,
            cmd.StartNoAckMode: options.handle_start_no_ack,
            cmd.QueryStopReason: self.replies.handle_query_stop_reason,
            cmd.EnableExtendedMode: options.handle_enable_extended,
            cmd.SelectThread: threads.handle_select_thread,
            cmd.ReadRegisters: regs.handle_read_registers,
            cmd.WriteRegisters: regs.handle_write_registers,
            cmd.ReadRegister: regs.handle_read_register,
            cmd.WriteRegister: regs.handle_write_register,
            cmd.ReadMemory: memory.handle_read_memory,
            cmd.WriteMemory: memory.handle_write_memory,
            cmd.QueryResumeActions: lambda c: replies.resume_actions(stop=True, range_step=True),
            cmd.Resume: run.handle_resume,
            cmd.Continue: run.handle_continue,
            cmd.Step: run.handle_step,
            cmd.InterruptTarget: nonstop.handle_ctrl_c,
            cmd.IsThreadAlive: threads.handle_thread_alive,
            cmd.QueryCurrentThread: threads.handle_current_thread,
            cmd.ListThreads: threads.handle_list_threads,
            cmd.QueryAttached: life.handle_query_attached,
            cmd.QuerySectionOffsets: lambda c: replies.unsupported(),
            cmd.SymbolLookup: lambda c: replies.ok(),
            cmd.GetTlsAddress: objects.handle_tls_address,
            cmd.MonitorCommand: self.monitor.handle_monitor,
            cmd.ReadObject: objects.handle_read_object,
            cmd.WriteObject: objects.handle_write_object,
            cmd.ComputeCrc: memory.handle_crc,
            cmd.SearchMemory: memory.handle_search_memory,
            cmd.PassSignals: options.handle_pass_signals,
            cmd.ProgramSignals: options.handle_program_signals,
            cmd.SetNonStop: nonstop.handle_set_non_stop,
            cmd.NextStopNotification: nonstop.handle_next_stop,
            cmd.SetDisableRandomization: options.handle_set_disable_randomization,
            cmd.SetEnvironmentVariable: options.handle_set_environment,
            cmd.UnsetEnvironmentVariable: options.handle_unset_environment,
            cmd.ResetEnvironment: options.handle_reset_environment,
            cmd.SetWorkingDirectory: options.handle_set_working_directory,
            cmd.SetStartupWithShell: options.handle_set_startup_with_shell,
            cmd.CatchSyscalls: options.handle_catch_syscalls,
            cmd.SetThreadEvents: nonstop.handle_set_thread_events,
            cmd.RunProgram: life.handle_run,
            cmd.AttachProcess: life.handle_attach,
            cmd.KillProcess: life.handle_kill,
            cmd.Detach: life.handle_detach,
            cmd.Restart: life.handle_restart,
            cmd.InsertBreakpoint: self.book.handle_insert_breakpoint,
            cmd.RemoveBreakpoint: self.book.handle_remove_breakpoint,
            cmd.FileSetFilesystem: files.handle_file_setfs,
            cmd.FileOpen: files.handle_file_open,
            cmd.FileClose: files.handle_file_close,
            cmd.FileRead: files.handle_file_read,
            cmd.FileWrite: files.handle_file_write,
            cmd.FileStat: files.handle_file_stat,
            cmd.FileUnlink: files.handle_file_unlink,
            cmd.FileReadLink: files.handle_file_readlink,
            cmd.QueryThreadExtraInfo: threads.handle_thread_extra_info,
            cmd.UnknownCommand: lambda c: replies.unsupported(),
        }

    # ------------------------------------------------------------------------------------- what the loop reads
    @property
    def running(self) -> bool:
        return self.run.running

    @property
    def no_ack(self) -> bool:
        return self.conn.no_ack

    @property
    def non_stop(self) -> bool:
        return self.conn.non_stop

    @property
    def extended(self) -> bool:
        return self.conn.extended

    def wait_for_stop(self, wake_fd: int) -> bytes | None:
        """Wait for the running target; the stop reply, or None when GDB sent something first."""
        return self.run.wait_for_stop(wake_fd)

    def next_notification(self, wake_fd: int) -> bytes | None:
        """Non-stop: the `Stop:` notification to send now (None: GDB sent something, or nothing runs)."""
        return self.nonstop.next_notification(wake_fd)

    def prepare_for_requests(self) -> None:
        """A stop reply went out: while GDB reads it, build the thread list it asks for next at every stop
        it shows after a continue (normal_stop's update_thread_list), so that request finds it ready
        (design-notes: "Work done while GDB reads a reply"). After a step GDB seldom asks: not built."""
        if (
            self.non_stop
            or self.running
            or any(a.kind is not ResumeKind.CONTINUE for a in self.run.last_resume.values())
        ):
            return
        with contextlib.suppress(TargetError):  # the process ended: the request, if any, is answered then
            self.objects.prepare_threads_document()

    def interrupt(self) -> None:
        """All-stop Ctrl-C (`\\x03`)."""
        self.run.interrupt()

    def report(self, event: StopEvent, process: Target | None = None) -> bytes:
        """The stop reply for `event` of `process` (default: the target), remembered for `?`."""
        return self.replies.report(event, process)

    def run_detached_commands(self, wake_fd: int | None) -> bool:
        """Serve a program GDB detached from leaving persistent commands (`ProcessLifecycle`)."""
        return self.life.run_detached_commands(wake_fd)

    # ------------------------------------------------------------------------------------- dispatch
    def handle_packet(self, body: bytes) -> list[bytes]:
        """Answer one packet: the reply bodies to send (none for `k` or while resumed)."""
        try:
            command = parse_command(body)
            if self.book.lifted and type(command) not in LIFT_KEEPING:
                self.book.settle()
            handler = self.handlers.get(type(command))
            if handler is None:
                return [replies.unsupported()]
            reply = handler(command)
        except (PtstubError, OSError) as err:
            log.debug("packet %r failed: %s", body[:80], err)
            return [error_reply(err)]
        if reply is None:
            return []
        return reply if isinstance(reply, list) else [reply]

    @property
    def pid(self) -> int:
        return self.target.pid if self.target is not None else 0

    def alive(self) -> Target:
        if self.target is None or not self.target.alive:
            raise TargetError("no process", errno_mod.ESRCH)
        return self.target

    def current(self) -> Target:
        """The process `Hg` selected (registers, memory and breakpoints go there), else the target."""
        if len(self.group) > 1:
            process = self.group.get(self.conn.g_pid)
            if process is not None and process.alive:
                return process
        target = self.target  # `_alive()` inlined: every Z/z/m/g of a stop comes through here
        if target is None or not target.alive:
            raise TargetError("no process", errno_mod.ESRCH)
        return target

    def owner(self, tid: int) -> Target | None:
        """The live process that has thread `tid` (tids are unique across processes)."""
        target = self.target
        if target is not None and target.alive and target.has_thread(tid):
            return target
        for process in self.group.members():
            if process is not target and process.alive and process.has_thread(tid):
                return process
        return None

    def process_for(self, tid: int) -> Target:
        """The process to ask about thread `tid`: its owner, else the selected process."""
        if len(self.group) > 1:
            owner = self.owner(tid)
            if owner is not None:
                return owner
        return self.current()

    @property
    def attached(self) -> bool:
        """ptstub attached to the target (rather than started it): detach it at the end, not kill."""
        target = self.target
        return target is not None and target.pid in self.attached_pids

    def served(self) -> list[Target]:
        """Live processes, the target first."""
        target = self.target
        group = self.group
        if len(group) == 1 and target is not None and group.get(target.pid) is target:
            return [target] if target.alive else []  # the common case: one process, the target
        first = [target] if target is not None and target.alive else []
        return first + [p for p in self.group.members() if p is not target and p.alive]

    def prepare(self) -> None:
        """Build the target description now, before GDB connects: it is GDB's first real request, and
        the arch module's import and the description take ~10-30 ms that can overlap GDB's start-up."""
        if self.target is not None and self.target.alive:
            with contextlib.suppress(PtstubError, OSError, ValueError):  # best effort: GDB's request retries
                self.regs.layout_for(self.threads.select(0))

    def invalidate(self) -> None:
        self.regs.regs.clear()
        self.regs.g_replies.clear()
        self.objects.thread_list.invalidate()
        self.objects.libraries_doc = None

    def apply_target_options(self) -> None:
        for process in self.served():
            process.set_options(fork_events=self.conn.features.fork_events or self.conn.features.vfork_events)

    # ------------------------------------------------------------------------------------- teardown
    def close(self) -> None:
        """End of a connection: the next GDB starts from a clean slate, with the same process.

        Files are closed, fork children let go, and what the departed GDB set in the target is undone:
        its breakpoints and watchpoints (a GDB that reconnects inserts its own again), caught
        syscalls, passed signals. Connection state (no-ack mode, features, selected threads) starts anew.
        """
        self.files.files.close_all()
        self.book.settle()
        self.life.release_others()
        target = self.target
        if target is not None and target.alive and (self.run.running or (self.conn.non_stop and target.any_running())):
            # GDB left while the program ran: stop it, so the next GDB finds it stopped as on attach.
            with contextlib.suppress(PtstubError):
                self.replies.report(target.stop())
        if target is not None and target.alive:
            self.book.remove_from(target)
            target.set_options(catch_syscalls=False, thread_exits=False)
            target.set_pass_signals(frozenset())
        # What the departed GDB set or left starts anew: its breakpoints, a Ctrl-C left due, non-stop's
        # queue, the connection state.
        self.book.clear()
        self.run.connection_ended()
        self.nonstop = NonStopQueue(self)
        self.conn = ConnectionState(extended=self.conn.extended)
        self.handlers = self._handler_table()
        self.invalidate()


# Requests that leave a lazily removed breakpoint in memory (`BreakpointBook.settle`): GDB's breakpoint
# loop sends only these between its z0 and Z0 of the same breakpoint. Any other may read or run the program.
LIFT_KEEPING = frozenset({cmd.InsertBreakpoint, cmd.RemoveBreakpoint, cmd.PassSignals})


def error_reply(err: PtstubError | OSError) -> bytes:
    """The one place a failure becomes `E NN`: a malformed or impossible request (`ProtocolError`, its
    own reply for vFile), or a target or host operation that failed with an errno (ESRCH for a
    vanished thread, EFAULT/EIO for unreadable memory). Anything else is a bug and is not hidden."""
    if isinstance(err, ProtocolError) and err.reply is not None:
        return err.reply
    number = err.errno if isinstance(err, (TargetError, ProtocolError, OSError)) else None
    return replies.error((number or errno_mod.EIO) & 0xFF or errno_mod.EIO)


class NoProcessGroup(ServedProcesses):
    """The group of a session built without one: it serves one process at a time (`Target` alone)."""

    def join(self, served: Target, process: Target) -> None:
        raise TargetError("this backend serves one process at a time", errno_mod.EPERM)

    def resume(self, plans: Sequence[tuple[Target, Mapping[int, ResumeAction]]]) -> list[Target]:
        raise TargetError("this backend serves one process at a time", errno_mod.EPERM)

    def wait(
        self, running: list[Target], served: Sequence[Target], wake_fd: int | None
    ) -> tuple[Target, StopEvent] | None:
        raise TargetError("this backend serves one process at a time", errno_mod.EPERM)

    def next_event(self, processes: Sequence[Target], wake_fd: int, first: int = 0) -> tuple[Target, StopEvent] | None:
        raise TargetError("this backend serves one process at a time", errno_mod.EPERM)


class NoHost:
    """The host services of a session built without any: no `info os`, no executable by pid."""

    def osdata(self, table: str) -> bytes | None:
        return None

    def executable_of(self, pid: int) -> str:
        raise TargetError(f"no process {pid}", errno_mod.ESRCH)

    def thread_db_findable(self, search_path: str | None) -> bool:
        return True

"""One GDB debug session: RSP state and one `handle_*` per command, over the `Target` protocol.

The session owns what the protocol remembers between packets (no-ack mode, `Hg`/`Hc`, negotiated
features, the last stop, register caches valid for one stop) and turns typed commands into calls on
the target and typed stop events into stop replies. It never parses or frames bytes itself
(`ptstub.rsp` does) and never calls ptrace (`ptstub.linux` does). Behaviour follows GNU gdbserver 13.1
as the tests capture it (tests/gdb/ runs each GDB script against both stubs, conformance/ compares
GDB's own testsuite with gdbserver's checked-in result); where ptstub differs it says why.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import logging
import os
import select
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ptstub.errors import PtstubError, TargetError
from ptstub.events import (
    BreakpointHit,
    Exec,
    Exited,
    Forked,
    Interrupted,
    Killed,
    SignalReceived,
    StopEvent,
    SyscallStop,
    ThreadExited,
)
from ptstub.hostio import HostFiles
from ptstub.rsp import commands as cmd
from ptstub.rsp import replies
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.features import (
    ClientFeatures,
    NegotiatedFeatures,
    ServerFeatures,
    TransferObject,
    negotiate,
    supported_reply,
)
from ptstub.rsp.notifications import StopQueue
from ptstub.rsp.threadid import ThreadId
from ptstub.settings import LaunchSettings as LaunchSettings  # re-exported: the CLI's launcher type
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind, ThreadState
from ptstub.threadlist import ThreadListDocument

if TYPE_CHECKING:
    from ptstub.rsp.agentexpr import AgentExpression, BreakpointCommands

log = logging.getLogger("ptstub.rsp")

PACKET_SIZE = 0x20000  # large `m` replies: 1 MiB in 16 round trips (gdbserver: 0x47ff)
EXPEDITED = (6, 7, 16)  # rbp, rsp, rip: what GDB reads first at every stop
READABLE = frozenset(
    {
        TransferObject.FEATURES,
        TransferObject.AUXV,
        TransferObject.THREADS,
        TransferObject.EXEC_FILE,
        TransferObject.SIGINFO,
        TransferObject.LIBRARIES_SVR4,
        TransferObject.OSDATA,
    }
)
SERVER_FEATURES = ServerFeatures(
    packet_size=PACKET_SIZE,
    no_ack_mode=True,
    multiprocess=True,
    swbreak=True,
    hwbreak=True,
    fork_events=True,
    vfork_events=True,
    exec_events=True,
    vcont_supported=True,
    no_resumed=True,
    pass_signals=True,
    program_signals=True,
    non_stop=True,
    disable_randomization=True,
    thread_events=True,
    startup_with_shell=True,
    environment=True,
    working_directory=True,
    catch_syscalls=True,
    conditional_breakpoints=True,
    breakpoint_commands=True,
    readable_objects=READABLE,
    writable_objects=frozenset({TransferObject.SIGINFO}),
)


Launcher = Callable[[list[str], LaunchSettings], Any]
Attacher = Callable[[int], Any]


class Session:
    """Serves one target (or none, in extended mode) to one GDB at a time."""

    def __init__(
        self,
        target: Any | None,
        *,
        launcher: Launcher | None = None,
        attacher: Attacher | None = None,
        extended: bool = False,
        attached: bool = False,
        announce: Callable[[str], None] | None = None,
        program: list[str] | None = None,
    ) -> None:
        self.target = target
        self.launcher = launcher
        self.attacher = attacher
        self.extended = extended
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.settings = LaunchSettings(program=list(program or []))
        self.features = NegotiatedFeatures()
        self.client = ClientFeatures()
        self._xml_client: bool | None = None  # xmlRegisters=i386 in qSupported; None before it
        self.no_ack = False
        self.running = False
        self.finished = False
        self.exit_requested = False
        # GDB detached leaving persistent breakpoint commands: the program runs on, traced, with them
        # (`run_detached_commands`, called by the CLI once the connection is over).
        self.detached_with_commands = False
        self.g_thread = 0
        self.c_thread = -1
        self.last_stop: bytes | None = None
        self.last_event: StopEvent | None = None
        self.program_signals: frozenset[int] | None = None
        self._pass_signals: frozenset[int] = frozenset()
        self._signal_pid = target.pid if target is not None else 0  # gdbserver's signal_pid: Ctrl-C goes there
        self._interrupt_due = False  # a Ctrl-C for a process not running yet: applied when it runs
        self._interrupted: Any | None = None  # the process asked to stop by a Ctrl-C; cleared by the next report
        # Processes ptstub attached to (detached at the end), not started (killed): gdbserver's
        # process->attached, which a fork child inherits.
        self._attached_pids: set[int] = {target.pid} if attached and target is not None else set()
        self.catch_syscalls: frozenset[int] | None = None
        self.catching = False
        self.thread_db_search_path: str | None = None  # `monitor set libthread-db-search-path`
        self.files = HostFiles()
        self._regs: dict[int, tuple[bytes, bytes | None]] = {}
        self._g_replies: dict[int, bytes] = {}  # tid -> `g` reply, valid with `_regs` (until a write or resume)
        self._layout: Any = None
        self._thread_list_sent = False
        # Per-stop caches for GDB's breakpoint loop (design-notes, "Speed with GDB in the loop").
        self._thread_list = ThreadListDocument()
        self._resume_plans: dict[tuple[int, int, tuple[int, ...]], tuple[cmd.Resume, dict[int, ResumeAction]]] = {}
        self._reason_filter: tuple[NegotiatedFeatures, dict[replies.StopReasonKind, bool]] | None = None
        self._stop_replies: dict[tuple[Any, ...], bytes] = {}
        self._expedite: tuple[Any, tuple[tuple[int, int, int], ...] | None] | None = None
        self._libraries_doc: bytes | None = None
        self._osdata: dict[str, bytes] = {}  # `info os` snapshots, taken at offset 0
        self._last_resume: dict[int, ResumeAction] = {}
        # the threads there were at GDB's last resume: one born since runs on (see _resume_unreported)
        self._resumed_among: tuple[int, ...] | frozenset[int] = ()
        # Every process served (docs/design-notes.md, "Several processes"): the first one and each fork
        # child GDB keeps; `target` is the one events and wildcard selections fall back to.
        self.processes: dict[int, Any] = {target.pid: target} if target is not None else {}
        self._running: list[Any] = []  # the processes the last resume started
        self._ended_first: Any | None = None  # a held process that ended: reported before anything runs
        self.g_pid = 0
        self._software_breakpoints: dict[int, set[int]] = {}  # pid -> addresses GDB inserted (idempotent Z0)
        self._hardware_breakpoints: set[tuple[int, int, BreakpointKind, int]] = set()  # (pid, address, kind, length)
        # Target-side conditions (ConditionalBreakpoints): (pid, kind, address) -> bytecodes, only for
        # breakpoints GDB inserted with `;X...`; an unconditional one has no entry.
        self._conditions: dict[tuple[int, BreakpointKind, int], tuple[AgentExpression, ...]] = {}
        # Target-side commands (BreakpointCommands, `set dprintf-style agent`): same keys, only for
        # breakpoints inserted with `;cmds:`. A hit there runs them and is not reported.
        self._commands: dict[tuple[int, BreakpointKind, int], BreakpointCommands] = {}
        self.agent_output_fd = 1  # where a command's printf writes: the program's stdout (ptstub's own)
        self._command_failures: set[tuple[int, int]] = set()  # (pid, address) whose failure was told once
        self.non_stop = False
        self.thread_events = False  # QThreadEvents:1: the end of every thread but a leader is reported
        self._ctrl_c_tids: set[int] = set()
        self._stop_asked: set[int] = set()  # non-stop: threads GDB stopped with vCont;t, not reported yet
        self.stops = StopQueue()  # non-stop: stop replies for `%Stop` / `vStopped`
        self._thread_stops: dict[int, bytes] = {}  # non-stop: stop reply of each thread GDB knows stopped
        self._rotation = 0  # non-stop over several processes: which one is looked at first
        # non-stop: fork child pid -> (the thread that forked, its fork stop reply)
        self._fork_parents: dict[int, tuple[int, bytes]] = {}
        self.handlers: dict[type, Callable[[Any], bytes | list[bytes] | None]] = {
            cmd.QuerySupported: self.handle_query_supported,
            cmd.StartNoAckMode: self.handle_start_no_ack,
            cmd.QueryStopReason: self.handle_query_stop_reason,
            cmd.EnableExtendedMode: self.handle_enable_extended,
            cmd.SelectThread: self.handle_select_thread,
            cmd.ReadRegisters: self.handle_read_registers,
            cmd.WriteRegisters: self.handle_write_registers,
            cmd.ReadRegister: self.handle_read_register,
            cmd.WriteRegister: self.handle_write_register,
            cmd.ReadMemory: self.handle_read_memory,
            cmd.WriteMemory: self.handle_write_memory,
            cmd.QueryResumeActions: lambda c: replies.resume_actions(stop=True, range_step=True),
            cmd.Resume: self.handle_resume,
            cmd.Continue: self.handle_continue,
            cmd.Step: self.handle_step,
            cmd.InterruptTarget: self.handle_ctrl_c,
            cmd.IsThreadAlive: self.handle_thread_alive,
            cmd.QueryCurrentThread: self.handle_current_thread,
            cmd.ListThreads: self.handle_list_threads,
            cmd.QueryAttached: self.handle_query_attached,
            cmd.QuerySectionOffsets: lambda c: replies.unsupported(),
            cmd.SymbolLookup: lambda c: replies.ok(),
            cmd.GetTlsAddress: self.handle_tls_address,
            cmd.MonitorCommand: self.handle_monitor,
            cmd.ReadObject: self.handle_read_object,
            cmd.WriteObject: self.handle_write_object,
            cmd.ComputeCrc: self.handle_crc,
            cmd.SearchMemory: self.handle_search_memory,
            cmd.PassSignals: self.handle_pass_signals,
            cmd.ProgramSignals: self.handle_program_signals,
            cmd.SetNonStop: self.handle_set_non_stop,
            cmd.NextStopNotification: self.handle_next_stop,
            cmd.SetDisableRandomization: self.handle_set_disable_randomization,
            cmd.SetEnvironmentVariable: self.handle_set_environment,
            cmd.UnsetEnvironmentVariable: self.handle_unset_environment,
            cmd.ResetEnvironment: self.handle_reset_environment,
            cmd.SetWorkingDirectory: self.handle_set_working_directory,
            cmd.SetStartupWithShell: self.handle_set_startup_with_shell,
            cmd.CatchSyscalls: self.handle_catch_syscalls,
            cmd.SetThreadEvents: self.handle_set_thread_events,
            cmd.RunProgram: self.handle_run,
            cmd.AttachProcess: self.handle_attach,
            cmd.KillProcess: self.handle_kill,
            cmd.Detach: self.handle_detach,
            cmd.Restart: self.handle_restart,
            cmd.InsertBreakpoint: self.handle_insert_breakpoint,
            cmd.RemoveBreakpoint: self.handle_remove_breakpoint,
            cmd.FileSetFilesystem: self.handle_file_setfs,
            cmd.FileOpen: self.handle_file_open,
            cmd.FileClose: self.handle_file_close,
            cmd.FileRead: self.handle_file_read,
            cmd.FileWrite: self.handle_file_write,
            cmd.FileStat: self.handle_file_stat,
            cmd.FileUnlink: self.handle_file_unlink,
            cmd.FileReadLink: self.handle_file_readlink,
            cmd.QueryThreadExtraInfo: self.handle_thread_extra_info,
            cmd.UnknownCommand: lambda c: replies.unsupported(),
        }

    # ------------------------------------------------------------------------------------- dispatch
    def handle_packet(self, body: bytes) -> list[bytes]:
        """Answer one packet: the reply bodies to send (none for `k` or while resumed)."""
        try:
            command = cmd.parse_command(body)
        except ProtocolError as err:
            log.debug("malformed packet %r: %s", body[:80], err)
            return [err.reply if err.reply is not None else replies.error(err.errno)]
        handler = self.handlers.get(type(command))
        if handler is None:
            return [replies.unsupported()]
        try:
            reply = handler(command)
        except PtstubError as err:
            log.debug("%s failed: %s", type(command).__name__, err)
            return [replies.error(getattr(err, "errno", errno_mod.EIO) & 0xFF or errno_mod.EIO)]
        except OSError as err:
            return [replies.error((err.errno or errno_mod.EIO) & 0xFF)]
        except (ValueError, KeyError, IndexError, OverflowError, struct.error) as err:
            # Well-framed but impossible requests (a `G` of the wrong size, an unknown register...).
            log.debug("%s rejected: %s", type(command).__name__, err)
            return [replies.error(errno_mod.EINVAL)]
        if reply is None:
            return []
        return reply if isinstance(reply, list) else [reply]

    # ------------------------------------------------------------------------------------- helpers
    @property
    def pid(self) -> int:
        return self.target.pid if self.target is not None else 0

    def _alive(self) -> Any:
        if self.target is None or not self.target.alive:
            raise TargetError("no process", errno_mod.ESRCH)
        return self.target

    def _current(self) -> Any:
        """The process `Hg` selected (registers, memory and breakpoints go there), else the target."""
        if len(self.processes) > 1:
            process = self.processes.get(self.g_pid)
            if process is not None and process.alive:
                return process
        target = self.target  # `_alive()` inlined: every Z/z/m/g of a stop comes through here
        if target is None or not target.alive:
            raise TargetError("no process", errno_mod.ESRCH)
        return target

    def _owner(self, tid: int) -> Any | None:
        """The live process that has thread `tid` (tids are unique across processes)."""
        target = self.target
        if target is not None and target.alive and target.has_thread(tid):
            return target
        for process in self.processes.values():
            if process is not target and process.alive and process.has_thread(tid):
                return process
        return None

    def _process_for(self, tid: int) -> Any:
        """The process to ask about thread `tid`: its owner, else the selected process."""
        if len(self.processes) > 1:
            owner = self._owner(tid)
            if owner is not None:
                return owner
        return self._current()

    @property
    def attached(self) -> bool:
        """ptstub attached to the target (rather than started it): detach it at the end, not kill."""
        target = self.target
        return target is not None and target.pid in self._attached_pids

    def _served(self) -> list[Any]:
        """Live processes, the target first."""
        target = self.target
        processes = self.processes
        if len(processes) == 1 and target is not None and processes.get(target.pid) is target:
            return [target] if target.alive else []  # the common case: one process, the target
        first = [target] if target is not None and target.alive else []
        return first + [p for p in self.processes.values() if p is not target and p.alive]

    def _thread_id(self, tid: int) -> ThreadId:
        if len(self.processes) > 1:
            owner = self._owner(tid)
            if owner is not None:
                return ThreadId(owner.pid, tid)
        return ThreadId(self.pid, tid)

    def _select(self, tid: int) -> int:
        """A concrete tid for a possibly wildcard selection (0/-1 → the last reported thread)."""
        target = self._current()
        if tid > 0 and (target.has_thread(tid) or self._owner(tid) is not None):
            return tid
        if tid > 0:
            raise TargetError(f"no thread {tid}", errno_mod.ESRCH)
        last_tid = getattr(self.last_event, "tid", 0)
        if last_tid and target.has_thread(last_tid):
            return int(last_tid)
        ids = target.thread_ids()
        if target.pid in ids:
            return int(target.pid)
        if not ids:
            raise TargetError("no threads", errno_mod.ESRCH)
        return int(ids[0])

    def _layout_for(self, tid: int) -> Any:
        if self._layout is None:
            from ptstub.arch import x86_64

            xstate = self._process_for(tid).read_xstate(tid)
            self._layout = x86_64.layout_for(xstate, described=self._describes_registers())
        return self._layout

    def _describes_registers(self) -> bool:
        """Whether GDB reads XML register descriptions: gdbserver's `use_xml`, set by `xmlRegisters=i386` in
        qSupported.  Until GDB's qSupported arrives (prepare()), assume it will."""
        return self._xml_client is not False

    def prepare(self) -> None:
        """Build the target description now, before GDB connects: it is GDB's first real request, and
        the arch module's import and the description take ~10-30 ms that can overlap GDB's start-up."""
        if self.target is not None and self.target.alive:
            with contextlib.suppress(PtstubError, OSError, ValueError):  # best effort: GDB's request retries
                self._layout_for(self._select(0))

    def _registers(self, tid: int, with_xstate: bool = True) -> tuple[bytes, bytes]:
        cached = self._regs.get(tid)
        target = self._process_for(tid)
        if cached is None:
            cached = (target.read_gpr(tid), None)
        if with_xstate and cached[1] is None:
            cached = (cached[0], target.read_xstate(tid))
        self._regs[tid] = cached
        return cached[0], cached[1] if cached[1] is not None else b""

    def _invalidate(self) -> None:
        self._regs.clear()
        self._g_replies.clear()
        self._thread_list.invalidate()
        self._libraries_doc = None

    # ------------------------------------------------------------------------------------- connection
    def handle_query_supported(self, c: cmd.QuerySupported) -> bytes:
        self.client = c.features
        self.features = negotiate(c.features, SERVER_FEATURES)
        self._xml_client = "i386" in c.features.xml_registers
        if self._layout is not None and self._layout.described != self._xml_client:
            self._layout = None
        self._apply_target_options()
        return supported_reply(SERVER_FEATURES, c.features)

    def _apply_target_options(self) -> None:
        for process in self._served():
            process.set_options(fork_events=self.features.fork_events or self.features.vfork_events)

    def handle_start_no_ack(self, c: cmd.StartNoAckMode) -> bytes:
        self.no_ack = True
        return replies.ok()

    def handle_enable_extended(self, c: cmd.EnableExtendedMode) -> bytes:
        self.extended = True
        return replies.ok()

    def handle_query_stop_reason(self, c: cmd.QueryStopReason) -> bytes:
        if self.non_stop:
            return self._query_stop_reason_non_stop()
        if self.target is None or not self.target.alive:
            if self.last_stop is not None and self.last_stop[:1] in (b"W", b"X"):
                return self.last_stop
            return replies.exited(0, None)
        if self.last_stop is None:
            tid = self._select(0)
            self.last_stop = self._stop_reply_for_thread(5, tid, None)
        return self.last_stop

    # ------------------------------------------------------------------------------------- threads
    def handle_select_thread(self, c: cmd.SelectThread) -> bytes:
        tid = c.thread.tid
        if c.purpose is cmd.ThreadPurpose.REGISTERS:
            if self.target is None:
                return replies.error(1)
            pid = c.thread.pid if c.thread.pid is not None and c.thread.pid > 0 else 0
            process = self.processes.get(pid) if pid else (self._owner(tid) if tid > 0 else None)
            if pid and process is None:
                return replies.error(errno_mod.ESRCH)
            process = process or self.target
            if tid > 0 and not process.has_thread(tid):
                return replies.error(errno_mod.ESRCH)
            self.g_thread = tid
            self.g_pid = process.pid if process is not None else 0
        else:
            self.c_thread = tid
        return replies.ok()

    def handle_thread_alive(self, c: cmd.IsThreadAlive) -> bytes:
        return replies.thread_alive(self._owner(c.thread.tid) is not None)

    def handle_current_thread(self, c: cmd.QueryCurrentThread) -> bytes:
        if self.target is None or not self.target.alive:
            return replies.unsupported()
        return replies.current_thread(self._thread_id(self._select(0)), self.features.multiprocess)

    def handle_list_threads(self, c: cmd.ListThreads) -> bytes:
        if not c.first or self.target is None or not self.target.alive:
            return replies.thread_list_end()
        ids = [ThreadId(p.pid, tid) for p in self._served() for tid in p.thread_ids()]
        return replies.thread_list(ids, self.features.multiprocess)

    def handle_thread_extra_info(self, c: cmd.QueryThreadExtraInfo) -> bytes:
        for info in self._process_for(c.thread.tid).threads():
            if info.tid == c.thread.tid:
                return replies.thread_extra_info(info.name.encode())
        return replies.error(errno_mod.ESRCH)

    # ------------------------------------------------------------------------------------- registers
    def handle_read_registers(self, c: cmd.ReadRegisters) -> bytes:
        tid = self._select(self.g_thread)
        reply = self._g_replies.get(tid)
        if reply is None:
            gpr, xstate = self._registers(tid)
            # Hex with its zero runs compressed on the raw bytes, as for `m`: the generic run-length pass
            # over ~1,600 hex digits (the AVX state is mostly zeros) cost ~100 us of Python a request.
            reply = replies.registers_hex(self._layout_for(tid).encode_g(gpr, xstate))
            self._g_replies[tid] = reply
        return reply

    def handle_write_registers(self, c: cmd.WriteRegisters) -> bytes:
        tid = self._select(self.g_thread)
        gpr, xstate = self._registers(tid)
        layout = self._layout_for(tid)
        new_gpr, new_xstate = layout.decode_g(c.data, gpr, xstate)
        self._store_registers(tid, gpr, xstate, new_gpr, new_xstate)
        return replies.ok()

    def handle_read_register(self, c: cmd.ReadRegister) -> bytes:
        tid = self._select(self.g_thread)
        layout = self._layout_for(tid)
        gpr, xstate = self._registers(tid)
        try:
            return layout.read_register(c.number, gpr, xstate).hex().encode()
        except (KeyError, IndexError, ValueError):
            return replies.error(errno_mod.EINVAL)

    def handle_write_register(self, c: cmd.WriteRegister) -> bytes:
        tid = self._select(self.g_thread)
        layout = self._layout_for(tid)
        gpr, xstate = self._registers(tid)
        try:
            new_gpr, new_xstate = layout.write_register(c.number, c.value, gpr, xstate)
        except (KeyError, IndexError, ValueError):
            return replies.error(errno_mod.EINVAL)
        self._store_registers(tid, gpr, xstate, new_gpr, new_xstate)
        return replies.ok()

    def _store_registers(self, tid: int, gpr: bytes, xstate: bytes, new_gpr: bytes, new_xstate: bytes) -> None:
        target = self._process_for(tid)
        if new_gpr != gpr:
            target.write_gpr(tid, new_gpr)
        if new_xstate != xstate:
            target.write_xstate(tid, new_xstate)
        self._regs[tid] = (new_gpr, new_xstate)
        self._g_replies.pop(tid, None)

    # ------------------------------------------------------------------------------------- memory
    def handle_read_memory(self, c: cmd.ReadMemory) -> bytes:
        length = min(c.length, self.features.packet_size // 2)  # GDB sizes `m` so the hex fills PacketSize
        data = self._current().read_memory(c.address, length)
        if not data:
            return replies.error(errno_mod.EFAULT)
        return replies.memory_hex(data)

    def handle_write_memory(self, c: cmd.WriteMemory) -> bytes:
        self._current().write_memory(c.address, c.data)
        self._libraries_doc = None
        return replies.ok()

    def handle_crc(self, c: cmd.ComputeCrc) -> bytes:
        data = self._current().read_memory(c.address, c.length)
        if len(data) != c.length:
            return replies.error(errno_mod.EFAULT)
        return replies.crc_result(replies.gdb_crc32(data))

    def handle_search_memory(self, c: cmd.SearchMemory) -> bytes:
        target = self._current()
        chunk = 1 << 16
        address, end = c.address, c.address + c.length
        while address < end:
            data = target.read_memory(address, min(chunk + len(c.pattern) - 1, end - address))
            index = data.find(c.pattern)
            if index >= 0:
                return replies.search_result(address + index)
            if len(data) < min(chunk, end - address):
                break
            address += chunk
        return replies.search_result(None)

    # ------------------------------------------------------------------------------------- breakpoints
    def handle_insert_breakpoint(self, c: cmd.InsertBreakpoint) -> bytes:
        if c.kind is BreakpointKind.READ_WATCH:
            return replies.unsupported()  # x86 has no read-only watchpoints (gdbserver says the same)
        # Checked before anything is inserted: malformed bytecode is answered E01 and changes nothing.
        conditions: tuple[AgentExpression, ...] = ()
        commands: tuple[AgentExpression, ...] = ()
        if c.conditions or c.commands:  # agent expressions are rare: their module loads with the first one
            from ptstub.rsp.agentexpr import parse_agent_expression

            conditions = tuple(parse_agent_expression(code) for code in c.conditions)
            commands = tuple(parse_agent_expression(code) for code in c.commands)
        target = self._current()
        if c.kind is BreakpointKind.SOFTWARE:
            # Z0 is idempotent (GDB manual, "insert breakpoint"): a repeat re-writes the int3, which also
            # heals one a vfork child's detach restored in the shared memory.
            inserted = self._software_breakpoints.setdefault(target.pid, set())
            if c.address in inserted:
                target.reinsert_breakpoint(c.address)
            else:
                target.insert_breakpoint(c.address, c.kind, c.length)
                inserted.add(c.address)
        else:
            key = (target.pid, c.address, c.kind, c.length)
            if key not in self._hardware_breakpoints:
                target.insert_breakpoint(c.address, c.kind, c.length)
                self._hardware_breakpoints.add(key)
        if conditions or self._conditions:
            self._set_conditions((target.pid, c.kind, c.address), conditions)
        if commands or self._commands:
            self._set_commands((target.pid, c.kind, c.address), commands, c.persist_commands)
        return replies.ok()

    def _set_conditions(self, key: tuple[int, BreakpointKind, int], conditions: tuple[AgentExpression, ...]) -> None:
        """GDB re-sends Z0/Z1 when a condition changes: the new list replaces the old one (gdbserver's
        `clear_breakpoint_conditions_and_commands` before `process_point_options`)."""
        if conditions and key[1] in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            self._conditions[key] = conditions
        else:
            self._conditions.pop(key, None)

    def _set_commands(
        self, key: tuple[int, BreakpointKind, int], commands: tuple[AgentExpression, ...], persist: bool
    ) -> None:
        """As `_set_conditions`: a re-sent Z0/Z1 replaces the commands (or drops them when it has none)."""
        if commands and key[1] in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            from ptstub.rsp.agentexpr import BreakpointCommands

            self._commands[key] = BreakpointCommands(commands, persist)
        else:
            self._commands.pop(key, None)
        self._command_failures.discard((key[0], key[2]))

    def handle_remove_breakpoint(self, c: cmd.RemoveBreakpoint) -> bytes:
        if c.kind is BreakpointKind.READ_WATCH:
            return replies.unsupported()
        target = self._current()
        if c.kind is BreakpointKind.SOFTWARE:
            inserted = self._software_breakpoints.setdefault(target.pid, set())
            if c.address not in inserted and target is not self.target:
                return replies.ok()  # a fork child's copy of the parent's int3 (GDB removes it before a detach)
            inserted.discard(c.address)
        else:
            key = (target.pid, c.address, c.kind, c.length)
            if key not in self._hardware_breakpoints:
                return replies.ok()
            self._hardware_breakpoints.discard(key)
        if self._conditions:
            self._conditions.pop((target.pid, c.kind, c.address), None)
        if self._commands:
            self._commands.pop((target.pid, c.kind, c.address), None)
        target.remove_breakpoint(c.address, c.kind, c.length)
        return replies.ok()

    def _breakpoint_at(self, pid: int, pc: int) -> bool:
        """Whether GDB has a software or hardware breakpoint at `pc` in process `pid`."""
        if pc in self._software_breakpoints.get(pid, ()):
            return True
        return any(key[0] == pid and key[1] == pc for key in self._hardware_breakpoints)

    def _should_report(self, event: StopEvent) -> bool:
        """Whether a stop goes to GDB: a breakpoint hit does only if a GDB breakpoint at its address is
        unconditional or has a condition that holds (gdbserver's `gdb_condition_true_at_breakpoint`, which
        looks at the software and the hardware breakpoint there). A condition that cannot be evaluated
        counts as true, as in gdbserver: GDB then sees the stop rather than the stub hiding it.
        A hit whose condition holds at a breakpoint with target-side commands (an agent dprintf) runs
        them and is not reported either (gdbserver's `gdb_no_commands_at_breakpoint`)."""
        if (not self._conditions and not self._commands) or type(event) is not BreakpointHit:
            return True
        pid, pc = self._process_for(event.tid).pid, event.pc
        keys = []
        if pc in self._software_breakpoints.get(pid, ()):
            keys.append((pid, BreakpointKind.SOFTWARE, pc))
        if any(key[:3] == (pid, pc, BreakpointKind.HARDWARE) for key in self._hardware_breakpoints):
            keys.append((pid, BreakpointKind.HARDWARE, pc))
        if not keys:
            return True
        lists = [self._conditions.get(key, ()) for key in keys]
        if all(lists) and not any(self._condition_holds(e, event.tid) for conditions in lists for e in conditions):
            return False
        commands = [self._commands[key] for key in keys if key in self._commands]
        if not commands:
            return True
        self._run_commands(commands, event.tid, (pid, pc))
        return False

    def _agent_readers(self, tid: int) -> tuple[Callable[[int], int], Callable[[int, int], bytes]]:
        """Register (by GDB number, read once per hit) and memory readers of a stopped thread for the
        agent-expression evaluator."""
        from ptstub.rsp.agentexpr import AgentExpressionError

        target = self._process_for(tid)
        registers: dict[str, tuple[bytes, bytes]] = {}

        def read_register(regnum: int) -> int:
            if not registers:
                registers["gpr"] = (target.read_gpr(tid), b"")
            gpr, xstate = registers["gpr"]
            layout = self._layout_for(tid)
            if not xstate and layout.register(regnum).source != "gpr":
                xstate = target.read_xstate(tid)
                registers["gpr"] = (gpr, xstate)
            raw = layout.read_register(regnum, gpr, xstate)
            if len(raw) > 8:  # gdbserver's `reg` knows 1-8 byte registers only
                raise AgentExpressionError(f"register {regnum} is {len(raw)} bytes wide")
            return int.from_bytes(raw, "little")

        return read_register, target.read_memory

    def _condition_holds(self, expression: AgentExpression, tid: int) -> bool:
        from ptstub.rsp.agentexpr import AgentExpressionError, evaluate

        try:
            return evaluate(expression, *self._agent_readers(tid)) != 0
        except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
            log.debug("breakpoint condition failed in thread %d (%s): reported as true", tid, err)
            return True

    def _run_commands(self, commands: list[BreakpointCommands], tid: int, where: tuple[int, int]) -> None:
        """Run the commands of the breakpoints at a hit, in the order GDB sent them, while every thread
        is stopped (all-stop) as for a condition. One that fails ends the rest, as gdbserver's
        `run_breakpoint_commands` gives up ("stop digging the hole deeper"), and is told on stderr once
        per breakpoint. gdbserver 13 prints only the first dprintf at an address (its parser keeps one
        expression of a `cmds:` list, and its loop takes the empty stack a dprintf ends with for an
        error); here every dprintf there prints."""
        from ptstub.rsp.agentexpr import AgentExpressionError, run_command

        read_register, read_memory = self._agent_readers(tid)
        for expression in (expression for command in commands for expression in command.expressions):
            try:
                run_command(expression, read_register, read_memory, self._print_agent_output)
            except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
                log.debug("breakpoint command failed in thread %d: %s", tid, err)
                if where not in self._command_failures:
                    self._command_failures.add(where)
                    self.announce(f"ptstub: breakpoint command at {where[1]:#x} failed: {err}")
                return

    def _print_agent_output(self, data: bytes) -> None:
        """A command's printf output, written at once (gdbserver flushes after each printf) to where the
        program's stdout goes; nothing is lost to a partial write, an error only logged (stdout closed)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.agent_output_fd, view) :]
        except OSError as err:
            log.debug("agent printf output lost: %s", err)

    # ------------------------------------------------------------------------------------- non-stop
    def handle_set_thread_events(self, c: cmd.SetThreadEvents) -> bytes:
        """`QThreadEvents:0|1`. GDB turns it on while it stops every thread in non-stop mode: it waits
        for each thread it asked to stop, so a thread that ends meanwhile must be reported (`w`), or
        GDB waits for ever (gdb.threads/forking-threads-plus-breakpoint.exp). As gdbserver, only
        exits are reported; GDB finds new threads in the thread list."""
        self.thread_events = c.enabled
        for process in self._served():
            process.set_options(thread_exits=c.enabled)
        return replies.ok()

    def handle_set_non_stop(self, c: cmd.SetNonStop) -> bytes:
        """`QNonStop:1|0`. GDB switches with no thread running; leaving non-stop stops any that still runs."""
        if not c.enabled and self.non_stop:
            for process in self._served():
                if process.any_running():
                    self.report(process.stop(), process)
        self.non_stop = c.enabled
        self.stops.discard()
        self._thread_stops.clear()
        return replies.ok()

    def handle_next_stop(self, c: cmd.NextStopNotification) -> bytes:
        return self.stops.acknowledge()

    def handle_ctrl_c(self, c: cmd.InterruptTarget) -> bytes:
        """`vCtrlC` (non-stop's Ctrl-C): stop one running thread, reported as SIGINT like gdbserver's,
        of the process started or attached last (gdbserver's `kill (-signal_pid, SIGINT)`) if one of
        its threads runs."""
        if not self.non_stop:
            return replies.unsupported()
        self._alive()
        processes = self._served()
        processes.sort(key=lambda p: p.pid != self._signal_pid)
        for process in processes:
            for tid in sorted(process.thread_ids(), key=lambda t: t != process.pid):
                if process.is_running(tid) and process.stop_thread(tid):
                    self._ctrl_c_tids.add(tid)
                    return replies.ok()
        return replies.ok()

    def _query_stop_reason_non_stop(self) -> bytes:
        """`?` in non-stop: a stop reply for every stopped thread, the first now, the rest by `vStopped`."""
        target = self.target
        if target is None or not target.alive:
            return self.stops.restart([])
        stopped = [t.tid for t in target.threads() if t.state is ThreadState.STOPPED]
        elsewhere = [
            t.tid for p in self._served() if p is not target for t in p.threads() if t.state is ThreadState.STOPPED
        ]
        if stopped and not self._thread_stops:
            # GDB has been told of no stop yet (a new connection): like gdbserver after an attach or a
            # launch, report one thread stopped and let the others run; GDB takes them as running
            # and stops them itself if it wants them stopped (vCont;t, each reported as signal 0).
            main = self.pid if self.pid in stopped else stopped[0]
            others = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in stopped if tid != main}
            if others:
                self._invalidate()
                target.resume_threads(others)
            stopped = [main]
        return self.stops.restart(
            [(tid, self._thread_stops.get(tid) or self._initial_stop(tid)) for tid in stopped + elsewhere]
        )

    def _initial_stop(self, tid: int) -> bytes:
        """A stopped thread GDB was never told about: SIGTRAP for the leader of a launched process
        (stopped at its first instruction), signal 0 otherwise (gdbserver's T00 after an attach)."""
        signal = 5 if self.last_event is None and tid == self.pid and not self.attached else 0
        reply = self._stop_reply_for_thread(signal, tid, None)
        self._thread_stops[tid] = reply
        return reply

    def _resume_non_stop(self, c: cmd.Resume) -> bytes:
        """vCont in non-stop: each action applies to the threads it names (of any process served), the
        rest keep their state. A process that ended has nothing to resume: `OK`, and its exit is
        (or was just) sent as a notification, which GDB may not have read yet."""
        for process in self._served():
            if self._unannounced_child(process.pid):
                continue
            actions: dict[int, ResumeAction] = {}
            stops: list[int] = []
            for tid in process.thread_ids():
                action = c.action_for(process.pid, tid)
                if action is None:
                    continue
                if action.kind is cmd.ThreadActionKind.STOP:
                    stops.append(tid)
                    continue
                resume = action.to_resume_action()
                # As gdbserver (linux_set_resume_request): a running thread keeps running as it is, and
                # a thread whose stop GDB has not pulled out of the vStopped queue yet stays stopped.
                # (`resume_threads` leaves running threads alone.)
                if resume is not None and not self.stops.holds(tid):
                    actions[tid] = resume
            if actions:
                self._invalidate()
                for tid in actions:
                    self._thread_stops.pop(tid, None)
                    self._stop_asked.discard(tid)
                self._last_resume.update(actions)
                process.resume_threads(actions)
            for tid in stops:
                # Also a thread already stopped with an event not handed over yet: if that event is a
                # hit nobody hears of, the stop GDB asked for is what it reports (see _collect_event).
                process.stop_thread(tid)
                self._stop_asked.add(tid)
        if self.thread_events:
            self._report_gone_threads(c)
        return replies.ok()

    def _report_gone_threads(self, c: cmd.Resume) -> None:
        """A thread GDB asks to stop that ended before the request (and whose end was not reported,
        thread events being off then): its end answers the request, or GDB waits for its stop."""
        for action in c.actions:
            thread = action.thread
            if action.kind is not cmd.ThreadActionKind.STOP or thread is None or thread.tid <= 0:
                continue
            if all(p.thread_ended(thread.tid) for p in self._served()) and not self.stops.holds(thread.tid):
                pid = thread.pid if thread.pid is not None and thread.pid > 0 else self.pid
                reply = replies.thread_exited(0, ThreadId(pid, thread.tid), self.features.multiprocess)
                self.stops.push(reply, thread.tid)

    def _unannounced_child(self, pid: int) -> bool:
        """Non-stop: `pid` is a fork child whose parent's fork stop GDB has not taken out of the
        vStopped queue yet. GDB does not know the process, so its wildcard `vCont;c` is not for it
        (gdbserver skips such a child too); resumed, it could run to its end before GDB detaches it."""
        fork = self._fork_parents.get(pid)
        if fork is None:
            return False
        if self.stops.holds(*fork):
            return True
        del self._fork_parents[pid]
        return False

    def next_notification(self, wake_fd: int) -> bytes | None:
        """Non-stop: the `Stop:` notification to send now, collecting thread events until there is one.

        None when GDB has sent something (`wake_fd` readable) or nothing can happen (no thread runs).
        """
        note = self.stops.take_notification()
        while note is None and self._collect_event(wake_fd):
            note = self.stops.take_notification()
        return note

    def _collect_event(self, wake_fd: int) -> bool:
        target = self.target
        if not self.non_stop or target is None:
            return False
        if len(self.processes) == 1:
            if getattr(target, "ended", False):  # its exit status came to another call: report it
                process, event = target, target.take_event()
            elif not target.alive:
                return False
            else:
                process, event = target, target.wait_event(None, wake_fd)
                if event is None:
                    return False
        else:
            from ptstub.linux.processes import next_event_non_stop

            ended = [p for p in self.processes.values() if getattr(p, "ended", False)]
            self._rotation += 1
            found = next_event_non_stop(self._served() + ended, wake_fd, self._rotation)
            if found is None:
                return False
            process, event = found
        uncaught = self.catch_syscalls is not None and getattr(event, "number", None) not in self.catch_syscalls
        tid = getattr(event, "tid", None)
        # A hit whose breakpoint GDB removed while the event waited (threads run while GDB edits
        # breakpoints) is reported to nobody, as gdbserver discards it: the thread goes on.
        stale = type(event) is BreakpointHit and not self._breakpoint_at(process.pid, event.pc)
        if (isinstance(event, SyscallStop) and uncaught) or stale or not self._should_report(event):
            if tid not in self._stop_asked:
                process.resume_threads({tid: self._last_resume.get(tid, ResumeAction(ResumeKind.CONTINUE))})
                # A stream of hits nobody hears of (a condition that is always false, in many threads)
                # always has the next event ready: GDB's packets go first (interrupt-while-step-over.exp).
                return not _input_waiting(wake_fd)
            # GDB asked this thread to stop (vCont;t) and the hit answered it: report the stop it asked
            # for, as gdbserver does for a thread whose last resume kind is resume_stop.
            event = Interrupted(tid, event.pc)
        self._stop_asked.discard(tid)
        self.stops.push(self.report(event, process), tid)
        return True

    # ------------------------------------------------------------------------------------- run control
    def handle_resume(self, c: cmd.Resume) -> list[bytes] | bytes | None:
        if self.non_stop:
            return self._resume_non_stop(c)
        if len(self.processes) > 1:
            return self._resume_processes(c)
        target = self._alive()
        tids = tuple(target.thread_ids())
        # Parsed commands are memoized, so a repeated vCont is the same object: key on its identity
        # (hashing the frozen value walks every field in Python) and keep the object to check it.
        key = (id(c), target.pid, tids)
        plan = self._resume_plans.get(key)
        if plan is not None and plan[0] is c:
            actions = plan[1]
        else:
            actions = {}
            for tid in tids:
                action = c.action_for(self.pid, tid)
                if action is None:
                    continue
                resume = action.to_resume_action()
                if resume is not None:
                    actions[tid] = resume
            if len(self._resume_plans) >= 256:
                self._resume_plans.clear()
            self._resume_plans[key] = (c, actions)  # never mutated: _resume and the target only read it
        return self._resume(actions, tids)

    def _resume_processes(self, c: cmd.Resume) -> list[bytes] | None:
        """vCont over several processes: each action names threads of one process, or all (`-1`)."""
        plans: list[tuple[Any, dict[int, ResumeAction]]] = []
        for process in self._served():
            actions: dict[int, ResumeAction] = {}
            for tid in process.thread_ids():
                action = c.action_for(process.pid, tid)
                resume = action.to_resume_action() if action is not None else None
                if resume is not None:
                    actions[tid] = resume
            if actions:
                plans.append((process, actions))
        return self._resume_plans_of(plans)

    def handle_continue(self, c: cmd.Continue) -> list[bytes] | None:
        chosen = self._select(self.c_thread if self.c_thread > 0 else 0)
        target = self._process_for(chosen)
        if c.address is not None:
            self._set_pc(chosen, c.address)
        actions = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()}
        actions[chosen] = ResumeAction(ResumeKind.CONTINUE, c.signal)
        return self._resume(actions)

    def handle_step(self, c: cmd.Step) -> list[bytes] | None:
        chosen = self._select(self.c_thread if self.c_thread > 0 else 0)
        if c.address is not None:
            self._set_pc(chosen, c.address)
        return self._resume({chosen: ResumeAction(ResumeKind.STEP, c.signal)})

    def _set_pc(self, tid: int, pc: int) -> None:
        from ptstub.arch import x86_64

        gpr, _ = self._registers(tid, with_xstate=False)
        self._process_for(tid).write_gpr(tid, x86_64.with_pc(gpr, pc))
        self._regs.pop(tid, None)
        self._g_replies.pop(tid, None)

    def _resume(self, actions: dict[int, ResumeAction], among: tuple[int, ...] | None = None) -> list[bytes] | None:
        """Resume the target as GDB asked; `among`: its threads now, if the caller has them."""
        target = self._alive()
        if len(self.processes) > 1:
            return self._resume_plans_of([(self._process_for(next(iter(actions))), actions)] if actions else [])
        if not actions:
            return [replies.no_resumed() if self.features.no_resumed else replies.error(errno_mod.EINVAL)]
        # A signal GDB names in vCont is delivered even if QProgramSignals leaves it out (`signal
        # SIGTRAP`): that list is for signals the stub delivers on its own, at detach (gdbserver).
        self._invalidate()
        self._last_resume = actions
        self._resumed_among = among if among is not None else tuple(target.thread_ids())
        target.resume(actions)
        self._running = [target]
        self.running = True
        if self._interrupt_due:
            self.interrupt()
        return None

    def _resume_plans_of(self, plans: list[tuple[Any, dict[int, ResumeAction]]]) -> list[bytes] | None:
        """Resume several processes together (all-stop over processes, ptstub.linux.processes)."""
        from ptstub.linux.processes import resume_processes

        self._invalidate()
        # The process last started or attached first: the wait sleeps in it, so a Ctrl-C stops it
        # and is reported there, as gdbserver's kill(-signal_pid, SIGINT) (detach-step-over.exp).
        plans = sorted(plans, key=lambda plan: plan[0].pid != self._signal_pid)
        ended = [p for p in self.processes.values() if p.ended]
        if ended:
            # A process ended while held and GDB was not told yet: that comes first, nothing runs.
            self._ended_first = ended[0]
            self.running = True
            return None
        if not plans:
            return [replies.no_resumed() if self.features.no_resumed else replies.error(errno_mod.EINVAL)]
        self._last_resume = {tid: action for _, actions in plans for tid, action in actions.items()}
        self._resumed_among = frozenset(tid for process in self._served() for tid in process.thread_ids())
        self._running = resume_processes(plans)
        self.running = True
        if self._interrupt_due:
            self.interrupt()
        return None

    def interrupt(self) -> None:
        """All-stop Ctrl-C. It stops the process started or attached last (gdbserver sends SIGINT to
        its group). It waits for a resume when nothing runs (GDB sent `\x03` between a stop and its
        resume) or when GDB is only stepping one thread of another process over a breakpoint (its
        resume of everything comes next), as the SIGINT gdbserver queues does; dropping it left GDB
        waiting for a stop that never came (detach-step-over.exp). Any other time it stops what runs,
        so it cannot wait for ever on a process GDB keeps stopped (schedule-multiple off)."""
        running = self._running if self.running else []
        first = running[0] if running else None
        if (
            first is None
            or getattr(first, "ready", False)  # it reports an event it had already, and runs nothing
            or (first.pid != self._signal_pid and self._signal_pid in self.processes and self._stepping_one_thread())
        ):
            self._interrupt_due = True
            return
        self._interrupt_due = False
        self._interrupted = first
        first.interrupt()  # the process the wait sleeps in (ptstub.linux.processes)

    def _stepping_one_thread(self) -> bool:
        """The last resume was a single step (or range step) of one thread: GDB's in-line step-over."""
        resume = self._last_resume
        if len(resume) != 1:
            return False
        return next(iter(resume.values())).kind in (ResumeKind.STEP, ResumeKind.RANGE_STEP)

    def wait_for_stop(self, wake_fd: int) -> bytes | None:
        """Wait for the running target; the stop reply, or None when GDB sent something first."""
        if len(self.processes) > 1 or self._ended_first is not None:
            return self._wait_for_processes(wake_fd)
        target = self._alive()
        while True:
            try:
                event = target.wait(None, wake_fd)
            except TargetError as err:
                # Every resumed thread exited while the others stay held (scheduler-locking):
                # gdbserver answers N, GDB says so and keeps the session (schedlock-thread-exit.exp).
                if err.errno != errno_mod.ECHILD or not self.features.no_resumed:
                    raise
                self.running = False
                self._running = []
                self._invalidate()
                return replies.no_resumed()
            if event is None:
                return None
            uncaught = self.catch_syscalls is not None and getattr(event, "number", None) not in self.catch_syscalls
            if isinstance(event, SyscallStop) and uncaught:
                self._resume_unreported(target)
                if _input_waiting(wake_fd):
                    return None  # as below: GDB's packet (a Ctrl-C) before the next unreported stop
                continue
            if not self._should_report(event):
                # Every condition false: resume exactly as GDB last did; the engine steps the thread
                # over the breakpoint it stands on (it is resumed unmoved), GDB never hears of the hit.
                self._resume_unreported(target)
                if _input_waiting(wake_fd):
                    return None  # the world runs again; GDB's packet (a Ctrl-C) is read first
                continue
            break
        self.running = False
        self._running = []
        return self.report(event)

    def _resume_unreported(self, target: Any) -> None:
        """Resume after a stop GDB does not hear of, as GDB last resumed; a Ctrl-C that waited for
        the process to run (it had that event already) is asked for now."""
        target.resume(self._actions_again(target))
        if self._interrupt_due:
            self.interrupt()

    def _actions_again(self, process: Any) -> dict[int, ResumeAction]:
        """The actions of GDB's last resume for the threads of `process`, and continue for a thread
        born since (it ran from its birth; left out, it stayed stopped for ever at a hit GDB never
        heard of, and its joiner with it: step-over-exec.exp, a false condition in a new thread)."""
        last, among = self._last_resume, self._resumed_among
        tids = process.thread_ids()
        if len(self.processes) == 1 and all(tid in last for tid in tids):
            return last  # the common case: GDB resumed every thread and none was born since
        actions = {tid: last[tid] for tid in tids if tid in last}
        for tid in tids:
            if tid not in last and tid not in among:
                actions[tid] = ResumeAction(ResumeKind.CONTINUE)
        return actions

    def _wait_for_processes(self, wake_fd: int) -> bytes | None:
        """`wait_for_stop` when the process resumed is not the target, or several run."""
        from ptstub.linux.processes import resume_processes, wait_processes

        if self._ended_first is not None:
            process, self._ended_first = self._ended_first, None
            self.running = False
            return self.report(process.take_event(), process)
        while True:
            try:
                found = wait_processes(self._running, self._served(), wake_fd)
            except TargetError as err:
                if err.errno != errno_mod.ECHILD or not self.features.no_resumed:
                    raise
                self.running = False
                self._invalidate()
                return replies.no_resumed()
            if found is None:
                return None
            process, event = found
            uncaught = self.catch_syscalls is not None and getattr(event, "number", None) not in self.catch_syscalls
            if (isinstance(event, SyscallStop) and uncaught) or not self._should_report(event):
                # As for one process (wait_for_stop): every process resumed as GDB last did. A hit whose
                # conditions are all false was reported to GDB here (one stop per false condition).
                plans = [(p, self._actions_again(p)) for p in self._served()]
                plans.sort(key=lambda plan: plan[0].pid != self._signal_pid)
                self._running = resume_processes([(p, a) for p, a in plans if a])
                if self._interrupt_due:  # it waited for a process that was not running
                    self.interrupt()
                if _input_waiting(wake_fd):
                    return None
                continue
            break
        self.running = False
        self._running = []
        return self.report(event, process)

    def report(self, event: StopEvent, process: Any | None = None) -> bytes:
        """Turn a stop event of `process` (default: the target) into the stop reply (and remember it
        for `?`); in all-stop the process of the event becomes the target, as gdbserver's current
        thread (in non-stop gdbserver keeps the thread GDB selected)."""
        if process is None or process is self.target or process.pid not in self.processes:
            return self._report(event)
        if not self.non_stop:
            self.target = process
            return self._report(event)
        target, self.target = self.target, process
        try:
            return self._report(event)
        finally:
            if target is not None and target.pid in self.processes:
                self.target = target

    def _report(self, event: StopEvent) -> bytes:
        """`report` of an event of the target."""
        self.last_event = event
        self._invalidate()
        if self._interrupted is not None:
            # Another event came first (the thread GDB stepped finished): the Ctrl-C stays due, as
            # the SIGINT gdbserver queues stays pending in the kernel, and is asked for again at the
            # next resume, of the process that is then the one to stop (the request made now is
            # withdrawn: left in its engine, it stopped that process later, and a second time).
            interrupted, self._interrupted = self._interrupted, None
            if not isinstance(event, Interrupted):
                interrupted.cancel_interrupt()
                self._interrupt_due = bool(interrupted.alive)
        if isinstance(event, Interrupted):
            self._interrupt_due = False  # a stop on request answers the Ctrl-C, whichever came first
        if type(event) is ThreadExited:
            self._thread_stops.pop(event.tid, None)
            reply = replies.thread_exited(event.code, ThreadId(self.pid, event.tid), self.features.multiprocess)
        elif isinstance(event, Exited):
            self.announce(f"\nChild exited with status {event.code}")
            reply = replies.exited(event.code, event.pid if self.features.multiprocess else None)
            self._forget_target()
        elif isinstance(event, Killed):
            self.announce(f"\nChild terminated with signal = {event.signal:#x} ({_signal_name(event.signal)})")
            reply = replies.killed(event.signal, event.pid if self.features.multiprocess else None)
            self._forget_target()
        else:
            signal, reason = replies.stop_reason_for(event)
            if self.non_stop and isinstance(event, Interrupted) and event.tid not in self._ctrl_c_tids:
                signal = 0  # a vCont;t stop: GDB shows "Thread N stopped" (gdbserver reports it as 0)
            self._ctrl_c_tids.discard(event.tid)
            if reason is not None and not self._reason_negotiated(reason):
                reason = None
            if type(event) is Exec:  # a new image, no breakpoints left in it
                self._layout = None
                self._software_breakpoints.pop(self.pid, None)
                self._hardware_breakpoints = {k for k in self._hardware_breakpoints if k[0] != self.pid}
                self._conditions = {k: v for k, v in self._conditions.items() if k[0] != self.pid}
                self._commands = {k: v for k, v in self._commands.items() if k[0] != self.pid}
            if isinstance(event, Forked):
                self._adopt_fork_child(event.child_pid)
            reply = self._stop_reply_for_thread(signal, event.tid, reason)
            if self.non_stop and isinstance(event, Forked):
                self._fork_parents[event.child_pid] = (event.tid, reply)
            if self.non_stop:  # as gdbserver: in non-stop a stop does not change GDB's selected thread
                self._thread_stops[event.tid] = reply
            else:
                self.g_thread = event.tid
                self.g_pid = self.pid
        self.last_stop = reply
        return reply

    def _reason_negotiated(self, reason: replies.StopReason) -> bool:
        cached = self._reason_filter
        if cached is None or cached[0] is not self.features:
            features = self.features
            negotiated = {
                replies.StopReasonKind.SOFTWARE_BREAKPOINT: features.swbreak,
                replies.StopReasonKind.HARDWARE_BREAKPOINT: features.hwbreak,
                replies.StopReasonKind.FORK: features.fork_events,
                replies.StopReasonKind.VFORK: features.vfork_events,
                replies.StopReasonKind.VFORK_DONE: features.vfork_events,
                replies.StopReasonKind.EXEC: features.exec_events,
            }
            cached = self._reason_filter = (features, negotiated)
        return cached[1].get(reason.kind, True)

    def _stop_reply_for_thread(self, signal: int, tid: int, reason: replies.StopReason | None) -> bytes:
        registers: tuple[tuple[int, bytes], ...] = ()
        try:
            gpr, xstate = self._registers(tid, with_xstate=False)
            layout = self._layout_for(tid)
            slices = self._expedited_slices(layout)
            if slices is not None:
                registers = tuple([(n, gpr[start:end]) for n, start, end in slices])
            else:
                registers = tuple([(n, layout.read_register(n, gpr, xstate)) for n in EXPEDITED])
        except PtstubError:
            pass
        # A breakpoint loop stops the same thread at the same place again and again: keep those replies
        # (only for the constant reasons, whose identity stands for their value).
        memo = reason is None or reason is replies.SOFTWARE_BREAKPOINT or reason is replies.HARDWARE_BREAKPOINT
        thread = self._thread_id(tid) if len(self.processes) > 1 else None  # else the target's, made on a miss
        key = (
            signal,
            self.pid if thread is None else thread.pid,
            tid,
            id(reason),
            self.features.multiprocess,
            registers,
        )
        reply = self._stop_replies.get(key) if memo else None
        if reply is None:
            if thread is None:
                thread = self._thread_id(tid)
            reply = replies.stop_reply_signal(
                signal, thread, registers, reason, multiprocess=self.features.multiprocess
            )
            if memo:
                if len(self._stop_replies) >= 256:
                    self._stop_replies.clear()
                self._stop_replies[key] = reply
        return reply

    def _expedited_slices(self, layout: Any) -> tuple[tuple[int, int, int], ...] | None:
        """(regnum, start, end) of the expedited registers in the raw general registers, when they all
        live there (rbp, rsp, rip do on x86-64): a slice each per stop instead of `read_register`."""
        cached = self._expedite
        if cached is None or cached[0] is not layout:
            from ptstub.arch import x86_64

            regs = [layout.register(n) for n in EXPEDITED]
            slices = None
            if all(reg.source is x86_64.Source.GPR for reg in regs):
                slices = tuple((n, reg.offset, reg.offset + reg.size) for n, reg in zip(EXPEDITED, regs, strict=True))
            cached = self._expedite = (layout, slices)
        return cached[1]

    def _adopt_fork_child(self, child_pid: int) -> None:
        """The stopped child of a reported fork joins the session as a process of its own: GDB detaches
        it (`D;pid`, detach-on-fork on) or debugs it beside the parent."""
        parent = self._alive()
        child = parent.adopt_fork_child(child_pid)
        self._join(parent, child)
        self._software_breakpoints[child_pid] = set(self._software_breakpoints.get(parent.pid, ()))
        if parent.pid in self._attached_pids:  # as gdbserver: a child inherits how its parent came
            self._attached_pids.add(child_pid)

    def _join(self, served: Any, process: Any) -> None:
        """`process` is served beside `served`: one ring of engines, each handing the other's wait
        statuses over (ptstub.linux.processes)."""
        link = getattr(served, "link", None)
        if link is not None:
            link(process)
        if self.thread_events:
            process.set_options(thread_exits=True)
        self.processes[process.pid] = process

    def _forget_target(self) -> None:
        """The target ended: out of the session; another process (if any) becomes the target."""
        target = self.target
        self.running = False
        if target is not None:
            self._forget_process(target)
        self._forget_thread_stops()
        if self.target is None and not self.extended:
            self.exit_requested = True

    def _discard_stops_of(self, process: Any) -> None:
        """Non-stop: drop the queued stops of one process of several (it is detached or killed)."""
        tids = set(process.thread_ids()) if process.alive else set()
        self.stops.discard(lambda key, reply: key in tids)
        for tid in tids:
            self._thread_stops.pop(tid, None)

    def _forget_thread_stops(self) -> None:
        """Non-stop: forget the stops of threads no process served has any more."""
        if len(self.processes) <= 1 and (self.target is None or not self.target.alive):
            self._thread_stops.clear()
            return
        self._thread_stops = {tid: reply for tid, reply in self._thread_stops.items() if self._owner(tid)}

    def _forget_process(self, process: Any) -> None:
        self._invalidate()  # its threads leave the thread list (threadapply.exp "kill-and-remove")
        self._fork_parents.pop(process.pid, None)
        self.processes.pop(process.pid, None)
        self._attached_pids.discard(process.pid)
        self._software_breakpoints.pop(process.pid, None)
        self._hardware_breakpoints = {k for k in self._hardware_breakpoints if k[0] != process.pid}
        self._conditions = {k: v for k, v in self._conditions.items() if k[0] != process.pid}
        self._commands = {k: v for k, v in self._commands.items() if k[0] != process.pid}
        if process in self._running:
            self._running.remove(process)
        process.close()
        if self.target is process:
            # Another process becomes the target, even one that ended meanwhile and is still to be
            # reported (it is, at the next resume).
            remaining = self._served() or list(self.processes.values())
            self.target = remaining[0] if remaining else None
        if self.g_pid == process.pid:
            self.g_pid, self.g_thread = 0, 0

    # ------------------------------------------------------------------------------------- signals
    def handle_pass_signals(self, c: cmd.PassSignals) -> bytes:
        self._pass_signals = frozenset(c.signals)
        for process in self._served():
            process.set_pass_signals(c.signals)
        return replies.ok()

    def handle_program_signals(self, c: cmd.ProgramSignals) -> bytes:
        self.program_signals = c.signals
        return replies.ok()

    def handle_catch_syscalls(self, c: cmd.CatchSyscalls) -> bytes:
        self.catching = c.enabled
        self.catch_syscalls = c.syscalls if c.enabled else None
        for process in self._served():
            process.set_options(catch_syscalls=c.enabled)
        return replies.ok()

    # ------------------------------------------------------------------------------------- objects
    def handle_read_object(self, c: cmd.ReadObject) -> bytes:
        obj = c.object
        max_body = self.features.packet_size - 8
        if obj is TransferObject.FEATURES:
            if c.annex != b"target.xml":
                return replies.error(errno_mod.ENOENT)
            tid = self._select(self.g_thread)
            document = self._layout_for(tid).target_xml
        elif obj is TransferObject.THREADS:
            if not self._served():
                self._alive()  # raises: no process
            # non-stop: threads come and go and rename themselves while others run
            document = self._thread_list.read(self._served(), self.features.multiprocess, c.offset, self.non_stop)
        elif obj is TransferObject.AUXV:
            document = self._current().read_auxv()
        elif obj is TransferObject.EXEC_FILE:
            document = self._exec_file(c.annex).encode()
        elif obj is TransferObject.SIGINFO:
            tid = self._select(self.g_thread)
            document = self._process_for(tid).read_siginfo(tid)
        elif obj is TransferObject.LIBRARIES_SVR4:
            document = self._libraries_document()
        elif obj is TransferObject.OSDATA:
            document = self._osdata_document(c.annex, c.offset)
            if document is None:
                return replies.error(errno_mod.EINVAL)
        else:
            return replies.unsupported()
        return replies.qxfer_chunk(document, c.offset, c.length, max_body)

    def handle_write_object(self, c: cmd.WriteObject) -> bytes:
        if c.object is not TransferObject.SIGINFO:
            return replies.unsupported()
        tid = self._select(self.g_thread)
        target = self._process_for(tid)
        current = bytearray(target.read_siginfo(tid))
        current[c.offset : c.offset + len(c.data)] = c.data
        target.write_siginfo(tid, bytes(current[:128]))
        return b"%x" % len(c.data)

    def _osdata_document(self, annex: bytes, offset: int) -> bytes | None:
        """A table is read at offset 0 and served from that snapshot for the later chunks, like gdbserver."""
        name = annex.decode(errors="replace")
        if offset == 0 or name not in self._osdata:
            from ptstub.linux.osdata import osdata  # `info os` only: keep its imports off GDB's connect path

            document = osdata(name)
            if document is None:
                return None
            self._osdata[name] = document
        return self._osdata[name]

    def _exec_file(self, annex: bytes) -> str:
        if annex:
            process = self.processes.get(int(annex, 16))
            if process is None or not process.alive:
                return os.readlink(f"/proc/{int(annex, 16)}/exe")
            return str(process.executable())
        return str(self._current().executable())

    def _libraries_document(self) -> bytes:
        if self._libraries_doc is None:
            target = self._current()
            main_lm, libraries = target.loaded_libraries()
            parts = [b'<library-list-svr4 version="1.0"']
            if main_lm:
                parts.append(b' main-lm="0x%x"' % main_lm)
            parts.append(b">")
            for lib in libraries:
                parts.append(
                    b'<library name="%s" lm="0x%x" l_addr="0x%x" l_ld="0x%x" lmid="0x0"/>'
                    % (_xml_escape(lib.name), lib.lm, lib.l_addr, lib.l_ld)
                )
            parts.append(b"</library-list-svr4>")
            self._libraries_doc = b"".join(parts)
        return self._libraries_doc

    def handle_tls_address(self, c: cmd.GetTlsAddress) -> bytes:
        if not _thread_db_findable(self.thread_db_search_path):
            # ptstub reads TLS without libthread_db, but `monitor set libthread-db-search-path`
            # to where there is none makes gdbserver fail here, and GDB says so (no-thread-db.exp).
            return replies.error(1)
        tid = self._select(c.thread.tid)
        return replies.tls_address(self._process_for(tid).tls_address(tid, c.offset, c.load_module))

    # ------------------------------------------------------------------------------------- monitor
    def handle_monitor(self, c: cmd.MonitorCommand) -> list[bytes]:
        words = c.command.decode("utf-8", "replace").split()
        if words == ["exit"]:
            self.exit_requested = True
            self.finished = True
            return [replies.ok()]
        if words[:2] == ["set", "debug"] or words[:2] == ["set", "remote-debug"]:
            on = len(words) > 2 and words[2] not in ("0", "off")
            logging.getLogger("ptstub").setLevel(logging.DEBUG if on else logging.WARNING)
            what = "Debug" if words[1] == "debug" else "Protocol debug"
            text = f"{what} output {'enabled' if on else 'disabled'}.\n"  # gdbserver's words
            return [replies.console_output(text.encode()), replies.ok()]
        if words[:2] == ["set", "debug-format"] and len(words) == 3 and words[2] in ("all", "none"):
            state = "enabled" if words[2] == "all" else "disabled"
            return [replies.console_output(f"All extra debug format options {state}.\n".encode()), replies.ok()]
        if words[:2] == ["set", "libthread-db-search-path"]:
            path = c.command.decode("utf-8", "replace").split(None, 2)[2] if len(words) > 2 else ""
            self.thread_db_search_path = path
            return [replies.console_output(f"libthread-db-search-path set to `{path}'\n".encode()), replies.ok()]
        text = (
            "The following monitor commands are supported:\n"
            "  set debug <0|1>\n    Enable general debugging messages\n"
            "  set remote-debug <0|1>\n    Enable remote protocol debugging messages\n"
            "  set debug-format all|none\n    Add additional information to debugging messages\n"
            "  set libthread-db-search-path [PATH]\n    Where to look for libthread_db\n"
            "  exit\n    Quit GDBserver\n"
        )
        if words == ["help"]:
            return [replies.console_output(text.encode()), replies.ok()]
        # gdbserver: the words, the help, and an error (GDB: "Protocol error with Rcmd").
        return [replies.console_output(("Unknown monitor command.\n\n" + text).encode()), replies.error(1)]

    # ------------------------------------------------------------------------------------- launch settings
    def handle_set_disable_randomization(self, c: cmd.SetDisableRandomization) -> bytes:
        self.settings.disable_randomization = c.enabled
        return replies.ok()

    def handle_set_startup_with_shell(self, c: cmd.SetStartupWithShell) -> bytes:
        self.settings.startup_with_shell = c.enabled
        return replies.ok()

    def handle_set_environment(self, c: cmd.SetEnvironmentVariable) -> bytes:
        self.settings.environment[os.fsdecode(c.name)] = os.fsdecode(c.value)
        return replies.ok()

    def handle_unset_environment(self, c: cmd.UnsetEnvironmentVariable) -> bytes:
        self.settings.environment.pop(os.fsdecode(c.name), None)
        return replies.ok()

    def handle_reset_environment(self, c: cmd.ResetEnvironment) -> bytes:
        self.settings.environment = dict(os.environ)
        return replies.ok()

    def handle_set_working_directory(self, c: cmd.SetWorkingDirectory) -> bytes:
        # `~` and `~user` are expanded, as gdbserver's fork_inferior does (gdb_tilde_expand).
        self.settings.working_directory = os.path.expanduser(os.fsdecode(c.path)) if c.path else None
        return replies.ok()

    # ------------------------------------------------------------------------------------- processes
    def handle_run(self, c: cmd.RunProgram) -> bytes:
        launcher = self.launcher
        if launcher is None:
            return replies.error(errno_mod.EPERM)
        argv = [os.fsdecode(c.program)] + [os.fsdecode(a) for a in c.arguments] if c.program else []
        if not argv:
            argv = list(self.settings.program)
        if not argv:
            return replies.error(errno_mod.ENOENT)
        try:
            self._start_target(lambda: launcher(argv, self.settings), attached=False)
        except PtstubError as err:
            self.announce(str(err))
            return replies.error(errno_mod.ENOENT)
        self.settings.program = argv
        if self.non_stop:
            # The reply to vRun is a plain stop reply, not a notification; gdbserver also makes the new
            # process's thread the general thread, as GDB expects.
            self.g_thread = self._select(0)
            return self._initial_stop(self.g_thread)
        return self.handle_query_stop_reason(cmd.QueryStopReason())

    def handle_attach(self, c: cmd.AttachProcess) -> bytes:
        attacher = self.attacher
        if attacher is None:
            return replies.error(errno_mod.EPERM)
        if any(p.pid == c.pid for p in self._served()):
            # Already ours: replacing the target would detach it first and attach anew; gdbserver's
            # PTRACE_ATTACH fails here and GDB reports the attach as failed.
            self.announce(f"Cannot attach to process {c.pid}: Operation not permitted (1)")
            return replies.error(errno_mod.EPERM)
        try:
            self._start_target(lambda: attacher(c.pid), attached=True)
        except PtstubError as err:
            self.announce(str(err))
            return replies.error(errno_mod.EPERM)
        # gdbserver reports an attach as a SIGSTOP stop of the leader (T13), or as the signal that
        # arrived with it (the Linux backend keeps that one; other targets have none).
        pending = getattr(self.target, "take_pending_signal", lambda: None)()
        if pending is not None:
            return self.report(pending)
        self.last_stop = self._stop_reply_for_thread(19, self._select(0), None)
        if self.non_stop:
            return self._attached_non_stop()
        return self.last_stop

    def handle_query_attached(self, c: cmd.QueryAttached) -> bytes:
        if c.pid is not None and c.pid in self.processes:
            return replies.attached(c.pid in self._attached_pids)
        return replies.attached(self.attached)

    def _attached_non_stop(self) -> bytes:
        """Non-stop attach (gdbserver): `OK`, the leader's SIGSTOP stop as a notification, and every
        other thread running, as GDB assumes of the threads it then finds (it stops them itself)."""
        target = self._alive()
        leader = self._select(0)
        target.resume_threads({tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids() if tid != leader})
        assert self.last_stop is not None
        self._thread_stops[leader] = self.last_stop
        self.stops.push(self.last_stop, leader)
        return replies.ok()

    def handle_restart(self, c: cmd.Restart) -> None:
        launcher = self.launcher
        if self.extended and self.settings.program and launcher is not None:
            self._replace_target(lambda: launcher(list(self.settings.program), self.settings), attached=False)
        return None

    def _start_target(self, start: Callable[[], Any], attached: bool) -> None:
        """vRun / vAttach: with the multiprocess extensions in extended mode the new process joins the
        ones served (GDB's `add-inferior` then `run` or `attach`; gdbserver refuses a second process
        only without them), otherwise it replaces the target."""
        if not (self.extended and self.features.multiprocess and self._served()):
            self._replace_target(start, attached)
            return
        process = start()
        self._join(self.target, process)
        self.target = process
        self._signal_pid = process.pid
        self._apply_target_options()
        if self._pass_signals:
            process.set_pass_signals(self._pass_signals)
        if attached:
            self._attached_pids.add(process.pid)
        else:
            self._attached_pids.discard(process.pid)
        self.g_pid, self.g_thread = process.pid, process.pid  # gdbserver: the new process is current
        self.last_event = None
        self.last_stop = None
        self._layout = None
        self._invalidate()

    def _replace_target(self, start: Callable[[], Any], attached: bool) -> None:
        """End the current process (if any) and serve the one `start` gives, with fresh stop state."""
        self._drop_target()
        self.stops.discard()
        self._thread_stops.clear()
        self._running, self._ended_first = [], None
        self.target = start()
        self.processes = {self.target.pid: self.target}
        self._signal_pid = self.target.pid
        self._apply_target_options()
        self._attached_pids = {self.target.pid} if attached else set()
        self.last_event = None
        self.last_stop = None
        self._layout = None

    def _drop_target(self) -> None:
        if self.target is not None and self.target.alive:
            if self.attached:
                self.target.detach()
            else:
                self.target.kill()
        if self.target is not None:
            self.target.close()
        self.target = None
        self._release_others()
        self._software_breakpoints.clear()
        self._conditions.clear()
        self._commands.clear()
        self._invalidate()

    def _release_others(self) -> None:
        """Let every process but the target go (fork children GDB kept, processes run or attached
        beside it): attached ones are detached, the ones ptstub started are killed, as gdbserver's
        detach_or_kill_for_exit does; detached, a started program ran on after ptstub had gone."""
        for process in list(self.processes.values()):
            if process is self.target:
                continue
            self.processes.pop(process.pid, None)
            self._software_breakpoints.pop(process.pid, None)
            try:
                if process.pid in self._attached_pids:
                    process.detach()
                else:
                    process.kill()
            finally:
                self._attached_pids.discard(process.pid)
                process.close()
        self._running = [p for p in self._running if p is self.target]

    def handle_kill(self, c: cmd.KillProcess) -> bytes | None:
        self._interrupt_due = False
        if c.pid is not None and len(self.processes) > 1:
            process = self.processes.get(c.pid)
            if process is None:
                return replies.error(errno_mod.ESRCH)
            # One of several processes (`vKill;pid`): the others stay (GDB's `kill inferiors N`).
            if self.non_stop:
                self._discard_stops_of(process)
            if process.alive:
                process.kill()
            self._forget_process(process)
            self.last_stop = None
            return replies.ok()
        if self.target is not None:
            pid = self.target.pid
            self.stops.discard()
            self._thread_stops.clear()
            for other in list(self.processes.values()):
                if other is not self.target:  # `k`: every process
                    other.kill()
                    self._forget_process(other)
            if self.target.alive:
                self.target.kill()
            self.target.close()
            self.processes.pop(pid, None)
            self.target = None
            self.last_stop = replies.killed(9, pid if self.features.multiprocess else None)
        if not self.extended:
            self.exit_requested = True
            if c.pid is None:
                self.finished = True
        return replies.ok() if c.pid is not None else None

    def handle_detach(self, c: cmd.Detach) -> bytes:
        self._interrupt_due = False
        process = self.processes.get(c.pid) if c.pid is not None else None
        if c.pid is not None and process is None:
            return replies.error(errno_mod.ESRCH)
        target = process or self._alive()
        if self._keeps_commands_after_detach(target):
            return self._detach_leaving_commands(target)
        self.announce(f"Detaching from process {target.pid}")
        if self.non_stop and len(self.processes) > 1:
            self._discard_stops_of(target)
        elif target is self.target or self.non_stop:
            self.stops.discard()
            self._thread_stops.clear()
        allowed = self.program_signals
        was_target = target is self.target
        target.detach(None if allowed is None or not was_target else allowed.__contains__)
        self._forget_process(target)
        if was_target:
            self.last_stop = None
        if self.target is not None:
            # Others remain (GDB let one of several go; with follow-fork-mode child the child it kept
            # is now the process served, as gdbserver keeps serving it).
            self._apply_target_options()
            self._invalidate()
            return replies.ok()
        self.last_stop = None
        if not self.extended:
            self.exit_requested = True
            self.finished = True
        return replies.ok()

    # ------------------------------------------------------------------------------------- persistent commands
    def _keeps_commands_after_detach(self, target: Any) -> bool:
        """Whether `D` leaves the program traced and running with its breakpoint commands (GDB sets
        `persist` by default: `set disconnected-dprintf on`). Served for the simple case only: one
        process, all-stop, `target remote`; otherwise the detach is a plain one and the commands end."""
        pid = target.pid
        if self.extended or self.non_stop or target is not self.target or len(self.processes) != 1:
            return False
        return any(key[0] == pid and commands.persist for key, commands in self._commands.items())

    def _detach_leaving_commands(self, target: Any) -> bytes:
        """gdbserver's `handle_detach` with persistent commands: it stays attached, says so (its words),
        resumes every thread and answers OK; the commands keep printing while no GDB is connected.
        Signals GDB would have been told of go to the program, forks are let go (no GDB to follow them)."""
        import signal as signal_mod

        self.announce("Persistent commands are present, leaving gdbserver attached to the process")
        target.set_options(fork_events=False, catch_syscalls=False, thread_exits=False)
        target.set_pass_signals(frozenset(range(1, 65)) - {signal_mod.SIGTRAP, signal_mod.SIGSTOP})
        self.catch_syscalls = None
        target.resume({tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()})
        self.detached_with_commands = True
        self.finished = True
        return replies.ok()

    def run_detached_commands(self, wake_fd: int | None) -> bool:
        """Serve the program GDB detached from leaving persistent commands, with no GDB: hits run their
        commands, a signal goes to the program, anything else resumes it. True once it ended (told as
        when GDB is connected); False when `wake_fd` (a new GDB) is readable first: the program is
        stopped and keeps no breakpoint, as `close` leaves a program whose GDB left it running."""
        self.detached_with_commands = False
        target = self.target
        while target is not None and target.alive:
            event = target.wait(None, wake_fd)
            if event is None:
                self._stop_for_next_client(target)
                return False
            if isinstance(event, (Exited, Killed)):
                self.report(event)
                return True
            if type(event) is Exec:
                self.report(event)  # the new image has none of the breakpoints: the session forgets them
            else:
                self._should_report(event)  # runs the commands of a hit, reports nothing
            actions = {tid: ResumeAction(ResumeKind.CONTINUE) for tid in target.thread_ids()}
            if isinstance(event, SignalReceived):
                actions[event.tid] = ResumeAction(ResumeKind.CONTINUE, event.signal)
            target.resume(actions)
        return True

    def _stop_for_next_client(self, target: Any) -> None:
        """A GDB connects to the program left running with commands: stop it and make that stop the one
        `?` reports (not GDB's last stop, long gone). A hit the stop caught runs its commands and is
        reported as a plain stop: the breakpoints go with the departed GDB (`close`)."""
        with contextlib.suppress(PtstubError):
            event = target.stop()
            if type(event) is BreakpointHit:
                self._should_report(event)
                event = Interrupted(event.tid, event.pc)
            self.report(event)
        self.finished = False  # the program is served again, to the GDB that is connecting

    # ------------------------------------------------------------------------------------- host files
    def handle_file_setfs(self, c: cmd.FileSetFilesystem) -> bytes:
        self.files.set_filesystem(c.pid)
        return replies.file_result(0)

    def handle_file_open(self, c: cmd.FileOpen) -> bytes:
        try:
            return replies.file_result(self.files.open(c.path, c.flags, c.mode))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_close(self, c: cmd.FileClose) -> bytes:
        try:
            self.files.close(c.fd)
            return replies.file_result(0)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_read(self, c: cmd.FileRead) -> bytes:
        try:
            count = min(c.count, self.features.packet_size // 2)
            return replies.file_data(self.files.pread(c.fd, count, c.offset), self.features.packet_size - 16)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_write(self, c: cmd.FileWrite) -> bytes:
        try:
            return replies.file_result(self.files.pwrite(c.fd, c.data, c.offset))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_stat(self, c: cmd.FileStat) -> bytes:
        try:
            return replies.file_stat(self.files.fstat(c.fd))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_unlink(self, c: cmd.FileUnlink) -> bytes:
        try:
            self.files.unlink(c.path)
            return replies.file_result(0)
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    def handle_file_readlink(self, c: cmd.FileReadLink) -> bytes:
        try:
            return replies.file_data(self.files.readlink(c.path))
        except OSError as err:
            return replies.file_error(err.errno or errno_mod.EIO)

    # ------------------------------------------------------------------------------------- teardown
    def close(self) -> None:
        """End of a connection: the next GDB starts from a clean slate, with the same process.

        Files are closed, fork children let go, and what the departed GDB set in the target is undone:
        its breakpoints and watchpoints (a GDB that reconnects inserts its own again), caught
        syscalls, passed signals. Protocol state (no-ack mode, features, selected threads) resets.
        """
        self.files.close_all()
        self._release_others()
        target = self.target
        if target is not None and target.alive and (self.running or (self.non_stop and target.any_running())):
            # GDB left while the program ran: stop it, so the next GDB finds it stopped as on attach.
            with contextlib.suppress(PtstubError):
                self.report(target.stop())
        if target is not None and target.alive:
            for address in self._software_breakpoints.get(target.pid, ()):
                with contextlib.suppress(PtstubError):
                    target.remove_breakpoint(address)
            for pid, address, kind, length in self._hardware_breakpoints:
                if pid != target.pid:
                    continue
                with contextlib.suppress(PtstubError):
                    target.remove_breakpoint(address, kind, length)
            target.set_options(catch_syscalls=False, thread_exits=False)
            target.set_pass_signals(frozenset())
        self._software_breakpoints.clear()
        self._hardware_breakpoints.clear()
        self._conditions.clear()
        self._commands.clear()
        self._command_failures.clear()
        self._pass_signals = frozenset()  # a process run later must not get the last client's
        self._interrupt_due, self._interrupted = False, None  # a Ctrl-C left due is not the next client's
        self.catching = False
        self.catch_syscalls = None
        self.program_signals = None
        self.no_ack = False
        self.running = False
        self.non_stop = False
        self.thread_events = False
        self.stops.discard()
        self._thread_stops.clear()
        self._ctrl_c_tids.clear()
        self._stop_asked.clear()
        self._fork_parents.clear()
        self.features = NegotiatedFeatures()
        self._xml_client = None
        self.g_thread, self.g_pid, self.c_thread = 0, 0, -1
        self._invalidate()


def _xml_escape(name: bytes) -> bytes:
    return name.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;").replace(b'"', b"&quot;")


def _signal_name(sig: int) -> str:
    import signal as signal_mod

    try:
        return signal_mod.Signals(sig).name
    except ValueError:
        return f"SIG{sig}"


def _thread_db_findable(search_path: str | None) -> bool:
    """Whether gdbserver would find a libthread_db along `search_path` (None: never set, the default)."""
    if search_path is None:
        return True
    for entry in search_path.split(":"):
        if entry in ("$pdir", "$sdir") or os.path.exists(os.path.join(entry, "libthread_db.so.1")):
            return True
    return False


def _input_waiting(fd: int) -> bool:
    """Whether GDB has sent something on `fd` (a poll that does not wait)."""
    return bool(select.select([fd], [], [], 0)[0])

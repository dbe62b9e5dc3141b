"""The typed commands: one frozen value per RSP packet family (what `commands.parse_command` returns).

GDB manual, Remote Protocol appendix: "Packets", "General Query Packets", "Host I/O Packets" (vFile).
Each value is named for what the packet asks, not for its letter; numbers are plain ints, every `signal`
field holds a Linux signal number, and vFile open flags are Linux `O_*` values (the parser translates at
the edge). `Command` is the union the session dispatches on. `ptstub.rsp.commands` re-exports every name.
"""

from __future__ import annotations

from enum import Enum

from ptstub.rsp.features import ClientFeatures, TransferObject
from ptstub.rsp.threadid import ThreadId
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind
from ptstub.values import frozen

# --- commands -----------------------------------------------------------------------------------------


@frozen
class UnknownCommand:
    """A packet ptstub does not implement; answered with an empty reply."""

    body: bytes


@frozen
class QueryStopReason:
    """`?`: why the target last stopped (the last stop reply, or `W00` with no process)."""


@frozen
class EnableExtendedMode:
    """`!`: extended-remote mode (keep running with no process; `vRun`, `R`)."""


@frozen
class ReadRegisters:
    """`g`: all registers of the current (`Hg`) thread, in target-description order."""


@frozen
class WriteRegisters:
    """`G<hex>`: write all registers of the current (`Hg`) thread."""

    data: bytes


@frozen
class ReadRegister:
    """`p<n>`: one register (target-description number) of the current thread."""

    number: int


@frozen
class WriteRegister:
    """`P<n>=<hex>`: write one register of the current thread."""

    number: int
    value: bytes


@frozen
class ReadMemory:
    """`m<addr>,<length>`."""

    address: int
    length: int


@frozen
class WriteMemory:
    """`M<addr>,<length>:<hex>` or, with `binary`, `X<addr>,<length>:<escaped bytes>`.

    GDB probes `X` support with a zero-length write, which must answer `OK`.
    """

    address: int
    data: bytes
    binary: bool = False


@frozen
class Continue:
    """`c[addr]` / `C<sig>[;addr]`: legacy resume of the `Hc` thread (all threads in all-stop)."""

    signal: int = 0
    address: int | None = None


@frozen
class Step:
    """`s[addr]` / `S<sig>[;addr]`: legacy single-step of the `Hc` thread."""

    signal: int = 0
    address: int | None = None


@frozen
class QueryResumeActions:
    """`vCont?`: which `vCont` actions are supported."""


class ThreadActionKind(Enum):
    """What one `vCont` action does to the threads it selects."""

    CONTINUE = "c"  # `c` / `C<sig>`
    STEP = "s"  # `s` / `S<sig>`
    RANGE_STEP = "r"  # `r<start>,<end>`: step while start <= pc < end
    STOP = "t"  # `t`: stop (mainly non-stop mode)


_RESUME_KINDS = {
    ThreadActionKind.CONTINUE: ResumeKind.CONTINUE,
    ThreadActionKind.STEP: ResumeKind.STEP,
    ThreadActionKind.RANGE_STEP: ResumeKind.RANGE_STEP,
}


@frozen
class ThreadAction:
    """One `vCont` action. `thread` None = the default action for every thread not yet matched."""

    kind: ThreadActionKind
    thread: ThreadId | None = None
    signal: int = 0  # Linux signal number to deliver, 0 = none
    range_start: int = 0
    range_end: int = 0

    def to_resume_action(self) -> ResumeAction | None:
        """The backend's `ResumeAction` for this action (None for STOP: the thread stays stopped)."""
        kind = _RESUME_KINDS.get(self.kind)
        if kind is None:
            return None
        return ResumeAction(kind, self.signal, self.range_start, self.range_end)


@frozen
class Resume:
    """`vCont;<action>[:<thread>];...`: resume threads per action, in order; first match wins.

    A thread that no action selects stays stopped (`vCont;s:p1.2` steps only thread 2).
    """

    actions: tuple[ThreadAction, ...]

    def action_for(self, pid: int, tid: int) -> ThreadAction | None:
        """The action that applies to thread (`pid`, `tid`): the first that selects it, or None."""
        for action in self.actions:
            if action.thread is None or action.thread.matches(pid, tid):
                return action
        return None


@frozen
class InterruptTarget:
    """`vCtrlC`: the packet form of `\\x03` (answered `OK`, then the stop is reported)."""


@frozen
class NextStopNotification:
    """`vStopped`: GDB took the last `%Stop` notification (non-stop); answer the next queued stop or `OK`."""


class ThreadPurpose(Enum):
    """What an `H` packet selects a thread for."""

    REGISTERS = "g"  # `Hg`: registers and memory
    RESUME = "c"  # `Hc`: legacy `c`/`s` packets


@frozen
class SelectThread:
    """`Hg<thread>` / `Hc<thread>`."""

    purpose: ThreadPurpose
    thread: ThreadId


@frozen
class IsThreadAlive:
    """`T<thread>`: `OK` if the thread exists, `E NN` otherwise."""

    thread: ThreadId


@frozen
class QueryCurrentThread:
    """`qC`: answered `QC<thread>`."""


@frozen
class ListThreads:
    """`qfThreadInfo` (`first`) / `qsThreadInfo` (continuation)."""

    first: bool


@frozen
class QueryAttached:
    """`qAttached[:pid]`: `1` if ptstub attached to the process (detach on quit), `0` if it created it."""

    pid: int | None


@frozen
class QuerySectionOffsets:
    """`qOffsets` (gdbserver answers it empty on x86-64 Linux)."""


@frozen
class SymbolLookup:
    """`qSymbol::` (GDB can serve lookups: `name` and `value` None) or `qSymbol:[value]:<hexname>`.

    `value` None with a `name` means GDB does not know that symbol.
    """

    name: bytes | None = None
    value: int | None = None


@frozen
class GetTlsAddress:
    """`qGetTLSAddr:<thread>,<offset>,<lm>`: address of a TLS variable (GDB 13 `print tlsvar`)."""

    thread: ThreadId
    offset: int
    load_module: int


@frozen
class MonitorCommand:
    """`qRcmd,<hex>`: a `monitor ...` command line, decoded."""

    command: bytes


@frozen
class QuerySupported:
    """`qSupported[:features]`: feature negotiation; answered with `features.supported_reply`."""

    features: ClientFeatures


@frozen
class ReadObject:
    """`qXfer:<object>:read:<annex>:<offset>,<length>`; answered with `replies.qxfer_chunk`."""

    object: TransferObject
    annex: bytes
    offset: int
    length: int


@frozen
class WriteObject:
    """`qXfer:<object>:write:<annex>:<offset>:<escaped data>` (GDB writes `siginfo`)."""

    object: TransferObject
    annex: bytes
    offset: int
    data: bytes


@frozen
class ComputeCrc:
    """`qCRC:<addr>,<length>`: CRC-32 of target memory (`compare-sections`)."""

    address: int
    length: int


@frozen
class SearchMemory:
    """`qSearch:memory:<addr>;<length>;<escaped pattern>` (`find`)."""

    address: int
    length: int
    pattern: bytes


@frozen
class StartNoAckMode:
    """`QStartNoAckMode`: after the `OK`, neither side sends `+`/`-`."""


@frozen
class PassSignals:
    """`QPassSignals:<sig>;...`: Linux signals to deliver without stopping (GDB sends it per resume)."""

    signals: frozenset[int]


@frozen
class ProgramSignals:
    """`QProgramSignals:<sig>;...`: Linux signals the program may receive (else they are dropped)."""

    signals: frozenset[int]


@frozen
class SetNonStop:
    """`QNonStop:0|1`."""

    enabled: bool


@frozen
class SetDisableRandomization:
    """`QDisableRandomization:0|1`: ASLR off for programs started later (`vRun`)."""

    enabled: bool


@frozen
class SetEnvironmentVariable:
    """`QEnvironmentHexEncoded:<hex of NAME=value>`."""

    name: bytes
    value: bytes


@frozen
class UnsetEnvironmentVariable:
    """`QEnvironmentUnset:<hex name>`."""

    name: bytes


@frozen
class ResetEnvironment:
    """`QEnvironmentReset`: back to ptstub's own environment for the next `vRun`."""


@frozen
class SetWorkingDirectory:
    """`QSetWorkingDir:[hex path]`; `path` None = ptstub's own working directory."""

    path: bytes | None


@frozen
class SetStartupWithShell:
    """`QStartupWithShell:0|1`."""

    enabled: bool


@frozen
class CatchSyscalls:
    """`QCatchSyscalls:0` / `QCatchSyscalls:1[;<nr>...]`; `syscalls` None = every system call."""

    enabled: bool
    syscalls: frozenset[int] | None = None


@frozen
class SetThreadEvents:
    """`QThreadEvents:0|1`: report thread creation/exit stops."""

    enabled: bool


@frozen
class RunProgram:
    """`vRun;<hex prog>[;<hex arg>...]`; an empty `program` means "the previous program"."""

    program: bytes
    arguments: tuple[bytes, ...]


@frozen
class AttachProcess:
    """`vAttach;<pid>`."""

    pid: int


@frozen
class KillProcess:
    """`vKill;<pid>` (answered `OK`) or, with `pid` None, legacy `k` (which gets no reply)."""

    pid: int | None


@frozen
class Detach:
    """`D` or `D;<pid>`."""

    pid: int | None


@frozen
class Restart:
    """`R<xx>`: restart the program (extended mode); no reply."""


@frozen
class InsertBreakpoint:
    """`Z<type>,<addr>,<kind>[;X<len>,<expr>...][;cmds:<persist>,X<len>,<expr>...]`.

    `length` is the breakpoint kind (1 for int3 on x86-64) or the watched length. `conditions` and
    `commands` are agent-expression bytecodes (target-side conditions, `ConditionalBreakpoints`).
    """

    kind: BreakpointKind
    address: int
    length: int
    conditions: tuple[bytes, ...] = ()
    commands: tuple[bytes, ...] = ()
    persist_commands: bool = False


@frozen
class RemoveBreakpoint:
    """`z<type>,<addr>,<kind>`."""

    kind: BreakpointKind
    address: int
    length: int


@frozen
class FileSetFilesystem:
    """`vFile:setfs:<pid>`: later paths are in that process's mount namespace (0 = ptstub's)."""

    pid: int


@frozen
class FileOpen:
    """`vFile:open:<hex path>,<flags>,<mode>`; `flags` are already Linux `O_*` values."""

    path: bytes
    flags: int
    mode: int


@frozen
class FileClose:
    """`vFile:close:<fd>`."""

    fd: int


@frozen
class FileRead:
    """`vFile:pread:<fd>,<count>,<offset>`; answered with `replies.file_data`."""

    fd: int
    count: int
    offset: int


@frozen
class FileWrite:
    """`vFile:pwrite:<fd>,<offset>,<escaped data>`."""

    fd: int
    offset: int
    data: bytes


@frozen
class FileStat:
    """`vFile:fstat:<fd>`; answered with `replies.file_stat`."""

    fd: int


@frozen
class FileUnlink:
    """`vFile:unlink:<hex path>`."""

    path: bytes


@frozen
class FileReadLink:
    """`vFile:readlink:<hex path>`; answered with `replies.file_data`."""

    path: bytes


@frozen
class QueryThreadExtraInfo:
    """`qThreadExtraInfo,<thread>`: a printable description (hex-encoded in the reply)."""

    thread: ThreadId


Command = (
    UnknownCommand
    | QueryStopReason
    | EnableExtendedMode
    | ReadRegisters
    | WriteRegisters
    | ReadRegister
    | WriteRegister
    | ReadMemory
    | WriteMemory
    | Continue
    | Step
    | QueryResumeActions
    | Resume
    | InterruptTarget
    | SelectThread
    | IsThreadAlive
    | QueryCurrentThread
    | ListThreads
    | QueryAttached
    | QuerySectionOffsets
    | SymbolLookup
    | GetTlsAddress
    | MonitorCommand
    | QuerySupported
    | ReadObject
    | WriteObject
    | ComputeCrc
    | SearchMemory
    | StartNoAckMode
    | PassSignals
    | ProgramSignals
    | SetNonStop
    | NextStopNotification
    | SetDisableRandomization
    | SetEnvironmentVariable
    | UnsetEnvironmentVariable
    | ResetEnvironment
    | SetWorkingDirectory
    | SetStartupWithShell
    | CatchSyscalls
    | SetThreadEvents
    | RunProgram
    | AttachProcess
    | KillProcess
    | Detach
    | Restart
    | InsertBreakpoint
    | RemoveBreakpoint
    | FileSetFilesystem
    | FileOpen
    | FileClose
    | FileRead
    | FileWrite
    | FileStat
    | FileUnlink
    | FileReadLink
    | QueryThreadExtraInfo
)

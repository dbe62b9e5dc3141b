"""Connection state: what GDB negotiated or selected on this connection, and what ptstub offers.

One `ConnectionState` value holds it all (features, no-ack mode, extended and non-stop mode, the `Hg`/`Hc`
selections, signals to pass and syscalls to catch); a new connection starts from a fresh one, so
nothing the departed GDB set is left behind. `SERVER_FEATURES` is what `qSupported` answers
(GDB manual, "General Query Packets").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ptstub.rsp.features import ClientFeatures, NegotiatedFeatures, ServerFeatures, TransferObject

PACKET_SIZE = 0x20000  # large `m` replies: 1 MiB in 16 round trips (gdbserver: 0x47ff)
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


@dataclass(slots=True)
class ConnectionState:
    """What one GDB connection negotiated and selected; replaced whole when a connection ends."""

    extended: bool = False  # `!` or --multi; kept across connections (the server's mode)
    features: NegotiatedFeatures = field(default_factory=NegotiatedFeatures)
    client: ClientFeatures = field(default_factory=ClientFeatures)
    xml_client: bool | None = None  # xmlRegisters=i386 in qSupported; None before it
    no_ack: bool = False
    non_stop: bool = False
    thread_events: bool = False  # QThreadEvents:1: the end of every thread but a leader is reported
    g_thread: int = 0  # `Hg`: registers, memory and breakpoints go to this thread...
    g_pid: int = 0  # ...of this process (0: the target)
    c_thread: int = -1  # `Hc`: the thread `c`/`s` resume
    program_signals: frozenset[int] | None = None  # QProgramSignals: None until GDB sends one
    pass_signals: frozenset[int] = frozenset()  # QPassSignals
    catch_syscalls: frozenset[int] | None = None  # QCatchSyscalls: None when off, empty for all

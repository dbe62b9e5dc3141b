"""Connection state: what GDB negotiated or selected on this connection, and what ptstub offers.

One `ConnectionState` value holds it all (features, no-ack mode, extended and non-stop mode, the `Hg`/`Hc`
selections, signals to pass and syscalls to catch); a new connection starts from a fresh one, so
nothing the departed GDB set is left behind. `SERVER_FEATURES` is what `qSupported` answers
(GDB manual, "General Query Packets").
"""

from __future__ import annotations

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


class ConnectionState:
    """What one GDB connection negotiated and selected; replaced whole when a connection ends.

    A plain class with slots, not a dataclass: the dataclass machinery is kept off the start-up path
    (design-notes, "Start-up")."""

    __slots__ = (
        "extended",
        "features",
        "client",
        "xml_client",
        "no_ack",
        "non_stop",
        "thread_events",
        "g_thread",
        "g_pid",
        "c_thread",
        "program_signals",
        "pass_signals",
        "catch_syscalls",
    )

    def __init__(self, extended: bool = False) -> None:
        self.extended = extended  # `!` or --multi; kept across connections (the server's mode)
        self.features = NegotiatedFeatures()
        self.client = ClientFeatures()
        self.xml_client: bool | None = None  # xmlRegisters=i386 in qSupported; None before it
        self.no_ack = False
        self.non_stop = False
        self.thread_events = False  # QThreadEvents:1: the end of every thread but a leader is reported
        self.g_thread = 0  # `Hg`: registers, memory and breakpoints go to this thread...
        self.g_pid = 0  # ...of this process (0: the target)
        self.c_thread = -1  # `Hc`: the thread `c`/`s` resume
        self.program_signals: frozenset[int] | None = None  # QProgramSignals: None until GDB sends one
        self.pass_signals: frozenset[int] = frozenset()  # QPassSignals
        self.catch_syscalls: frozenset[int] | None = None  # QCatchSyscalls: None when off, empty for all

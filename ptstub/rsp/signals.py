"""Signal numbers: Linux x86-64 (host) <-> GDB's protocol numbering (`enum gdb_signal`).

RSP carries signals in GDB's own numbering (include/gdb/signals.def), not the target's: stop replies
(`T`/`S`/`X`), `C`/`S`/`vCont;C`/`vCont;S` actions, `QPassSignals` and `QProgramSignals` lists. The
two agree only for some of 1..31: SIGBUS is 7 on Linux but GDB_SIGNAL_BUS = 10, SIGUSR1 is 10 but
GDB_SIGNAL_USR1 = 30, SIGCHLD is 17 but 20, and so on. Real-time signals follow gdbsupport/signals.cc
(`gdb_signal_from_host`): host 32 is GDB_SIGNAL_REALTIME_32 = 77, hosts 33..63 are
GDB_SIGNAL_REALTIME_33.. = 45..75, host 64 is GDB_SIGNAL_REALTIME_64 = 78.

Invariants: `gdb_to_host_signal(host_to_gdb_signal(s)) == s` for every Linux signal 0..64 except
SIGSTKFLT (16), which GDB has no name for and reports as GDB_SIGNAL_UNKNOWN (143), as gdbserver does.
GDB signals with no Linux equivalent (SIGEMT, SIGLOST, SIGWAITING, ..., GDB_SIGNAL_LIBRT) map to None.
The rest of ptstub speaks host numbers only; the rsp parsers and reply encoders translate at the edge.
"""

from __future__ import annotations

GDB_SIGNAL_0 = 0
GDB_SIGNAL_TRAP = 5
GDB_SIGNAL_UNKNOWN = 143

LINUX_SIGRTMAX = 64

# Linux x86-64 numbers 1..31 (signal(7)) -> GDB numbers (signals.def).
_CLASSIC = {
    1: 1,  # SIGHUP
    2: 2,  # SIGINT
    3: 3,  # SIGQUIT
    4: 4,  # SIGILL
    5: 5,  # SIGTRAP
    6: 6,  # SIGABRT
    7: 10,  # SIGBUS
    8: 8,  # SIGFPE
    9: 9,  # SIGKILL
    10: 30,  # SIGUSR1
    11: 11,  # SIGSEGV
    12: 31,  # SIGUSR2
    13: 13,  # SIGPIPE
    14: 14,  # SIGALRM
    15: 15,  # SIGTERM
    16: GDB_SIGNAL_UNKNOWN,  # SIGSTKFLT: GDB has no such signal
    17: 20,  # SIGCHLD
    18: 19,  # SIGCONT
    19: 17,  # SIGSTOP
    20: 18,  # SIGTSTP
    21: 21,  # SIGTTIN
    22: 22,  # SIGTTOU
    23: 16,  # SIGURG
    24: 24,  # SIGXCPU
    25: 25,  # SIGXFSZ
    26: 26,  # SIGVTALRM
    27: 27,  # SIGPROF
    28: 28,  # SIGWINCH
    29: 23,  # SIGIO (= SIGPOLL on Linux; GDB_SIGNAL_IO wins, as in gdb_signal_from_host)
    30: 32,  # SIGPWR
    31: 12,  # SIGSYS
}


def _host_to_gdb_entry(host: int) -> int:
    if host == 0:
        return GDB_SIGNAL_0
    if host in _CLASSIC:
        return _CLASSIC[host]
    if host == 32:
        return 77  # GDB_SIGNAL_REALTIME_32 is out of sequence
    if 33 <= host <= 63:
        return 45 + host - 33  # GDB_SIGNAL_REALTIME_33 = 45
    return 78  # host 64: GDB_SIGNAL_REALTIME_64


_HOST_TO_GDB: tuple[int, ...] = tuple(_host_to_gdb_entry(host) for host in range(LINUX_SIGRTMAX + 1))
_GDB_TO_HOST: dict[int, int] = {gdb: host for host, gdb in enumerate(_HOST_TO_GDB) if gdb != GDB_SIGNAL_UNKNOWN}
_GDB_TO_HOST[33] = 29  # GDB_SIGNAL_POLL: SIGPOLL is SIGIO on Linux


def host_to_gdb_signal(host: int) -> int:
    """The GDB protocol number for a Linux signal (GDB_SIGNAL_UNKNOWN for one GDB cannot name)."""
    if 0 <= host <= LINUX_SIGRTMAX:
        return _HOST_TO_GDB[host]
    return GDB_SIGNAL_UNKNOWN


def gdb_to_host_signal(gdb: int) -> int | None:
    """The Linux signal for a GDB protocol number, or None when Linux has no such signal."""
    return _GDB_TO_HOST.get(gdb)


def gdb_signal_set_to_host(gdb_signals: list[int]) -> frozenset[int]:
    """Translate a `QPassSignals`/`QProgramSignals` list, dropping signal 0 and non-Linux signals.

    A Linux signal is in the set when *its own* GDB number is listed, as gdbserver tests
    `pass_signals[gdb_signal_from_host (sig)]`: SIGIO is host 29 = GDB_SIGNAL_IO, so a listed
    GDB_SIGNAL_POLL (also host 29 on Linux) does not pass SIGIO after `handle SIGIO stop`.
    """
    wanted = set(gdb_signals)
    return frozenset(host for host in range(1, LINUX_SIGRTMAX + 1) if _HOST_TO_GDB[host] in wanted)

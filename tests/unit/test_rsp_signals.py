"""Linux x86-64 <-> GDB signal numbering (include/gdb/signals.def, gdbsupport/signals.cc)."""

from __future__ import annotations

import signal

import pytest

from ptstub.rsp.signals import (
    GDB_SIGNAL_UNKNOWN,
    gdb_signal_set_to_host,
    gdb_to_host_signal,
    host_to_gdb_signal,
)

# (Linux name, GDB number) from signals.def; Linux numbers come from Python's own signal module.
GDB_NUMBERS = {
    "SIGHUP": 1,
    "SIGINT": 2,
    "SIGQUIT": 3,
    "SIGILL": 4,
    "SIGTRAP": 5,
    "SIGABRT": 6,
    "SIGFPE": 8,
    "SIGKILL": 9,
    "SIGBUS": 10,
    "SIGSEGV": 11,
    "SIGSYS": 12,
    "SIGPIPE": 13,
    "SIGALRM": 14,
    "SIGTERM": 15,
    "SIGURG": 16,
    "SIGSTOP": 17,
    "SIGTSTP": 18,
    "SIGCONT": 19,
    "SIGCHLD": 20,
    "SIGTTIN": 21,
    "SIGTTOU": 22,
    "SIGIO": 23,
    "SIGXCPU": 24,
    "SIGXFSZ": 25,
    "SIGVTALRM": 26,
    "SIGPROF": 27,
    "SIGWINCH": 28,
    "SIGUSR1": 30,
    "SIGUSR2": 31,
    "SIGPWR": 32,
}


@pytest.mark.parametrize(("name", "gdb"), sorted(GDB_NUMBERS.items()))
def test_classic_signals(name: str, gdb: int) -> None:
    host = int(getattr(signal, name))
    assert host_to_gdb_signal(host) == gdb
    assert gdb_to_host_signal(gdb) == host


def test_the_ones_that_differ_most_often() -> None:
    assert host_to_gdb_signal(7) == 10  # SIGBUS
    assert host_to_gdb_signal(10) == 30  # SIGUSR1
    assert host_to_gdb_signal(17) == 20  # SIGCHLD
    assert host_to_gdb_signal(0) == 0


def test_realtime_signals() -> None:
    assert host_to_gdb_signal(32) == 77  # GDB_SIGNAL_REALTIME_32 is out of sequence
    assert host_to_gdb_signal(33) == 45
    assert host_to_gdb_signal(int(signal.SIGRTMIN)) == 46  # glibc's SIGRTMIN is 34: REALTIME_34
    assert host_to_gdb_signal(63) == 75
    assert host_to_gdb_signal(64) == 78  # GDB_SIGNAL_REALTIME_64
    for host in range(32, 65):
        assert gdb_to_host_signal(host_to_gdb_signal(host)) == host


def test_signals_without_a_counterpart() -> None:
    assert host_to_gdb_signal(16) == GDB_SIGNAL_UNKNOWN  # SIGSTKFLT
    assert host_to_gdb_signal(65) == GDB_SIGNAL_UNKNOWN
    assert host_to_gdb_signal(-1) == GDB_SIGNAL_UNKNOWN
    for gdb in (7, 29, 34, 36, 37, 44, 76, 79, 141, 143, 151):  # EMT, LOST, WIND, ..., LIBRT
        assert gdb_to_host_signal(gdb) is None
    assert gdb_to_host_signal(33) == 29  # GDB_SIGNAL_POLL is SIGIO on Linux


def test_gdb_13_pass_signals_list() -> None:
    # QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97; as GDB 13.1 sends it.
    gdb = [0xE, 0x10, 0x14, 0x17, 0x1A, 0x1B, 0x1C, 0x21, 0x24, 0x25, 0x2C, 0x4C, 0x97]
    expected = {
        signal.SIGALRM,
        signal.SIGURG,
        signal.SIGCHLD,
        signal.SIGIO,
        signal.SIGVTALRM,
        signal.SIGPROF,
        signal.SIGWINCH,
    }
    assert gdb_signal_set_to_host(gdb) == frozenset(int(s) for s in expected)


def test_pass_list_without_gdb_signal_io_stops_sigio_even_with_poll_listed() -> None:
    # gdb.base/sigall.exp "get signal IO": after `handle SIGIO stop`, GDB still lists
    # GDB_SIGNAL_POLL (0x21), which is host 29 too; gdbserver tests gdb_signal_from_host(29) = IO.
    assert gdb_signal_set_to_host([0x21]) == frozenset()
    assert gdb_signal_set_to_host([0x17]) == frozenset({int(signal.SIGIO)})

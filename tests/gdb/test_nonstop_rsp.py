"""Non-stop at the packet level, against ptstub: the `%Stop`/`vStopped` exchange, `vCont;t`, `?`.

GDB's own testsuite found that a wildcard `vCont;c` sent while a stop notification is still queued
must not resume that thread (gdbserver: "not resuming LWP: has queued stop reply"); otherwise GDB
later sees two stops of a thread it never resumed (an internal error in non-stop-fair-events.exp).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator

import pytest

from ptstub.linux import symbols
from ptstub.rsp.framing import encode_packet, expand_runs
from tests.gdb.stubs import running_stub


class RawClient:
    """A minimal RSP client: acks on, replies (`$`) and notifications (`%`) kept apart."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = bytearray()
        self.replies: list[bytes] = []
        self.notes: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def _pump(self, want: list[bytes]) -> bytes:
        deadline = time.monotonic() + 20
        while not want:
            while self.buffer[:1] == b"+":  # acks between packets
                del self.buffer[:1]
            match = re.match(rb"([$%])([^#]*)#[0-9a-f]{2}", bytes(self.buffer))
            if match:
                del self.buffer[: match.end()]
                (self.replies if match.group(1) == b"$" else self.notes).append(expand_runs(match.group(2)))
                continue
            assert time.monotonic() < deadline, "no packet from ptstub"
            chunk = self.sock.recv(65536)
            assert chunk, "ptstub closed the connection"
            self.buffer += chunk
        return want.pop(0)

    def ask(self, body: bytes) -> bytes:
        self.sock.sendall(encode_packet(body, run_length=False))  # GDB never run-length encodes requests
        return self._pump(self.replies)

    def notification(self) -> bytes:
        return self._pump(self.notes)


def tid_of(reply: bytes) -> int:
    match = re.search(rb"thread:p[0-9a-f]+\.([0-9a-f]+);", reply)
    assert match, reply
    return int(match.group(1), 16)


def drain_stops(client: RawClient, first: bytes) -> list[bytes]:
    """`first` and every reply `vStopped` gives until `OK`."""
    stops = [first]
    while (reply := client.ask(b"vStopped")) != b"OK":
        stops.append(reply)
    return stops


def start_non_stop(client: RawClient, features: bytes = b"multiprocess+;swbreak+") -> bytes:
    """Negotiate `features`, switch to non-stop and return the one stop `?` reports (the leader's)."""
    assert b"QNonStop+" in client.ask(b"qSupported:" + features)
    assert client.ask(b"QNonStop:1") == b"OK"
    first = client.ask(b"?")
    assert drain_stops(client, first) == [first]
    return first


@pytest.mark.timeout(60)
def test_wildcard_resume_leaves_a_thread_with_a_queued_stop_alone(fixture_path) -> None:
    program = fixture_path("nonstop")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "--threads", "2", "--hits", "5"]) as server:
        client = RawClient(server.port)
        try:
            first = start_non_stop(client)
            assert first.startswith(b"T05"), first
            pid = tid_of(first)
            hit_me = symbols.resolve_symbol(pid, program, "hit_me")
            assert client.ask(b"Z0,%x,1" % hit_me) == b"OK"
            assert client.ask(b"vCont;c") == b"OK"
            note = client.notification()
            assert note.startswith(b"Stop:T05swbreak:"), note
            hitter = tid_of(note)
            assert client.ask(b"vCont;c") == b"OK"  # before vStopped: the hitter's stop is still queued
            assert client.ask(b"Hgp%x.%x" % (pid, hitter)) == b"OK"
            assert client.ask(b"p5") == b"00" * 8  # still stopped at hit_me(k=0): rdi is 0
            assert client.ask(b"vStopped") == b"OK"

            # vCont;t stops every running thread, each reported as signal 0; `?` then lists all four.
            assert client.ask(b"vCont;t") == b"OK"
            others = sorted(set(symbols_tids(pid)) - {hitter})
            stopped: list[bytes] = []
            while len(stopped) < len(others):  # one exchange per notification, as the stops come
                stopped += drain_stops(client, client.notification()[len(b"Stop:") :])
            assert sorted(tid_of(s) for s in stopped) == others
            assert all(s.startswith(b"T00") for s in stopped), stopped
            everything = drain_stops(client, client.ask(b"?"))
            assert sorted(tid_of(s) for s in everything) == sorted(symbols_tids(pid))
            assert any(s.startswith(b"T05swbreak:") and tid_of(s) == hitter for s in everything)
            assert client.ask(b"vCont;t") == b"OK"  # nothing runs: nothing will be reported
            assert client.ask(b"vKill;%x" % pid) == b"OK"
        finally:
            client.close()


def symbols_tids(pid: int) -> list[int]:
    import os

    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


@pytest.mark.timeout(60)
def test_vctrlc_stops_one_thread_with_sigint(fixture_path) -> None:
    """`vCtrlC` (non-stop's Ctrl-C): `OK`, then one thread's stop reported as SIGINT, as gdbserver's
    kill(SIGINT) gives; the other threads keep running."""
    program = fixture_path("nonstop")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "--threads", "2", "--hits", "1000000"]) as server:
        client = RawClient(server.port)
        try:
            first = start_non_stop(client)
            pid = tid_of(first)
            assert client.ask(b"vCont;c") == b"OK"
            assert client.ask(b"vCtrlC") == b"OK"
            note = client.notification()
            assert note.startswith(b"Stop:T02"), note
            assert tid_of(note) == pid  # the leader, as kill(SIGINT) would pick on the whole process
            assert client.ask(b"vStopped") == b"OK"
            assert client.ask(b"vKill;%x" % pid) == b"OK"
        finally:
            client.close()


@pytest.mark.timeout(60)
def test_wildcard_resume_leaves_a_fork_child_gdb_has_not_heard_of_alone(fixture_path) -> None:
    """A wildcard `vCont;c` sent while the parent's fork stop is still in the vStopped queue is not for
    the child: GDB does not know that process yet, and detaches it once it has read the fork
    (detach-on-fork). ptstub resumed it, it ran to its end, and GDB's `D;pid` failed with "Can't
    detach process" (gdb.threads/next-fork-other-thread.exp, non-stop; gdbserver skips such a child)."""
    from tests.gdb.stubs import process_state

    program = fixture_path("forker")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "1"]) as server:
        client = RawClient(server.port)
        try:
            first = start_non_stop(client, b"multiprocess+;swbreak+;fork-events+")
            assert first.startswith(b"T05"), first
            assert client.ask(b"vCont;c") == b"OK"
            note = client.notification()
            fork = re.search(rb"fork:p([0-9a-f]+)\.", note)
            assert note.startswith(b"Stop:T05") and fork, note
            child = int(fork.group(1), 16)
            assert client.ask(b"vCont;c") == b"OK"  # before vStopped: GDB has not read the fork yet
            assert process_state(child) in ("t", "T"), "the fork child was resumed"
            assert client.ask(b"vStopped") == b"OK"
            assert client.ask(b"D;%x" % child) == b"OK"
        finally:
            client.close()


@pytest.mark.timeout(120)
def test_forks_detached_in_non_stop_while_another_thread_hits_a_breakpoint(fixture_path) -> None:
    """Non-stop, detach-on-fork: each fork child is served beside the parent until GDB detaches it,
    while the parent's worker keeps hitting a breakpoint whose condition is false (a stream of stops
    nobody hears of). A status of the parent collected by the child's engine in that window left a
    flag set ("a peer has an event") once the parent was alone
    again, so every later wait returned at once with nothing and ptstub stopped reporting anything
    (gdb.threads/forking-threads-plus-breakpoint.exp, non-stop: a hang)."""
    program = fixture_path("forker")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "5"]) as server:
        client = RawClient(server.port)
        try:
            first = start_non_stop(client, b"multiprocess+;swbreak+;fork-events+")
            pid = tid_of(first)
            tick = symbols.resolve_symbol(pid, program, "tick")
            assert client.ask(b"Z0,%x,1;X3,220027" % tick) == b"OK"  # `if 0`, evaluated by the stub
            assert client.ask(b"vCont;c") == b"OK"
            forks = 0
            while True:
                stops = drain_stops(client, client.notification()[len(b"Stop:") :])
                if any(s.startswith((b"W", b"X")) for s in stops):
                    assert any(s.startswith(b"W0;") for s in stops), stops  # every child exited 0
                    break
                for stop in stops:
                    fork = re.search(rb"fork:p([0-9a-f]+)\.", stop)
                    if fork:  # as GDB with detach-on-fork: the breakpoint out of the child, then detach
                        child = int(fork.group(1), 16)
                        assert client.ask(b"Hgp%x.%x" % (child, child)) == b"OK"
                        assert client.ask(b"z0,%x,1" % tick) == b"OK"
                        assert client.ask(b"D;%x" % child) == b"OK"
                        forks += 1
                assert client.ask(b"vCont;c") == b"OK"  # also when the process just ended
            assert forks == 5
        finally:
            client.close()


def _stops_until(client: RawClient, prefix: bytes) -> list[bytes]:
    """Every stop reported (notification, then `vStopped`) up to and including one that starts with `prefix`."""
    stops: list[bytes] = []
    while not any(stop.startswith(prefix) for stop in stops):
        note = client.notification()
        assert note.startswith(b"Stop:"), note
        stops += drain_stops(client, note[len(b"Stop:") :])
    return stops


@contextlib.contextmanager
def _two_threads_then_a_fork(fixture_path) -> Iterator[tuple[RawClient, int, str]]:
    """fixtures/simple with two threads that end before main forks, in non-stop: (client, pid, program)."""
    program = fixture_path("simple")
    args = ["--once", "127.0.0.1:0", program, "--threads", "2", "--iterations", "1", "--fork"]
    with running_stub("ptstub", args) as server:
        client = RawClient(server.port)
        try:
            first = start_non_stop(client, b"multiprocess+;fork-events+;swbreak+")
            yield client, tid_of(first), program
        finally:
            client.close()


def _ended_threads(stops: list[bytes], pid: int) -> list[int]:
    ended = [re.fullmatch(rb"w0;p([0-9a-f]+)\.([0-9a-f]+)", stop) for stop in stops if stop.startswith(b"w")]
    assert all(ended) and all(int(m.group(1), 16) == pid for m in ended), stops
    return [int(m.group(2), 16) for m in ended]


@pytest.mark.timeout(60)
def test_thread_events_report_each_thread_that_ends(fixture_path) -> None:
    """QThreadEvents:1 (GDB's stop of every thread in non-stop mode): a thread other than the leader
    that ends is reported as `w0;p<pid>.<tid>`, as gdbserver does. Without it GDB waited for ever for
    the stop of a thread it had asked to stop and that ended first (forking-threads-plus-breakpoint)."""
    with _two_threads_then_a_fork(fixture_path) as (client, pid, _):
        assert b"QThreadEvents+" in client.ask(b"qSupported:multiprocess+;fork-events+;swbreak+")
        assert client.ask(b"QThreadEvents:1") == b"OK"
        assert client.ask(b"vCont;c") == b"OK"
        # main forks after joining both threads; an end can still be reported after the fork (the
        # kernel wakes the joiner before the tracer collects the thread's exit status)
        stops = _stops_until(client, b"T05fork:")
        while len(_ended_threads(stops, pid)) < 2:
            stops += _stops_until(client, b"w")
        ended = _ended_threads(stops, pid)
        assert len(set(ended)) == 2 and pid not in ended, stops


@pytest.mark.timeout(60)
def test_a_thread_asked_to_stop_after_it_ended_is_reported_ended(fixture_path) -> None:
    """GDB's thread list can name a thread that ended while thread events were off: when GDB then asks
    it to stop (`vCont;t`, thread events on), its end is the answer, or GDB waits for ever."""
    with _two_threads_then_a_fork(fixture_path) as (client, pid, program):
        ready = symbols.resolve_symbol(pid, program, "thread_ready")
        assert client.ask(b"Z0,%x,1" % ready) == b"OK"
        assert client.ask(b"vCont;c") == b"OK"
        hits: list[bytes] = []
        while len(hits) < 2:
            hits += [stop for stop in _stops_until(client, b"T05") if stop.startswith(b"T05")]
        extra = tid_of(hits[0])
        assert client.ask(b"z0,%x,1" % ready) == b"OK"
        assert client.ask(b"vCont;c") == b"OK"
        stops = _stops_until(client, b"T05fork:")  # both threads ended on the way: not reported
        assert _ended_threads(stops, pid) == [], stops
        assert client.ask(b"QThreadEvents:1") == b"OK"
        assert client.ask(b"vCont;t:p%x.%x" % (pid, extra)) == b"OK"
        assert client.notification() == b"Stop:w0;p%x.%x" % (pid, extra)
        assert client.ask(b"vStopped") == b"OK"

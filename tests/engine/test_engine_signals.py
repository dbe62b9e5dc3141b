"""Signals under all-stop, on fixtures/signals.

A signal is reported as `SignalReceived` with every thread stopped, then delivered on the next `cont()`
(or dropped with `pass_signal=False`); SIGSTOP and SIGCONT sent from outside (or a program that stops
itself) never wedge the engine: the program goes on to exit normally once it is continued.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from helpers import launched, time_limit, unstopped_threads

from ptstub.events import BreakpointHit, Exited, SignalReceived, StepDone

pytestmark = pytest.mark.usefixtures("no_leftover_children")


class SigcontSender(threading.Thread):
    """Sends SIGCONT to `pid` every 50 ms until stopped.

    SIGCONT only resumes a group-stop that exists when it is sent (signal(7)), and the test cannot see
    from outside when the program has entered its group-stop, so it keeps sending until the program
    shows (by its next breakpoint hit or its exit) that it was continued. Nothing waits on the timing.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            try:
                os.kill(self.pid, signal.SIGCONT)
            except ProcessLookupError:
                return

    def stop(self) -> None:
        self.done.set()
        self.join()


@time_limit(30)
@pytest.mark.parametrize("sender", ["main-thread", "other-thread"])
def test_signals_reported_then_delivered(fixture_path, tmp_path, sender: str) -> None:
    count = 5
    argv = [fixture_path("signals"), "--count", str(count)]
    if sender == "other-thread":
        argv += ["--from-thread", "--idle-threads", "2"]
    out_path = tmp_path / "signals.out"
    reported = []
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        pid = inf.pid
        for _ in range(count + 10):
            event = inf.cont()
            if not isinstance(event, SignalReceived):
                break
            assert (event.tid, event.signal) == (pid, signal.SIGUSR1), event  # only main unblocks SIGUSR1
            assert unstopped_threads(pid) == []
            reported.append(event)
        assert event == Exited(pid, 0), f"{event!r}; output: {out_path.read_text()}"
    assert len(reported) == count
    assert f"signals: usr1={count}\n" in out_path.read_text()


@time_limit(30)
def test_suppressed_signal_is_not_delivered(fixture_path, tmp_path) -> None:
    out_path = tmp_path / "signals.out"
    with open(out_path, "wb") as out, launched([fixture_path("signals"), "--count", "3"], stdout=out) as inf:
        seen = 0
        event = inf.cont()
        while isinstance(event, SignalReceived) and seen < 10:
            seen += 1
            event = inf.cont(pass_signal=seen != 2)  # drop the second SIGUSR1
        assert seen == 3, f"{seen} signals reported"
        assert event == Exited(inf.pid, 1), event  # the fixture counts 2 handled of 3 sent: status 1
    assert "signals: usr1=2\n" in out_path.read_text()


def continue_until_exit(inf, breakpoint: int, sender: SigcontSender, max_events: int = 500) -> tuple[object, int]:
    """cont() through SIGSTOP/SIGCONT reports until the process exits; stop `sender` at the first hit."""
    hits = 0
    for _ in range(max_events):
        event = inf.cont(timeout=10)
        if isinstance(event, SignalReceived):
            assert event.signal in (signal.SIGSTOP, signal.SIGCONT), event
            continue
        if isinstance(event, BreakpointHit) and event.pc == breakpoint:
            hits += 1
            sender.stop()
            continue
        return event, hits
    pytest.fail(f"still running after {max_events} stops")


@time_limit(30)
def test_sigstop_and_sigcont_from_outside(fixture_path, tmp_path) -> None:
    argv = [fixture_path("signals"), "--wait-cont", "--idle-threads", "2"]
    out_path = tmp_path / "signals.out"
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        pid = inf.pid
        hit_target = inf.symbol("hit_target")
        inf.insert_breakpoint(hit_target)
        assert inf.cont() == BreakpointHit(pid, hit_target)  # the program is ready and every thread stopped
        os.kill(pid, signal.SIGSTOP)
        event = inf.cont()
        assert isinstance(event, SignalReceived) and event.signal == signal.SIGSTOP, event
        assert unstopped_threads(pid) == []
        sender = SigcontSender(pid)
        sender.start()
        try:
            event, hits = continue_until_exit(inf, hit_target, sender)  # the SIGSTOP is delivered: group-stop
        finally:
            sender.stop()
        assert hits == 1, "the program did not go on after SIGCONT"
        assert event == Exited(pid, 0), event
    assert "signals: cont=" in out_path.read_text()


@time_limit(30)
def test_program_that_stops_itself(fixture_path, tmp_path) -> None:
    argv = [fixture_path("signals"), "--raise-stop", "--idle-threads", "2"]
    out_path = tmp_path / "signals.out"
    with open(out_path, "wb") as out, launched(argv, stdout=out) as inf:
        pid = inf.pid
        event = inf.cont()
        assert isinstance(event, SignalReceived) and (event.tid, event.signal) == (pid, signal.SIGSTOP), event
        sender = SigcontSender(pid)
        sender.start()
        try:
            event, _ = continue_until_exit(inf, -1, sender)
        finally:
            sender.stop()
        assert event == Exited(pid, 0), event
    assert out_path.read_text() == "ready\ncontinued\n"


@time_limit(30)
def test_passed_signal_is_reported_to_a_stepping_thread(fixture_path, tmp_path) -> None:
    """A passed signal (QPassSignals) goes to a running thread without a stop, but a thread GDB
    single-steps must stop with it: GDB then steps over the handler with a step-resume breakpoint.
    Passed silently, the step ends at the handler's first instruction (gdb.base/sigstep.exp,
    "stepi over handler"; gdbserver reports it when the thread's last resume was a step)."""
    argv = [fixture_path("signals"), "--wait-cont"]
    with open(tmp_path / "signals.out", "wb") as out, launched(argv, stdout=out) as inf:
        pid = inf.pid
        hit_target = inf.symbol("hit_target")
        inf.insert_breakpoint(hit_target)
        event = inf.cont()
        assert event == BreakpointHit(pid, hit_target), event
        inf.remove_breakpoint(hit_target)
        inf.set_pass_signals({signal.SIGUSR1})
        os.kill(pid, signal.SIGUSR1)  # pending for the stopped main thread (the only one)
        event = inf.step(pid)
        assert event == SignalReceived(pid, hit_target, signal.SIGUSR1), f"{event!r}: the step ran into the handler"
        event = inf.step(pid)  # delivered now (GDB resumes with it): into the handler
        assert isinstance(event, StepDone) and event.pc == inf.symbol("on_usr1"), event

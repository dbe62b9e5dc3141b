"""Engine bugs found by GDB's own testsuite (conformance/run), each kept fixed by a test.

- A single step that writes a watched variable was reported as a plain step: x86 reports the trap
  as TRAP_TRACE when DR6 has both BS and a B0-B3 bit, so the watchpoint was lost, both for GDB's own
  step over a breakpoint (vCont;s) and for ptstub's step over a breakpoint on a continue
  (gdb.threads/step-over-trips-on-watchpoint.exp).
- A thread resumed with a signal while sitting on a breakpoint it had hit was first stepped over the
  breakpoint without the signal, so `vCont;S` (GDB stepping into a handler) ran the instruction and
  lost the signal; the signal must go first, its handler returns onto the breakpoint
  (gdb.threads/multiple-step-overs.exp "displaced=on: signal thrN").
- A thread moved by GDB from the breakpoint it hit onto another breakpoint (`jump LINE` with a
  breakpoint on LINE) was stepped over the new one: the jump must stop there at once
  (gdb.base/foll-exec.exp "jump to execl call").
- Syscall entry and return were told apart by a per-thread toggle, which went wrong once a thread
  was stepped through a call while catching was off, or catching began inside a call (after a vfork
  event): entry was reported as return and the other way round (gdb.base/catch-syscall.exp
  "skipping return", "restarting inferior", "mid-vfork").
- A signal caught while attaching was reported only after the next resume, and a signal reported
  just before a detach was dropped by it (gdb.threads/attach-into-signal.exp).
- An interrupt was reported on the leader even when only another thread had been resumed
  (gdb.threads/schedlock.exp with scheduler-locking on), and also when the one resumed thread's step
  ended as the interrupt came (gdb.threads/detach-step-over.exp).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import time

import pytest

import ptstub
from ptstub.errors import StopTimeout, TargetError
from ptstub.events import BreakpointHit, Interrupted, SignalReceived, StepDone, SyscallStop, WatchpointHit
from ptstub.linux.ffi import lib
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind


def _store_to(inf: ptstub.Inferior, function: str, variable: str) -> int:
    """Address of the `mov %eax, variable(%rip)` (89 05 disp32) in `function` (fixtures are -O0)."""
    start, target = inf.symbol(function), inf.symbol(variable)
    code = inf.read_memory(start, 64)
    for i in range(len(code) - 6):
        if code[i : i + 2] == b"\x89\x05":
            (disp,) = struct.unpack_from("<i", code, i + 2)
            if start + i + 6 + disp == target:
                return start + i
    raise AssertionError(f"no store to {variable} in the first bytes of {function}: {code.hex()}")


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("how", ["step", "continue"])
def test_step_over_a_breakpoint_that_writes_a_watched_variable_reports_the_watchpoint(fixture_path, how: str) -> None:
    program = fixture_path("simple")
    with ptstub.launch([program, "--iterations", "2"]) as inf:
        store, watched = _store_to(inf, "touch_watch", "watch_me"), inf.symbol("watch_me")
        inf.insert_breakpoint(store)
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit) and hit.pc == store
        inf.insert_breakpoint(watched, BreakpointKind.WRITE_WATCH, 4)
        if how == "step":  # GDB's own step over: breakpoint lifted, vCont;s
            inf.remove_breakpoint(store)
            event = inf.step(hit.tid)
        else:  # ptstub steps the thread over its breakpoint, world held, then continues
            event = inf.cont()
        assert isinstance(event, WatchpointHit), f"{how}: the write to watch_me was not reported: {event}"
        assert event.address == watched and event.pc == store + 6
        assert inf.read_memory(watched, 4) == struct.pack("<i", 3)


@pytest.mark.timeout(60, method="thread")
def test_step_with_a_signal_from_a_breakpoint_enters_the_handler_first(fixture_path) -> None:
    program = fixture_path("signals")
    with ptstub.launch([program, "--wait-cont"]) as inf:
        target, handler = inf.symbol("hit_target"), inf.symbol("on_usr1")  # SIGUSR1 unblocked in main
        inf.insert_breakpoint(target)
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit) and hit.pc == target
        inf.resume({hit.tid: ResumeAction(ResumeKind.STEP, signal.SIGUSR1)})
        event = inf.wait(10)
        assert isinstance(event, StepDone) and event.pc == handler, f"the step did not enter the handler: {event}"
        again = inf.cont()  # the handler returns onto the breakpoint, which was never executed
        assert isinstance(again, BreakpointHit) and again.pc == target and again.tid == hit.tid


@pytest.mark.timeout(60, method="thread")
def test_pc_moved_onto_another_breakpoint_hits_it_at_once(fixture_path) -> None:
    program = fixture_path("simple")
    with ptstub.launch([program, "--iterations", "2"]) as inf:
        work, add1 = inf.symbol("work"), inf.symbol("add1")
        inf.insert_breakpoint(work)
        inf.insert_breakpoint(add1)  # never called by the program itself
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit) and hit.pc == work
        inf.set_regs(hit.tid, {"rip": add1})  # GDB's `jump *add1`
        event = inf.cont()
        assert isinstance(event, BreakpointHit) and event.pc == add1, f"the jump ran past add1: {event}"
        inf.set_regs(hit.tid, {"rip": work})  # and back onto the first one: it hits again too
        event = inf.cont()
        assert isinstance(event, BreakpointHit) and event.pc == work, f"the jump ran past work: {event}"


@pytest.mark.timeout(60, method="thread")
def test_syscall_entry_after_stepping_through_a_call_uncaught_is_an_entry(fixture_path) -> None:
    program = fixture_path("simple")
    with ptstub.launch([program, "--iterations", "1"]) as inf:  # its syscalls: write, write, exit_group
        inf.insert_breakpoint(inf.symbol("work"))
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit)
        inf.remove_breakpoint(hit.pc)
        inf.set_options(catch_syscalls=True)
        entry = inf.cont()
        assert isinstance(entry, SyscallStop) and not entry.returned, entry
        inf.set_options(catch_syscalls=False)
        stepped = inf.step(entry.tid)  # through the rest of the call: its return stop is never seen
        assert isinstance(stepped, StepDone)
        inf.set_options(catch_syscalls=True)
        event = inf.cont()
        assert isinstance(event, SyscallStop) and not event.returned, f"an entry reported as a return: {event}"
        following = inf.cont()
        assert isinstance(following, SyscallStop) and following.returned and following.number == event.number


@pytest.mark.timeout(60, method="thread")
def test_signal_reported_before_a_detach_goes_with_it(fixture_path, tmp_path) -> None:
    """The signal of the last stop, not yet delivered, is handed to the program by the detach."""
    out = tmp_path / "signals.out"
    with open(out, "wb") as stdout:
        inf = ptstub.launch([fixture_path("signals"), "--count", "1"], stdout=stdout)
        pid = inf.pid
        try:
            event = inf.cont()
            assert isinstance(event, SignalReceived) and event.signal == signal.SIGUSR1, event
            inf.detach()
        finally:
            inf.close()
    _, status = os.waitpid(pid, 0)  # still our child after the detach
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"SIGUSR1 lost at detach: {out.read_text()}"
    assert "signals: usr1=1" in out.read_text()


@pytest.mark.timeout(120, method="thread")
@pytest.mark.parametrize("threaded", [False, True])
def test_signal_caught_by_an_attach_is_reported_and_survives_the_detach(fixture_path, threaded: bool) -> None:
    """A signal-delivery-stop seen while attaching is reported at once (gdbserver reports it in place
    of the attach stop) and the detach hands it back: the storm program aborts if one is lost.
    Whether an attach lands on a signal in flight is a race; the loop runs until it has, or skips."""
    argv = [fixture_path("signal_storm")] + (["--thread"] if threaded else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        caught, deadline = 0, time.monotonic() + 30
        while caught < 3 and time.monotonic() < deadline:
            inf = ptstub.attach(proc.pid)
            try:
                event = inf.take_pending_signal()
                if event is not None:
                    assert isinstance(event, SignalReceived) and event.signal == signal.SIGALRM, event
                    caught += 1
                inf.detach()
            finally:
                inf.close()
            assert _alive(proc.pid), "a SIGALRM was lost across attach/detach: the program aborted"
        if not caught:
            pytest.skip("no attach landed on a signal in flight within 30 s")
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.timeout(60, method="thread")
def test_interrupt_is_reported_on_a_thread_that_was_resumed(fixture_path) -> None:
    """gdb.threads/schedlock.exp "stop all threads (with lock)": with only one thread resumed
    (scheduler-locking), Ctrl-C was reported on the leader, which GDB then made current."""
    with ptstub.launch([fixture_path("spin"), "--threads", "2", "--busy", "1"]) as inf:
        target = inf.symbol("hit_target")
        inf.insert_breakpoint(target)
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit) and hit.tid != inf.pid
        inf.remove_breakpoint(target)
        inf.resume({hit.tid: ResumeAction(ResumeKind.CONTINUE)})
        event = inf.stop()
        assert isinstance(event, Interrupted) and event.tid == hit.tid, event


def test_interrupt_racing_the_only_resumed_threads_step_reports_the_step(fixture_path) -> None:
    """gdb.threads/detach-step-over.exp: GDB steps one thread over a breakpoint, everything else held,
    and a Ctrl-C comes at the same moment. The step ends before the stop request is seen; the
    interrupt was then reported on the leader, a thread GDB held, and GDB's step-over asserted
    (finish_step_over: trap_expected). The step is what is reported."""
    with ptstub.launch([fixture_path("spin"), "--threads", "2", "--busy", "1"]) as inf:
        target = inf.symbol("hit_target")
        inf.insert_breakpoint(target)
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit) and hit.tid != inf.pid
        inf.remove_breakpoint(target)  # a plain step: it ends while the wait looks at the request
        for _ in range(20):
            inf.resume({hit.tid: ResumeAction(ResumeKind.STEP)})
            inf.interrupt()  # before the wait: the step has ended by the time the request is taken
            event = inf.wait(10.0)
            assert event is not None and event.tid == hit.tid, f"{event!r}: reported on a thread GDB held"


@pytest.mark.timeout(120, method="thread")
def test_a_held_thread_pending_hit_is_not_reported_when_another_thread_runs(fixture_path) -> None:
    """gdb.threads/schedlock.exp "other threads didn't run - locked": a hit kept pending on a
    thread GDB did not resume was reported when the resumed one stopped; GDB then stepped and ran
    the held thread. Only resumed threads report, as in gdbserver."""
    with ptstub.launch([fixture_path("spin"), "--threads", "3", "--busy", "2"]) as inf:
        target = inf.symbol("hit_target")
        inf.insert_breakpoint(target)
        rounds = 0
        for _ in range(3000):
            hit = inf.cont()
            assert isinstance(hit, BreakpointHit)
            e = inf._e
            held = [
                e.threads[i].tid
                for i in range(e.nthreads)
                if e.threads[i].tid != hit.tid and e.threads[i].ev_kind == lib.PT_EV_BREAKPOINT
            ]
            if not held:
                continue
            inf.resume({hit.tid: ResumeAction(ResumeKind.CONTINUE)})  # scheduler-locking: only this one
            event = inf.wait(10)
            assert isinstance(event, BreakpointHit) and event.tid == hit.tid, f"held thread reported: {event}"
            rounds += 1
            if rounds == 10:
                break
        assert rounds, "no stop ever left a hit pending on another thread"


@pytest.mark.timeout(60, method="thread")
def test_thread_names_are_read_again_after_the_program_ran(fixture_path) -> None:
    """gdb.threads/names.exp: names were re-read at most once a second, so a name set right after
    the start showed the old one."""
    with ptstub.launch([fixture_path("simple"), "--name", "renamed", "--iterations", "1"]) as inf:
        assert [t.name for t in inf.threads()] == ["simple"]
        inf.insert_breakpoint(inf.symbol("work"))
        assert isinstance(inf.cont(), BreakpointHit)
        assert [t.name for t in inf.threads()] == ["renamed"]


@pytest.mark.timeout(60, method="thread")
def test_thread_info_is_kept_only_while_name_and_state_are_unchanged(fixture_path) -> None:
    """`threads()` hands out the same ThreadInfo while nothing changed (GDB lists the threads at every
    stop) and a new one once the thread renamed itself."""
    with ptstub.launch([fixture_path("simple"), "--name", "renamed", "--iterations", "1"]) as inf:
        first = inf.threads()
        assert inf.threads()[0] is first[0]
        inf.insert_breakpoint(inf.symbol("work"))
        assert isinstance(inf.cont(), BreakpointHit)
        renamed = inf.threads()
        assert renamed[0] is not first[0] and (renamed[0].tid, renamed[0].name) == (first[0].tid, "renamed")


@pytest.mark.timeout(60, method="thread")
def test_a_leader_that_called_pthread_exit_is_not_listed(fixture_path) -> None:
    """gdb.threads/non-ldr-exc-2.exp "single thread left": the zombie leader stayed in the thread
    list, and GDB could not read its registers (E03)."""
    with ptstub.launch([fixture_path("leader_exit"), "--threads", "2", "--calls", "1"]) as inf:
        inf.insert_breakpoint(inf.symbol("hit_target"))  # called only once the leader is a zombie
        hit = inf.cont()
        assert isinstance(hit, BreakpointHit)
        tids = [t.tid for t in inf.threads()]
        assert inf.pid not in tids and hit.tid in tids and len(tids) == 2, tids


@pytest.mark.timeout(60, method="thread")
def test_library_list_of_a_program_started_through_the_dynamic_linker_is_an_error(fixture_path) -> None:
    """gdb.server/solib-list.exp: `ld.so PROG` makes /proc/PID/exe ld.so, which has no DT_DEBUG;
    gdbserver answers E01 so that GDB finds r_debug itself, where ptstub answered an empty list."""
    argv = ["/lib64/ld-linux-x86-64.so.2", fixture_path("spin"), "--threads", "1"]
    with ptstub.launch(argv, stdout=subprocess.DEVNULL) as inf:
        with pytest.raises(StopTimeout):
            inf.cont(timeout=1.0)  # spin never stops by itself: after 1 s the world is stopped
        with pytest.raises(TargetError, match="DT_DEBUG"):
            inf.loaded_libraries()
    with ptstub.launch([fixture_path("simple")]) as inf:  # the usual case: DT_DEBUG, still 0 here
        assert inf.loaded_libraries() == (0, [])


@pytest.mark.timeout(60, method="thread")
def test_pending_watchpoint_hit_names_its_watchpoint_after_the_debug_registers_move(fixture_path) -> None:
    """gdb.threads/watchthreads-reorder.exp (and watchthreads.exp, intermittently): a watchpoint hit left
    pending in one thread while another's was reported named the debug register, and GDB re-inserting
    its watchpoints in another order moved a different watchpoint into that register before the pending
    hit was reported. Here four threads write `sink` and every stop swaps the slots of the two
    watchpoints; `kinds` is never written, so a hit reported on it is a misnamed one."""
    program = fixture_path("stress")
    with (
        open(os.devnull, "wb") as devnull,
        ptstub.launch([program, "--threads", "4", "--calls", "400", "--syscall", "none"], stdout=devnull) as inf,
    ):
        main = inf.symbol("main")  # past the loader's relocations, which write `kinds`
        inf.insert_breakpoint(main)
        assert isinstance(inf.cont(), BreakpointHit)
        inf.remove_breakpoint(main)
        sink, never_written = inf.symbol("sink"), inf.symbol("kinds")
        watch = BreakpointKind.WRITE_WATCH
        inf.insert_breakpoint(sink, watch, 4)
        inf.insert_breakpoint(never_written, watch, 8)
        for stop in range(300):
            event = inf.cont(timeout=30)
            if not isinstance(event, WatchpointHit):
                break
            assert event.address == sink, f"stop {stop}: a write to sink was reported at {event.address:#x}"
            inf.remove_breakpoint(sink, watch, 4)
            inf.remove_breakpoint(never_written, watch, 8)
            first, second = ((sink, 4), (never_written, 8)) if stop % 2 else ((never_written, 8), (sink, 4))
            inf.insert_breakpoint(first[0], watch, first[1])
            inf.insert_breakpoint(second[0], watch, second[1])
        else:
            return
        pytest.fail(f"stop {stop}: expected a watchpoint hit, got {event}")


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize("watching", [False, True], ids=["emulated", "stepped"])
def test_breakpoints_on_pushes_and_endbr64_keep_the_program_exact(fixture_path, watching: bool) -> None:
    """The engine carries out a push, endbr64 or nop under a breakpoint itself instead of stepping the
    thread over it (docs/design-notes.md, "Passing a breakpoint without a step"). `push_probe`
    checks in the program that every push stored the right register; with a watchpoint set the engine
    steps instead, and the program must see the same."""
    program = fixture_path("push_probe")
    calls = 40
    with open(os.devnull, "wb") as devnull, ptstub.launch([program, str(calls)], stdout=devnull) as inf:
        body = inf.symbol("probe_body")
        addresses = [body + offset for offset in (0, 4, 6, 7, 8)]  # endbr64, push r12, push rbx, nop, push rbp
        for address in addresses:
            inf.insert_breakpoint(address)
        if watching:
            inf.insert_breakpoint(inf.symbol("probe"), BreakpointKind.WRITE_WATCH, 4)  # code: never written
        seen = []
        while True:
            event = inf.cont(timeout=30)
            if not isinstance(event, BreakpointHit):
                break
            seen.append(event.pc)
        assert seen == addresses * calls
        assert getattr(event, "code", None) == 0, f"the program saw a wrong push: {event}"
        emulated = inf.stats["emulated_step_overs"]
        assert emulated == (0 if watching else len(seen)), inf.stats

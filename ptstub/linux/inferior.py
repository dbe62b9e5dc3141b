"""`Inferior`: one traced process under the all-stop engine (the Linux backend of `Target`).

Python keeps policy: which threads run, breakpoint reference counts, hardware slots, which signal a
resume delivers, turning the C engine's pending-event records into typed `StopEvent`s. The C helper
(`csrc/ptcore_*.c`) keeps the mechanism. Helpers by job: `thread_list` (names and handles for GDB's
thread list), `breakpoints` (reference counts, debug registers), `registers`, `solibs`; `start`
makes an Inferior (`launch`, `attach`). Invariant: between two calls every thread is stopped
(`world_stopped`) unless `resume()` was called and `wait()` has not yet reported.

All calls must come from the thread that created the Inferior (ptrace(2): requests are accepted only
from the tracer thread), except `interrupt()`, which any thread may call.
"""

from __future__ import annotations

import errno as errno_mod
import os
import signal as signal_mod
from collections.abc import Callable, Collection, Mapping

from ptstub import logs
from ptstub.errors import ProcessGoneError, StopTimeout, TargetError
from ptstub.events import (
    BreakpointHit,
    Exec,
    Exited,
    Forked,
    Interrupted,
    Killed,
    SignalReceived,
    StepDone,
    StopEvent,
    SyscallStop,
    ThreadExited,
    VforkDone,
)
from ptstub.linux import measure, ptrace_log, realtime, registers, solibs, symbols
from ptstub.linux.breakpoints import BreakpointTable
from ptstub.linux.engine import new_engine
from ptstub.linux.ffi import check, check_memory, check_resumed, check_thread, check_waited, ffi, lib
from ptstub.linux.thread_list import ThreadList
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind, ThreadInfo

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

log = logs.logger("ptstub.events")

ACT_NONE, ACT_CONT, ACT_STEP, ACT_RANGE = lib.PT_ACT_NONE, lib.PT_ACT_CONT, lib.PT_ACT_STEP, lib.PT_ACT_RANGE
set_action = lib.pt_set_action  # once per thread per resume: a module global, not a `lib` lookup
WAIT_FOREVER = -1
_PASS_MASKS: dict[frozenset[int], int] = {}  # QPassSignals lists seen -> the engine's signal mask


def _ms(timeout: float | None) -> int:
    return WAIT_FOREVER if timeout is None else max(0, int(timeout * 1000))


class Inferior:
    """A traced process, stopped between calls; use `launch()` or `attach()` to get one."""

    def __init__(self, engine: Any, pid: int, launched: bool, executable: str) -> None:
        self._e = engine
        self.pid = pid
        self.launched = launched
        self._executable = executable
        self._breakpoints = BreakpointTable()
        self._held_signals: dict[int, int] = {}  # tid -> signal reported and not yet delivered
        self._ready = False  # pt_resume found an event to report without running anything
        self._last_tid = pid
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        self._closed = False
        self._thread_list = ThreadList(pid)  # names and handles (docs/design-notes.md, "Thread names")
        self.world_resumes = 0  # resumes of every thread so far (see ThreadListDocument)
        self._listed = 0  # live threads at the last threads()
        self._resumes = 0  # resumes so far: a cached thread name is good until the next one
        self._prepared: tuple[Any, ...] | None = None  # the last all-threads resume as C arrays (_prepared_actions)
        self._logs_ptrace = engine.ptrace_log != ffi.NULL  # the `ptstub.ptrace` channel was on at its making
        # SCHED_FIFO for resumes of many threads where allowed (ptstub/linux/realtime.py); settable
        self.realtime: realtime.RealtimePolicy = realtime.policy()
        self._resumed_ns = 0  # pt_now_ns() when the last resume batch had resumed every thread due
        self._planned = -1  # threads the last plan_resume() starts (-1: all): the real-time window counts them

    # -------------------------------------------------------------------------------- life cycle
    def __enter__(self) -> Inferior:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill a launched process, detach from an attached one; idempotent."""
        if self._closed:
            return
        try:
            if self.alive:
                if self.launched:
                    self.kill()
                else:
                    self.detach()
        finally:
            self._closed = True
            self._thread_list.clear()
            self._log_ptrace()
            lib.pt_engine_free(self._e)
            self._e = ffi.NULL

    @property
    def alive(self) -> bool:
        return not self._closed and not self._e.exited

    def _require_alive(self) -> None:
        if self._closed or self._e.exited:
            raise ProcessGoneError()

    def _log_ptrace(self) -> None:
        """Log the ptrace calls made since the last time (they come before the event they led to)."""
        if self._logs_ptrace:
            ptrace_log.flush(self._e)

    # -------------------------------------------------------------------------------- threads
    def threads(self) -> list[ThreadInfo]:
        """Live threads in creation order (threads past their exit are left out)."""
        self._require_alive()
        result = self._thread_list.threads(self._e, self._resumes, self._last_tid)
        self._listed = len(result)
        return result

    def refresh_names(self) -> None:
        """Read every thread's name again at the next `threads()` (GDB's second thread-list request in
        one stop: a user's `info threads`; a rename while the program was stopped shows there)."""
        self._thread_list.refresh_names()

    def thread_ids(self) -> list[int]:
        e = self._e
        return [e.threads[i].tid for i in range(e.nthreads) if e.threads[i].state in (lib.PT_STOPPED, lib.PT_RUNNING)]

    def _thread(self, tid: int) -> Any:
        index = lib.pt_find_thread(self._e, tid)
        if index < 0:
            check_thread(-errno_mod.ESRCH, "find", tid)
        return self._e.threads[index]

    def has_thread(self, tid: int) -> bool:
        return not self._closed and lib.pt_find_thread(self._e, tid) >= 0

    def thread_ended(self, tid: int) -> bool:
        """`tid` is not a thread of this process, or it ended and nothing about it is left to report."""
        index = lib.pt_find_thread(self._e, tid) if not self._closed else -1
        return index < 0 or self._e.threads[index].state == lib.PT_GONE

    # -------------------------------------------------------------------------------- symbols
    def executable(self) -> str:
        try:
            return os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return self._executable

    def symbol(self, name: str) -> int:
        """Runtime address of a function or global of the main executable (PIE relocated)."""
        self._require_alive()
        return symbols.resolve_symbol(self.pid, self.executable(), name)

    # -------------------------------------------------------------------------------- breakpoints
    def insert_breakpoint(self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1) -> None:
        """Insert a breakpoint (reference counted) or a hardware breakpoint / watchpoint."""
        self._require_alive()
        self._breakpoints.insert(self._e, address, kind, length)

    def reinsert_breakpoint(self, address: int) -> None:
        """Write the int3 of an inserted breakpoint again (no new reference)."""
        self._breakpoints.reinsert(self._e, address)

    def remove_breakpoint(self, address: int, kind: BreakpointKind = BreakpointKind.SOFTWARE, length: int = 1) -> None:
        self._require_alive()
        self._breakpoints.remove(self._e, address, kind, length)

    # -------------------------------------------------------------------------------- run control
    def resume(self, actions: Mapping[int, ResumeAction] | None = None, default: ResumeAction | None = None) -> None:
        """Start threads: those in `actions` as given, every other one with `default` (or not at all)."""
        self.plan_resume(actions, default)
        self._after_resume(self._resume_batch(self._planned))

    def plan_resume(self, actions: Mapping[int, ResumeAction] | None, default: ResumeAction | None = None) -> None:
        """Set each thread's action for the next resume (`resume`, or the group's over several processes)."""
        self._require_alive()
        e = self._e
        actions = actions or {}
        threads, set_action = e.threads, self._set_action
        prepared = self._prepared_actions(actions) if default is None else None
        if prepared is not None:
            # The plan GDB's last vCont gave (the session hands over the same actions at every stop of
            # a breakpoint loop): every thread's action in one C call.
            lib.pt_set_thread_actions(e, *prepared[1:])
            if self._held_signals:
                for tid in actions:
                    self._held_signals.pop(tid, None)
        elif default is None and 2 * len(actions) < e.nthreads:
            # A few named threads (GDB's vCont;s of one thread): every action cleared in one C call,
            # then only the named threads' records touched.
            lib.pt_set_actions(e, ACT_NONE)
            for tid, action in actions.items():
                index = lib.pt_find_thread(e, tid)
                if index >= 0:
                    set_action(threads[index], tid, action)
        else:
            for i in range(e.nthreads):
                t = threads[i]
                tid = t.tid
                set_action(t, tid, actions.get(tid, default))
        self._resumes += 1
        if default is not None or len(actions) >= self._listed:
            self.world_resumes += 1
        self._planned = e.nthreads if default is not None else len(actions)

    def _resume_batch(self, resumed: int = -1) -> int:
        """pt_resume, at SCHED_FIFO for the length of the call when the policy says so: busy threads
        woken by the first PTRACE_CONTs then cannot preempt the tracer before the rest are resumed.
        `resumed`: how many threads it starts (-1: all), not how many there are (GDB's step of one
        thread over a breakpoint, at every hit of a breakpoint loop, needs no window)."""
        raised = self.realtime.wanted(self._e.nthreads if resumed < 0 else resumed) and realtime.enter()
        try:
            rc = lib.pt_resume(self._e)
            self._resumed_ns = lib.pt_now_ns()  # before leave(): the threads it woke may run first then
            return rc
        finally:
            if raised:
                realtime.leave()

    def _prepared_actions(self, actions: Mapping[int, ResumeAction]) -> tuple[Any, ...] | None:
        """`actions` as the C arrays of `pt_set_thread_actions` (tids, actions, signals, count), kept for
        the next resume with equal actions; None for a few named threads (cheaper one by one) or a
        range step (its range is not in the arrays)."""
        cached = self._prepared
        if cached is not None and cached[0] == actions:  # same ResumeAction objects: compared by identity
            return cached
        if 2 * len(actions) < self._e.nthreads:
            return None
        tids, kinds, sigs = [], [], []
        for tid, action in actions.items():
            kind = action.kind
            if kind is ResumeKind.CONTINUE:
                kinds.append(ACT_CONT)
            elif kind is ResumeKind.STEP:
                kinds.append(ACT_STEP)
            else:
                return None
            tids.append(tid)
            sigs.append(action.signal)
        n = len(tids)
        cached = (
            dict(actions),  # a copy: a caller may change its mapping after the resume
            ffi.new("int32_t[]", tids),
            ffi.new("int32_t[]", kinds),
            ffi.new("int32_t[]", sigs),
            n,
        )
        self._prepared = cached
        return cached

    def _after_resume(self, rc: int) -> None:
        self._ready = check_resumed(rc) == 1

    def wait(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        """Block until a stop is reported with every thread stopped; None on timeout or `wake_fd` readable."""
        if self._ready:
            self._ready = False
            return self._take_event()
        rc = check_waited(lib.pt_wait(self._e, _ms(timeout), -1 if wake_fd is None else wake_fd))
        if rc == 1:
            return self._take_event()
        self._log_ptrace()
        return None

    def cont(self, timeout: float | None = 10.0, pass_signal: bool = True) -> StopEvent:
        """Resume every thread; return the next event (all threads stopped). Raise StopTimeout if none."""
        self._require_alive()
        if self._held_signals:
            for tid, sig in self._held_signals.items():
                if pass_signal:
                    lib.pt_set_action_signal(self._e, tid, sig)  # -ESRCH: the thread is gone, so is its signal
            self._held_signals.clear()
        self._resumes += 1
        self.world_resumes += 1
        rc = lib.pt_cont(self._e, _ms(timeout), -1)
        if rc == 1:
            return self._take_event()
        if rc == 0:
            self._timeout()
        self._after_resume(0 if rc == -errno_mod.ECHILD else rc)
        if self._ready:
            self._ready = False
            return self._take_event()
        raise TargetError("nothing left to run", errno_mod.ECHILD)

    def step(self, tid: int, timeout: float | None = 10.0, pass_signal: bool = True) -> StopEvent:
        """Single-step `tid` only; every other thread stays stopped."""
        self._require_alive()
        self._thread(tid)
        sig = self._held_signals.pop(tid, 0) if pass_signal else 0
        self.resume({tid: ResumeAction(ResumeKind.STEP, sig)})
        event = self.wait(timeout)
        if event is None:
            self._timeout()
        assert event is not None
        return event

    def _timeout(self) -> None:
        lib.pt_request_stop(self._e)
        event = self.wait(5.0)
        if event is not None and not isinstance(event, Interrupted):
            raise StopTimeout(f"no stop within the timeout; then {event} (world stopped)")
        raise StopTimeout("nothing was reported within the timeout (every thread is now stopped)")

    def interrupt(self) -> None:
        """Stop the world; a running `cont()`/`wait()` returns `Interrupted`. Safe from any thread."""
        if not self._closed:
            lib.pt_request_stop(self._e)

    def cancel_interrupt(self) -> None:
        """Withdraw an `interrupt()` no wait has acted on (another event was reported first)."""
        if not self._closed:
            lib.pt_cancel_stop(self._e)

    def stop(self) -> StopEvent:
        """Stop every running thread now (after `resume()`), and return what is reported."""
        self.interrupt()
        event = self.wait(10.0)
        if event is None:
            raise StopTimeout("the process did not stop")
        return event

    def take_pending_signal(self) -> StopEvent | None:
        """A signal stop collected while attaching, reported now rather than after the next resume.

        gdbserver reports a signal that arrives with the attach in place of the attach's SIGSTOP,
        and GDB then says the program received it (gdb.threads/attach-into-signal.exp).
        """
        e = self._e
        for i in range(e.nthreads):
            t = e.threads[i]
            if t.ev_kind == lib.PT_EV_SIGNAL and t.state == lib.PT_STOPPED:
                check(lib.pt_select_report(e, t.tid), "report")
                return self._take_event()
        return None

    # -------------------------------------------------------------------------------- non-stop
    def _set_action(self, t: Any, tid: int, action: ResumeAction | None) -> None:
        """Write one thread's resume action into its C record (None: it stays stopped).

        Runs for every thread at every resume: kinds are compared by identity (an `Enum` used as a
        dict key hashes in Python) and the C constants are module globals, not `lib` lookups."""
        if action is None:
            set_action(t, ACT_NONE, 0, 0, 0)
            return
        kind = action.kind
        if kind is ResumeKind.CONTINUE:
            rc = set_action(t, ACT_CONT, action.signal, 0, 0)
        elif kind is ResumeKind.STEP:
            rc = set_action(t, ACT_STEP, action.signal, 0, 0)
        else:
            rc = set_action(t, ACT_RANGE, action.signal, action.range_start, action.range_end)
        if rc < 0:
            raise TargetError(f"invalid resume action {action} for thread {tid}", -rc)
        if self._held_signals:
            self._held_signals.pop(tid, None)

    def resume_threads(self, actions: Mapping[int, ResumeAction]) -> None:
        """Non-stop: start the stopped threads named in `actions`; every other thread keeps its state.

        Running threads are left alone (their action is the one they run with), except that naming one
        cancels a stop asked of it that has not happened yet (as gdbserver does: its interrupt stop is
        then swallowed); a stopped thread not named stays stopped.
        """
        self._require_alive()
        e = self._e
        for i in range(e.nthreads):
            t = e.threads[i]
            if t.state != lib.PT_STOPPED:
                if t.tid in actions:
                    lib.pt_withdraw_thread_stop(e, t.tid)
                continue
            self._set_action(t, t.tid, actions.get(t.tid))
        self._ready = False
        check(lib.pt_resume_some(e), "resume")

    def wait_event(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        """Non-stop: the next event of one thread, the others left running or stopped as they are.

        None on timeout, when `wake_fd` is readable, or when no thread runs and nothing is pending.
        """
        self._require_alive()
        rc = lib.pt_wait_one(self._e, _ms(timeout), -1 if wake_fd is None else wake_fd)
        if rc == 1:
            return self._take_event()
        if rc != -errno_mod.ECHILD:  # -ECHILD: nothing runs and nothing is pending
            check(rc, "wait")
        self._log_ptrace()
        return None

    def stop_thread(self, tid: int) -> bool:
        """Non-stop: ask a running thread to stop (reported as `Interrupted` by `wait_event`).

        False when it was not running: nothing will be reported for it.
        """
        self._require_alive()
        rc = lib.pt_stop_thread(self._e, tid)
        if rc == -errno_mod.ESRCH:
            check_thread(rc, "stop", tid)
        return rc == 1

    def is_running(self, tid: int) -> bool:
        """Whether `tid` is running (non-stop: threads run and stop one by one)."""
        index = lib.pt_find_thread(self._e, tid) if not self._closed else -1
        return index >= 0 and self._e.threads[index].state == lib.PT_RUNNING

    def any_running(self) -> bool:
        return not self._closed and self._e.nrunning > 0

    def set_pass_signals(self, signals: Collection[int]) -> None:
        """Signals delivered to the program without a stop (GDB's QPassSignals)."""
        mask = _PASS_MASKS.get(signals) if isinstance(signals, frozenset) else None
        if mask is None:
            mask = 0
            for sig in signals:
                if 0 < sig <= 64:
                    mask |= 1 << (sig - 1)
            if isinstance(signals, frozenset) and len(_PASS_MASKS) < 64:
                # GDB sends the same two lists at every stop of a breakpoint loop (empty while it steps
                # over a breakpoint, its pass list after): one lookup instead of a loop over the list.
                _PASS_MASKS[signals] = mask
        lib.pt_set_pass_signals(self._e, mask)

    def set_options(
        self,
        *,
        fork_events: bool | None = None,
        eintr_fixup: bool | None = None,
        catch_syscalls: bool | None = None,
        thread_exits: bool | None = None,
    ) -> None:
        """Change engine options; those left as None keep their value. `thread_exits`: report the end of
        each thread but the leader as `ThreadExited` (GDB's QThreadEvents)."""
        options = self._e.options
        for wanted, bit in (
            (fork_events, lib.PT_OPT_FORK_EVENTS),
            (eintr_fixup, lib.PT_OPT_EINTR_FIXUP),
            (catch_syscalls, lib.PT_OPT_CATCH_SYSCALLS),
            (thread_exits, lib.PT_OPT_THREAD_EXITS),
        ):
            if wanted is not None:
                options = options | bit if wanted else options & ~bit
        lib.pt_set_options(self._e, options)

    def adopt_fork_child(self, child_pid: int) -> Inferior:
        """The stopped, traced child of a reported fork, as an Inferior of its own.

        It carries a copy of the parent's breakpoints (its memory holds the same int3 bytes), so that
        removing them from the child restores the child's own bytes, as GDB does before detaching it.
        """
        engine = new_engine(child_pid, None)
        check(lib.pt_adopt_child(engine, self._e), "adopt fork child")
        child = Inferior(engine, child_pid, self.launched, self._executable)
        child._breakpoints = self._breakpoints.inherited()
        return child

    # -------------------------------------------------------------------------------- several processes
    @property
    def ready(self) -> bool:
        """The last `resume()` found an event to report and ran nothing."""
        return self._ready

    @property
    def ended(self) -> bool:
        """The process ended and the engine has not reported it yet (or detached/killed by us: not)."""
        return not self._closed and bool(self._e.exited) and self.exit_code is None and self.exit_signal is None

    def take_event(self) -> StopEvent:
        """The event a group call found (an `Exited`/`Killed` when the process ended)."""
        return self._take_event()

    # -------------------------------------------------------------------------------- events
    def _take_event(self) -> StopEvent:
        self._log_ptrace()
        e = self._e
        t = e.reported
        if e.exited or t == ffi.NULL:
            return self._process_end()
        kind, tid, pc = lib.pt_take_event(e, t), t.tid, t.ev_pc
        self._last_tid = tid
        if kind == lib.PT_EV_BREAKPOINT:
            return BreakpointHit(tid, pc, engine_verdict=int(t.ev_data))
        if kind == lib.PT_EV_STEP:
            return StepDone(tid, pc)
        if kind == lib.PT_EV_SIGNAL:
            self._held_signals[tid] = t.ev_sig
            return SignalReceived(tid, pc, t.ev_sig)
        if kind == lib.PT_EV_INTERRUPT:
            return Interrupted(tid, pc)
        if kind == lib.PT_EV_HWTRAP:
            return self._breakpoints.hardware_event(tid, pc, t.ev_data)
        if kind == lib.PT_EV_EXEC:
            return self._on_exec(tid, pc)
        if kind in (lib.PT_EV_FORK, lib.PT_EV_VFORK):
            return Forked(tid, pc, int(t.ev_data), kind == lib.PT_EV_VFORK)
        if kind == lib.PT_EV_VFORK_DONE:
            return VforkDone(tid, pc)
        if kind == lib.PT_EV_SYSCALL:
            return SyscallStop(tid, pc, int(t.ev_data), bool(t.ev_sig))
        if kind == lib.PT_EV_THREAD_EXITED:  # pt_take_event made its record PT_GONE
            status = int(t.ev_data)
            return ThreadExited(tid, os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0)
        raise TargetError(f"engine reported unknown event kind {kind}")

    def _process_end(self) -> StopEvent:
        status = self._e.exit_status
        if os.WIFSIGNALED(status):
            self.exit_signal = os.WTERMSIG(status)
            return Killed(self.pid, self.exit_signal)
        self.exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
        return Exited(self.pid, self.exit_code)

    def _on_exec(self, tid: int, pc: int) -> StopEvent:
        self._thread_list.clear()  # the other threads are gone and the leader may be another task now
        self._breakpoints.forget()  # the old image and its int3 bytes are gone
        self._held_signals.clear()
        self._executable = self.executable()
        return Exec(tid, pc, self._executable)

    # -------------------------------------------------------------------------------- memory
    def read_memory(self, address: int, length: int) -> bytes:
        """Read program memory as the program sees it (breakpoint bytes hidden); may return fewer bytes."""
        self._require_alive()
        if length <= 0:
            return b""
        buf = ffi.new("uint8_t[]", length)
        n = check_memory(lib.pt_read_memory(self._e, address, buf, length), address, length, "read")
        return ffi.buffer(buf, n)[:]

    def write_memory(self, address: int, data: bytes) -> None:
        """Write program memory, including read-only text; breakpoints under it stay in force."""
        self._require_alive()
        if not data:
            return
        n = check_memory(lib.pt_write_memory(self._e, address, data, len(data)), address, len(data), "write")
        if n != len(data):
            check_memory(-errno_mod.EIO, address + n, len(data) - n, "write")

    # -------------------------------------------------------------------------------- registers
    def read_gpr(self, tid: int) -> bytes:
        return registers.read_gpr(self._e, tid)

    def write_gpr(self, tid: int, data: bytes) -> None:
        registers.write_gpr(self._e, tid, data)

    def read_xstate(self, tid: int) -> bytes:
        return registers.read_xstate(self._e, tid)

    def write_xstate(self, tid: int, data: bytes) -> None:
        registers.write_xstate(self._e, tid, data)

    def get_regs(self, tid: int) -> dict[str, int]:
        """General registers of `tid` by name (user_regs_struct: rax, rip, orig_rax, fs_base ...)."""
        self._require_alive()
        return registers.get_regs(self._e, tid)

    def set_regs(self, tid: int, values: Mapping[str, int]) -> None:
        """Change some general registers of `tid`; the others keep their values."""
        self._require_alive()
        registers.set_regs(self._e, tid, values)

    def read_siginfo(self, tid: int) -> bytes:
        return registers.read_siginfo(self._e, tid)

    def write_siginfo(self, tid: int, data: bytes) -> None:
        registers.write_siginfo(self._e, tid, data)

    # -------------------------------------------------------------------------------- shared libraries
    def loaded_libraries(self) -> tuple[int, list[solibs.Library]]:
        """(the executable's link_map address, the shared libraries after it), from r_debug."""
        self._require_alive()
        return solibs.loaded_libraries(self.read_memory, self.pid, self.executable())

    def tls_address(self, tid: int, offset: int, lm: int) -> int:
        """Address of a thread-local variable (`offset` in the module whose link_map is `lm`)."""
        self._require_alive()
        fs_base = registers.get_regs(self._e, tid)["fs_base"]
        return solibs.thread_local_address(self.read_memory, self.pid, self.executable(), fs_base, offset, lm)

    def read_auxv(self) -> bytes:
        try:
            with open(f"/proc/{self.pid}/auxv", "rb") as f:
                return f.read()
        except OSError as err:
            raise TargetError(f"cannot read auxv: {err.strerror}", err.errno or errno_mod.EIO) from None

    # -------------------------------------------------------------------------------- ending
    def detach(self, pass_signal: Callable[[int], bool] | None = None) -> None:
        """Let the process go: breakpoints out of memory, pending signals handed back, nothing stopped.

        A signal reported by the last stop and not yet delivered goes with the detach when
        `pass_signal(sig)` says so (default: all but SIGTRAP and SIGINT, gdbserver's rule when GDB
        sent no QProgramSignals); dropped, a signal the program relies on is lost
        (gdb.threads/attach-into-signal.exp).
        """
        if self._closed or self._e.exited:
            return
        for tid, sig in self._held_signals.items():
            wanted = pass_signal(sig) if pass_signal is not None else sig not in (signal_mod.SIGTRAP, signal_mod.SIGINT)
            if wanted:
                lib.pt_set_deliver_signal(self._e, tid, sig)  # kept unless one is due; -ESRCH: gone
        self._held_signals.clear()
        self._breakpoints.forget()
        check(lib.pt_detach(self._e), "detach")  # the engine counts the process as ended now
        self._log_ptrace()
        self._thread_list.clear()
        self.exit_code = None

    def kill(self) -> None:
        """Kill the process (SIGKILL) and reap it."""
        if self._closed or self._e.exited:
            return
        lib.pt_kill(self._e)
        self._log_ptrace()
        self._thread_list.clear()
        self.exit_signal = signal_mod.SIGKILL

    # -------------------------------------------------------------------------------- statistics
    @property
    def stats(self) -> dict[str, int]:
        """The engine's counters (ptstub.linux.measure)."""
        if self._closed:
            raise ProcessGoneError("the Inferior is closed")
        return measure.engine_stats(self._e)

    def measure_stop_all(self, rounds: int) -> list[tuple[float, float]]:
        """With the world running: time `rounds` stop-alls and stop-all + resume cycles (seconds)."""
        return measure.stop_all_rounds(self._e, rounds)

    def measure_stop_resume(self, rounds: int) -> list[tuple[float, float]]:
        """The same through the public path (`measure.stop_resume_rounds`)."""
        return measure.stop_resume_rounds(self, rounds)

    @property
    def resumed_ns(self) -> int:
        """pt_now_ns() when the last resume batch had resumed every thread due."""
        return self._resumed_ns

"""`Inferior`: one traced process under the all-stop engine (the Linux backend of `Target`).

Python keeps policy: which threads run, breakpoint reference counts, hardware slots, which signal a
resume delivers, turning the C engine's pending-event records into typed `StopEvent`s. The C helper
(`csrc/ptcore_*.c`) keeps the mechanism. This class holds one process's state and delegates by job:
`actions` (each thread's next action, the signals held), `stop_events` (event records to `StopEvent`s),
`nonstop` (threads run and stop one by one), `options` (engine options, pass mask), `thread_list`
(names and handles for GDB's thread list), `breakpoints` (reference counts, debug registers),
`conditions` (conditions judged in the engine), `memory`, `registers`, `solibs`, `measure` (counters,
timings); `start` makes an Inferior (`launch`, `attach`). Invariant: between two calls every thread is stopped
(`world_stopped`) unless `resume()` was called and `wait()` has not yet reported.

All calls must come from the thread that created the Inferior (ptrace(2): requests are accepted only
from the tracer thread), except `interrupt()`, which any thread may call.
"""

from __future__ import annotations

import _signal
import errno as errno_mod
import os
from collections.abc import Callable, Collection, Mapping
from functools import partial

from ptstub.errors import ProcessGoneError, StopTimeout, TargetError
from ptstub.events import Exec, Interrupted, Killed, StopEvent
from ptstub.linux import (
    conditions,
    measure,
    memory,
    nonstop,
    options,
    ptrace_log,
    realtime,
    registers,
    solibs,
    stop_events,
    symbols,
    thread_list,
)
from ptstub.linux.actions import ResumePlan
from ptstub.linux.breakpoints import BreakpointTable
from ptstub.linux.engine import new_engine
from ptstub.linux.ffi import check, check_resumed, check_waited, ffi, lib
from ptstub.linux.thread_list import ThreadList
from ptstub.target import AgentCode, BreakpointKind, ResumeAction, ResumeKind, ThreadInfo

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any


WAIT_FOREVER = -1


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
        self._plan = ResumePlan()  # each thread's next action, the signals held (ptstub/linux/actions.py)
        self._ready = False  # pt_resume found an event to report without running anything
        self._last_tid = pid
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        self._closed = False
        self._thread_list = ThreadList(pid)  # names and handles (docs/design-notes.md, "Thread names")
        self.world_resumes = 0  # resumes of every thread so far (see ThreadListDocument)
        self._listed = 0  # live threads at the last threads()
        self._resumes = 0  # resumes so far: a cached thread name is good until the next one
        self._logs_ptrace = engine.ptrace_log != ffi.NULL  # the `ptstub.ptrace` channel was on at its making
        self.set_realtime(realtime.policy())

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
        return thread_list.live_tids(self._e)

    def _thread(self, tid: int) -> Any:
        return thread_list.thread_record(self._e, tid)

    def has_thread(self, tid: int) -> bool:
        return not self._closed and lib.pt_find_thread(self._e, tid) >= 0

    def thread_ended(self, tid: int) -> bool:
        return self._closed or thread_list.thread_ended(self._e, tid)

    # -------------------------------------------------------------------------------- symbols
    def executable(self) -> str:
        """The program the process runs now (/proc/PID/exe), or the one it was started with if unreadable."""
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

    def judge_breakpoint(self, address: int, code: AgentCode | None) -> bool:
        """Hits at `address` judged in the engine with `code` (ptstub/linux/conditions.py)."""
        return not self._closed and not self._e.exited and conditions.install(self._e, address, code)

    # -------------------------------------------------------------------------------- run control
    def resume(self, actions: Mapping[int, ResumeAction] | None = None, default: ResumeAction | None = None) -> None:
        """Start threads: those in `actions` as given, every other one with `default` (or not at all)."""
        self.plan_resume(actions, default)
        self._after_resume(lib.pt_resume(self._e))  # its batch at the priority `realtime` allows (boost_begin)

    def plan_resume(self, actions: Mapping[int, ResumeAction] | None, default: ResumeAction | None = None) -> None:
        """Set each thread's action for the next resume (`resume`, or the group's over several processes).
        A process that ended while another one's event was reported (`ended`) resumes too: its resume
        runs nothing and reports the end."""
        if not self.ended:
            self._require_alive()
        actions = actions or {}
        self._plan.write(self._e, actions, default)
        self._resumes += 1
        if default is not None or len(actions) >= self._listed:
            self.world_resumes += 1

    def set_realtime(self, policy: realtime.RealtimePolicy) -> None:
        """Resume batches of many threads at SCHED_FIFO when `policy` allows it (ptstub/linux/realtime.py)."""
        self.realtime = policy
        lib.pt_set_realtime(self._e, policy.enabled)

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
        self._plan.deliver_held(self._e, pass_signal)
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
        sig = self._plan.held_signals.pop(tid, 0) if pass_signal else 0
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
        """A signal stop collected while attaching, reported now (`stop_events.select_attach_signal`)."""
        return self._take_event() if stop_events.select_attach_signal(self._e) else None

    # -------------------------------------------------------------------------------- non-stop
    def resume_threads(self, actions: Mapping[int, ResumeAction]) -> None:
        self._require_alive()
        self._ready = False
        nonstop.resume_threads(self._e, self._plan, actions)

    def wait_event(self, timeout: float | None = None, wake_fd: int | None = None) -> StopEvent | None:
        self._require_alive()
        if nonstop.event_ready(self._e, _ms(timeout), wake_fd):
            return self._take_event()
        self._log_ptrace()
        return None

    def stop_thread(self, tid: int) -> bool:
        self._require_alive()
        return nonstop.stop_thread(self._e, tid)

    def is_running(self, tid: int) -> bool:
        return not self._closed and nonstop.is_running(self._e, tid)

    def any_running(self) -> bool:
        return not self._closed and self._e.nrunning > 0

    # -------------------------------------------------------------------------------- options
    def set_pass_signals(self, signals: Collection[int]) -> None:
        """Signals delivered to the program without a stop (GDB's QPassSignals)."""
        lib.pt_set_pass_signals(self._e, options.pass_mask(signals))

    def set_options(self, **wanted: bool | None) -> None:
        """Change engine options (`options.OPTIONS`: fork_events, eintr_fixup, catch_syscalls, thread_exits);
        those left out or None keep their value."""
        lib.pt_set_options(self._e, options.changed_options(self._e.options, wanted))

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
    def engine(self) -> Any:
        """The engine's record (`pt_engine *`): what the process group's C calls take
        (ptstub/linux/group.py), and its counters (`n_stops`, `last_stop_ns`) read without the dict
        `stats` builds per call (the stress harness reads two of them at every hit)."""
        return self._e

    @property
    def ready(self) -> bool:
        """The last resume found an event to report and ran nothing; taking the event clears it."""
        return self._ready

    def group_resumed(self, found_event: bool) -> None:
        """The process group's resume (`pt_group_resume`) ran this process, or found its event first."""
        self._ready = found_event

    @property
    def ended(self) -> bool:
        """The process ended and the engine has not reported it yet (or detached/killed by us: not)."""
        return not self._closed and bool(self._e.exited) and self.exit_code is None and self.exit_signal is None

    def take_event(self) -> StopEvent:
        """The event a group call found (an `Exited`/`Killed` when the process ended)."""
        self._ready = False
        return self._take_event()

    # -------------------------------------------------------------------------------- events
    def _take_event(self) -> StopEvent:
        self._log_ptrace()
        e = self._e
        if e.exited or e.reported == ffi.NULL:
            end = stop_events.process_end(self.pid, e.exit_status)
            if isinstance(end, Killed):
                self.exit_signal = end.signal
            else:
                self.exit_code = end.code
            return end
        event = stop_events.take_event(e, self._breakpoints, self._plan, self.executable)
        self._last_tid = event.tid
        if type(event) is Exec:  # the other threads are gone and the leader may be another task now
            self._thread_list.clear()
            self._executable = event.path
        return event

    # -------------------------------------------------------------------------------- memory
    def read_memory(self, address: int, length: int) -> bytes:
        """Read program memory as the program sees it (breakpoint bytes hidden); may return fewer bytes."""
        self._require_alive()
        return memory.read(self._e, address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        """Write program memory, including read-only text; breakpoints under it stay in force."""
        self._require_alive()
        memory.write(self._e, address, data)

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
        return solibs.read_auxv(self.pid)

    # -------------------------------------------------------------------------------- ending
    def detach(self, pass_signal: Callable[[int], bool] | None = None) -> None:
        """Let the process go: breakpoints out of memory, held signals handed back as `pass_signal` says
        (`ResumePlan.hand_back`), nothing stopped."""
        if self._closed or self._e.exited:
            return
        self._plan.hand_back(self._e, pass_signal)
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
        self.exit_signal = _signal.SIGKILL

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
        return measure.stop_resume_rounds(self._e, partial(self.resume, default=ResumeAction()), rounds)

    @property
    def resumed_ns(self) -> int:
        """pt_now_ns() when the last resume batch had resumed every thread due."""
        return int(self._e.resumed_ns)

"""`ResumePlan`: what each thread of one process does at the next resume, and the signals its stops
reported that are not delivered yet.

A resume writes one action per thread into the engine's thread records (`pt_set_action`, csrc/ptcore.h
`PT_ACT_*`): continue, step, range step, or none (the thread stays stopped). A signal a stop reported
is *held* until GDB says what becomes of it: a resume action naming the thread replaces it (vCont;C
and vCont;S carry the signal to deliver, plain c/s none, gdbserver's rule); the Python API's `cont()`
delivers it and a detach hands it back (ptrace(2): the data argument of PTRACE_CONT and
PTRACE_DETACH).

Invariant: `held_signals` has a tid exactly while the signal its last stop reported is neither
delivered nor dropped. Every call takes the process's engine (`pt_engine *`).
"""

from __future__ import annotations

import _signal
from collections.abc import Callable, Mapping

from ptstub.errors import TargetError
from ptstub.linux.ffi import ffi, lib
from ptstub.target import ResumeAction, ResumeKind

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

ACT_NONE, ACT_CONT, ACT_STEP, ACT_RANGE = lib.PT_ACT_NONE, lib.PT_ACT_CONT, lib.PT_ACT_STEP, lib.PT_ACT_RANGE
set_action = lib.pt_set_action  # once per thread per resume: a module global, not a `lib` lookup


class ResumePlan:
    """The next resume's actions as the engine holds them, and the held signals of one process."""

    __slots__ = ("held_signals", "_prepared")

    def __init__(self) -> None:
        self.held_signals: dict[int, int] = {}  # tid -> signal reported and not yet delivered
        self._prepared: tuple[Any, ...] | None = None  # the last all-threads plan as C arrays (`prepared`)

    def write(self, e: Any, actions: Mapping[int, ResumeAction], default: ResumeAction | None) -> None:
        """All-stop: the threads in `actions` as given, every other one with `default` (or not at all)."""
        threads, write_one = e.threads, self.write_one
        prepared = self.prepared(e, actions) if default is None else None
        if prepared is not None:
            # The plan GDB's last vCont gave (the session hands over the same actions at every stop of
            # a breakpoint loop): every thread's action in one C call.
            lib.pt_set_thread_actions(e, *prepared[1:])
            if self.held_signals:
                for tid in actions:
                    self.held_signals.pop(tid, None)
        elif default is None and 2 * len(actions) < e.nthreads:
            # A few named threads (GDB's vCont;s of one thread): every action cleared in one C call,
            # then only the named threads' records touched.
            lib.pt_set_actions(e, ACT_NONE)
            for tid, action in actions.items():
                index = lib.pt_find_thread(e, tid)
                if index >= 0:
                    write_one(threads[index], tid, action)
        else:
            for i in range(e.nthreads):
                t = threads[i]
                tid = t.tid
                write_one(t, tid, actions.get(tid, default))

    def write_stopped(self, e: Any, actions: Mapping[int, ResumeAction]) -> None:
        """Non-stop: the stopped threads named in `actions` as given, the other stopped ones not at all.

        A running thread keeps the action it runs with, except that naming it withdraws a stop asked of
        it that has not happened yet (as gdbserver does: its interrupt stop is then swallowed)."""
        for i in range(e.nthreads):
            t = e.threads[i]
            if t.state != lib.PT_STOPPED:
                if t.tid in actions:
                    lib.pt_withdraw_thread_stop(e, t.tid)
                continue
            self.write_one(t, t.tid, actions.get(t.tid))

    def write_one(self, t: Any, tid: int, action: ResumeAction | None) -> None:
        """Write one thread's action into its C record (None: it stays stopped).

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
        if self.held_signals:
            self.held_signals.pop(tid, None)

    def prepared(self, e: Any, actions: Mapping[int, ResumeAction]) -> tuple[Any, ...] | None:
        """`actions` as the C arrays of `pt_set_thread_actions` (tids, actions, signals, count), kept for
        the next resume with equal actions; None for a few named threads (cheaper one by one) or a
        range step (its range is not in the arrays)."""
        cached = self._prepared
        if cached is not None and cached[0] == actions:  # same ResumeAction objects: compared by identity
            return cached
        if 2 * len(actions) < e.nthreads:
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
        cached = (
            dict(actions),  # a copy: a caller may change its mapping after the resume
            ffi.new("int32_t[]", tids),
            ffi.new("int32_t[]", kinds),
            ffi.new("int32_t[]", sigs),
            len(tids),
        )
        self._prepared = cached
        return cached

    def deliver_held(self, e: Any, deliver: bool) -> None:
        """`cont()` of every thread: the held signals go with it (`deliver`) or are dropped."""
        if deliver:
            for tid, sig in self.held_signals.items():
                lib.pt_set_action_signal(e, tid, sig)  # -ESRCH: the thread is gone, so is its signal
        self.held_signals.clear()

    def hand_back(self, e: Any, pass_signal: Callable[[int], bool] | None) -> None:
        """A detach: each held signal goes with it when `pass_signal(sig)` says so (default: all but
        SIGTRAP and SIGINT, gdbserver's rule when GDB sent no QProgramSignals); dropped, a signal the
        program relies on is lost (gdb.threads/attach-into-signal.exp)."""
        for tid, sig in self.held_signals.items():
            wanted = pass_signal(sig) if pass_signal is not None else sig not in (_signal.SIGTRAP, _signal.SIGINT)
            if wanted:
                lib.pt_set_deliver_signal(e, tid, sig)  # kept unless one is due; -ESRCH: gone
        self.held_signals.clear()

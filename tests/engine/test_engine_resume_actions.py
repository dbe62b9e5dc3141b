"""Resume actions written in one C call (`Inferior._prepared_actions`, `pt_set_thread_actions`).

The C arrays of an all-threads plan are kept for the next resume with equal actions (GDB's breakpoint
loop sends the same `vCont;c` at every stop). They must never stand for a plan that changed since: a
mapping changed in place after the resume, another action kind or signal, a range step (not in the
arrays at all).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers import launched

from ptstub.events import Exited, StepDone
from ptstub.linux.ffi import lib
from ptstub.target import ResumeAction, ResumeKind

pytestmark = pytest.mark.usefixtures("no_leftover_children")

STEP = ResumeAction(ResumeKind.STEP)
CONTINUE = ResumeAction(ResumeKind.CONTINUE)


def test_equal_plan_reuses_the_arrays_and_a_changed_one_does_not(fixture_path: Callable[[str], str]) -> None:
    with launched([fixture_path("simple")]) as inf:
        actions = {inf.pid: CONTINUE}
        first = inf._plan.prepared(inf._e, actions)
        assert first is not None
        assert inf._plan.prepared(inf._e, actions) is first
        assert inf._plan.prepared(inf._e, {inf.pid: ResumeAction(ResumeKind.CONTINUE)}) is first  # equal values

        actions[inf.pid] = ResumeAction(ResumeKind.CONTINUE, 10)  # changed in place: a signal now
        second = inf._plan.prepared(inf._e, actions)
        assert second is not None and second is not first
        _, tids, kinds, sigs, count = second
        assert (count, tids[0], kinds[0], sigs[0]) == (1, inf.pid, lib.PT_ACT_CONT, 10)

        ranged = ResumeAction(ResumeKind.RANGE_STEP, 0, 0x1000, 0x1010)
        assert inf._plan.prepared(inf._e, {inf.pid: ranged}) is None


def test_set_thread_actions_clears_threads_not_named(fixture_path: Callable[[str], str]) -> None:
    with launched([fixture_path("simple")]) as inf:
        prepared = inf._plan.prepared(inf._e, {inf.pid: STEP, inf.pid + 100000: CONTINUE})
        assert prepared is not None
        record = inf._thread(inf.pid)
        assert lib.pt_set_thread_actions(inf._e, *prepared[1:]) == 1  # the unknown tid is skipped
        assert (record.action, record.action_sig) == (lib.PT_ACT_STEP, 0)
        prepared = inf._plan.prepared(inf._e, {inf.pid + 100000: CONTINUE})
        assert prepared is not None
        lib.pt_set_thread_actions(inf._e, *prepared[1:])
        assert record.action == lib.PT_ACT_NONE


def test_a_plan_changed_in_place_is_the_one_resumed(fixture_path: Callable[[str], str]) -> None:
    with launched([fixture_path("simple")]) as inf:
        actions = {inf.pid: STEP}
        inf.resume(actions)
        assert isinstance(inf.wait(10.0), StepDone)
        actions[inf.pid] = CONTINUE  # same mapping object, new content: the cached STEP must not be used
        inf.resume(actions)
        assert isinstance(inf.wait(10.0), Exited)

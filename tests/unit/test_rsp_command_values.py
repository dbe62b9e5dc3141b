"""The command values themselves, built directly (the parser's side is test_rsp_commands.py)."""

from __future__ import annotations

import types

import pytest

from ptstub.rsp import command_values as v
from ptstub.rsp import commands
from ptstub.rsp.threadid import ALL, ThreadId
from ptstub.target import BreakpointKind, ResumeAction, ResumeKind

MEMBERS = v.Command.__args__ if isinstance(v.Command, types.UnionType) else ()


def test_every_command_is_a_frozen_slotted_value_reexported_by_the_parser() -> None:
    assert len(MEMBERS) >= 55
    for member in MEMBERS:
        assert getattr(commands, member.__name__) is member  # `commands.X` keeps working for callers
        assert "__dict__" not in dir(member), member  # slots: no per-packet dict
        assert member.__setattr__ is not object.__setattr__, member


def test_equal_values_hash_alike_so_the_parser_can_memoize_them() -> None:
    first = v.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x401136, 1)
    again = v.InsertBreakpoint(BreakpointKind.SOFTWARE, 0x401136, 1)
    assert first == again and hash(first) == hash(again)
    assert first != v.RemoveBreakpoint(BreakpointKind.SOFTWARE, 0x401136, 1)
    with pytest.raises(AttributeError):
        first.address = 0  # type: ignore[misc]


def test_thread_action_to_resume_action() -> None:
    assert v.ThreadAction(v.ThreadActionKind.STEP).to_resume_action() == ResumeAction(ResumeKind.STEP)
    assert v.ThreadAction(v.ThreadActionKind.CONTINUE, None, 10).to_resume_action() == ResumeAction(
        ResumeKind.CONTINUE, 10
    )
    ranged = v.ThreadAction(v.ThreadActionKind.RANGE_STEP, None, 0, 0x10, 0x20)
    assert ranged.to_resume_action() == ResumeAction(ResumeKind.RANGE_STEP, 0, 0x10, 0x20)
    assert v.ThreadAction(v.ThreadActionKind.STOP).to_resume_action() is None  # the thread stays stopped


def test_resume_first_matching_action_wins_and_unmatched_threads_stay_stopped() -> None:
    step = v.ThreadAction(v.ThreadActionKind.STEP, ThreadId(7, 8))
    rest = v.ThreadAction(v.ThreadActionKind.CONTINUE, ThreadId(7, ALL))
    resume = v.Resume((step, rest))
    assert resume.action_for(7, 8) is step
    assert resume.action_for(7, 9) is rest
    assert resume.action_for(6, 6) is None

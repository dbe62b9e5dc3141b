"""`ptstub.values.frozen`: the value classes behave as frozen, slotted dataclasses would."""

from __future__ import annotations

import copy
import pickle

import pytest

from ptstub.events import BreakpointHit
from ptstub.rsp.commands import ReadMemory, ThreadAction, ThreadActionKind
from ptstub.values import FrozenValueError, frozen


@frozen
class Point:
    x: int
    y: int = 0


@frozen
class Point3(Point):
    z: int = 0


def test_construction_by_position_keyword_and_default() -> None:
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert Point(1).y == 0
    assert ThreadAction(ThreadActionKind.STEP).thread is None


@pytest.mark.parametrize(
    "call",
    [lambda: Point(), lambda: Point(1, 2, 3), lambda: Point(1, x=2), lambda: Point(1, w=2)],
    ids=["missing", "too-many", "twice", "unknown"],
)
def test_bad_arguments_raise_type_error(call: object) -> None:
    with pytest.raises(TypeError):
        call()  # type: ignore[operator]


def test_fields_cannot_be_assigned_deleted_or_added() -> None:
    hit = BreakpointHit(tid=5, pc=0x401000)
    with pytest.raises(FrozenValueError):
        hit.pc = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del hit.tid  # type: ignore[misc]
    with pytest.raises(AttributeError):
        hit.other = 1  # type: ignore[attr-defined]
    assert not hasattr(hit, "__dict__")


def test_equality_and_hash_by_type_and_fields() -> None:
    assert ReadMemory(0x10, 4) == ReadMemory(0x10, 4)
    assert hash(ReadMemory(0x10, 4)) == hash(ReadMemory(0x10, 4))
    assert ReadMemory(0x10, 4) != ReadMemory(0x10, 5)
    assert Point(1, 0) != Point3(1, 0)  # another class, even with the same leading fields
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_repr_match_args_inheritance_pickle_and_copy() -> None:
    assert repr(Point3(1, 2, 3)) == "Point3(x=1, y=2, z=3)"
    match Point3(1, 2, 3):
        case Point3(a, b, c):
            assert (a, b, c) == (1, 2, 3)
    hit = BreakpointHit(7, 0x401000, hardware=True)
    assert pickle.loads(pickle.dumps(hit)) == hit
    assert copy.copy(hit) == hit and copy.deepcopy(Point3(1)) == Point3(1)


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="follows a field with a default"):

        @frozen
        class Bad:
            a: int = 0
            b: int


def test_many_fields_take_the_generic_initializer_alike() -> None:
    wide = frozen(
        type("Wide", (), {"__annotations__": {f"f{i}": "int" for i in range(14)} | {"last": "int"}, "last": 9})
    )
    value = wide(*range(13), f13=13)
    assert (value.f0, value.f13, value.last) == (0, 13, 9)
    assert value == wide(*range(14), last=9)
    for bad in (lambda: wide(*range(13)), lambda: wide(*range(14), f0=1), lambda: wide(*range(16))):
        with pytest.raises(TypeError):
            bad()

"""`@frozen`: immutable value classes built at import time without the dataclass machinery.

`@dataclass(frozen=True, slots=True)` compiles five or six functions per class with `exec` and then
builds the class a second time for `__slots__`: about 0.3-0.9 ms per class on this project's machines,
and ptstub defines some ninety value classes that every debugging connection needs (packets, replies,
stop events, register definitions), so the decorator alone cost more CPU than gdbserver spends from
exec to GDB's first prompt. `frozen` gives the same values (slots, keyword or positional construction
with defaults, `__match_args__`, equality and hash by fields, a dataclass-style `repr`, assignment
refused, pickling and copying) from a handful of shared functions: building a class costs one `type()`
call. Type checkers see it as a frozen dataclass (PEP 681 `dataclass_transform`).

Invariants: fields are the class's own annotations (and those of a `@frozen` base, first), in order;
a field with a default is followed only by fields with defaults; `ClassVar` annotations are not fields.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms, and only type checkers need it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    _T = TypeVar("_T", bound=type)
else:

    def dataclass_transform(**_kwargs: object) -> object:
        return lambda decorated: decorated


_set = object.__setattr__


class FrozenValueError(AttributeError):
    """An assignment to a field of a frozen value (dataclasses' FrozenInstanceError is another such)."""


@dataclass_transform(frozen_default=True, eq_default=True)
def frozen(cls: _T) -> _T:
    """Make `cls` an immutable value class with `__slots__` (see the module docstring)."""
    inherited: tuple[str, ...] = getattr(cls, "__value_fields__", ())
    inherited_defaults: dict[str, Any] = getattr(cls, "__value_defaults__", {})
    own = [name for name, kind in cls.__dict__.get("__annotations__", {}).items() if not _is_classvar(kind)]
    names = inherited + tuple(own)
    defaults = inherited_defaults | {name: cls.__dict__[name] for name in own if name in cls.__dict__}
    _check_default_order(cls.__name__, names, defaults)
    namespace = {key: item for key, item in cls.__dict__.items() if key not in own}
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    namespace.update(
        __slots__=tuple(own),
        __match_args__=names,
        __value_fields__=names,
        __value_defaults__=defaults,
        __init__=_initializer(names, defaults),
    )
    for name, method in _METHODS.items():
        if name not in cls.__dict__:  # a class may define its own (a custom repr, say)
            namespace[name] = method
    return type(cls)(cls.__name__, cls.__bases__, namespace)  # type: ignore[return-value]


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _check_default_order(cls_name: str, names: tuple[str, ...], defaults: dict[str, Any]) -> None:
    seen_default = False
    for name in names:
        if name in defaults:
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls_name}: non-default field {name!r} follows a field with a default")


def _initializer(names: tuple[str, ...], defaults: dict[str, Any]) -> Callable[..., None]:
    """An `__init__(self, <names>)` as fast as a hand-written one: the code of a template with as many
    parameters (compiled once per count) with the parameter and attribute names swapped in, so that
    neither a call nor the class's creation runs the compiler."""
    template = _template(len(names))
    code = template.__code__
    rename = {f"_{i}": name for i, name in enumerate(names)}
    code = code.replace(
        co_varnames=tuple(rename.get(name, name) for name in code.co_varnames),
        co_consts=tuple(rename.get(c, c) if isinstance(c, str) else c for c in code.co_consts),
    )
    tail = tuple(defaults[name] for name in names if name in defaults) or None
    return type(template)(code, template.__globals__, "__init__", tail)


_templates: dict[int, Any] = {}


def _template(count: int) -> Any:
    template = _templates.get(count)
    if template is None:
        params = "".join(f", _{i}" for i in range(count))
        body = "".join(f"    _set(self, '_{i}', _{i})\n" for i in range(count)) or "    pass\n"
        namespace: dict[str, Any] = {}
        exec(f"def __init__(self{params}):\n{body}", {"_set": _set}, namespace)
        template = _templates[count] = namespace["__init__"]
    return template


def _fields(self: Any) -> tuple[Any, ...]:
    return tuple([getattr(self, name) for name in self.__value_fields__])


def _eq(self: Any, other: Any) -> Any:
    if type(other) is not type(self):
        return NotImplemented
    return self is other or _fields(self) == _fields(other)


def _hash(self: Any) -> int:
    return hash(_fields(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__value_fields__)
    return f"{type(self).__qualname__}({shown})"


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenValueError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenValueError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


def _reduce(self: Any) -> tuple[Any, ...]:
    return type(self), _fields(self)  # pickle and copy rebuild through __init__, not by setting slots


_METHODS = {
    "__eq__": _eq,
    "__hash__": _hash,
    "__repr__": _repr,
    "__setattr__": _setattr,
    "__delattr__": _delattr,
    "__reduce__": _reduce,
}

"""`@frozen`: immutable value classes built at import time without the dataclass machinery.

`@dataclass(frozen=True, slots=True)` compiles five or six functions per class with `exec` and then
builds the class a second time for `__slots__`: about 0.3-0.9 ms per class on this project's machines,
and ptstub defines some ninety value classes that every debugging connection needs (packets, replies,
stop events, register definitions), so the decorator alone cost more CPU than gdbserver spends from
exec to GDB's first prompt. `frozen` gives the same values (slots, keyword or positional construction
with defaults, `__match_args__`, equality and hash by fields, a dataclass-style `repr`, assignment
refused, pickling and copying) from a handful of shared functions and a precompiled `__init__`
template: building a class costs one `type()` call and one `code.replace`, ~20-70 µs. Type checkers
see it as a frozen dataclass (PEP 681 `dataclass_transform`).

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
    """An `__init__(self, <names>)` as fast as a hand-written one: the code of the template with as many
    parameters (`_TEMPLATES`, loaded from the .pyc like any function) with the parameter and attribute
    names swapped in, so that neither the class's creation nor a call runs the compiler. Classes of
    more fields (rare, never built per stop) get a generic `__init__`."""
    if len(names) >= len(_TEMPLATES):
        return _generic_initializer(names, defaults)
    template: Any = _TEMPLATES[len(names)]
    code = template.__code__
    rename = {f"_{i}": name for i, name in enumerate(names)}
    code = code.replace(
        co_varnames=tuple(rename.get(name, name) for name in code.co_varnames),
        co_consts=tuple(rename.get(c, c) if isinstance(c, str) else c for c in code.co_consts),
    )
    tail = tuple(defaults[name] for name in names if name in defaults) or None
    return type(template)(code, template.__globals__, "__init__", tail)


def _generic_initializer(names: tuple[str, ...], defaults: dict[str, Any]) -> Callable[..., None]:
    count = len(names)
    index = {name: i for i, name in enumerate(names)}

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) != count or kwargs:
            args = _bind(type(self).__name__, names, index, defaults, args, kwargs)
        for name, arg in zip(names, args, strict=True):
            _set(self, name, arg)

    return __init__


def _bind(
    cls_name: str,
    names: tuple[str, ...],
    index: dict[str, int],
    defaults: dict[str, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ...]:
    """Positional and keyword arguments in field order, defaults filled in; TypeError as a call would."""
    if len(args) > len(names):
        raise TypeError(f"{cls_name}() takes {len(names)} arguments but {len(args)} were given")
    values = dict(zip(names, args))  # noqa: B905  (fewer arguments than fields)
    for name, arg in kwargs.items():
        if name not in index:
            raise TypeError(f"{cls_name}() got an unexpected keyword argument {name!r}")
        if name in values:
            raise TypeError(f"{cls_name}() got multiple values for argument {name!r}")
        values[name] = arg
    missing = [name for name in names if name not in values and name not in defaults]
    if missing:
        raise TypeError(f"{cls_name}() missing required arguments: {', '.join(missing)}")
    return tuple(values[name] if name in values else defaults[name] for name in names)


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


# --- __init__ templates by field count (see `_initializer`); `_set` is object.__setattr__ -------------


def _init0(self):
    pass


def _init1(self, _0):
    _set(self, "_0", _0)


def _init2(self, _0, _1):
    _set(self, "_0", _0)
    _set(self, "_1", _1)


def _init3(self, _0, _1, _2):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)


def _init4(self, _0, _1, _2, _3):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)


def _init5(self, _0, _1, _2, _3, _4):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)


def _init6(self, _0, _1, _2, _3, _4, _5):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)


def _init7(self, _0, _1, _2, _3, _4, _5, _6):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)


def _init8(self, _0, _1, _2, _3, _4, _5, _6, _7):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)
    _set(self, "_7", _7)


def _init9(self, _0, _1, _2, _3, _4, _5, _6, _7, _8):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)
    _set(self, "_7", _7)
    _set(self, "_8", _8)


def _init10(self, _0, _1, _2, _3, _4, _5, _6, _7, _8, _9):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)
    _set(self, "_7", _7)
    _set(self, "_8", _8)
    _set(self, "_9", _9)


def _init11(self, _0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)
    _set(self, "_7", _7)
    _set(self, "_8", _8)
    _set(self, "_9", _9)
    _set(self, "_10", _10)


def _init12(self, _0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11):
    _set(self, "_0", _0)
    _set(self, "_1", _1)
    _set(self, "_2", _2)
    _set(self, "_3", _3)
    _set(self, "_4", _4)
    _set(self, "_5", _5)
    _set(self, "_6", _6)
    _set(self, "_7", _7)
    _set(self, "_8", _8)
    _set(self, "_9", _9)
    _set(self, "_10", _10)
    _set(self, "_11", _11)


_TEMPLATES = (_init0, _init1, _init2, _init3, _init4, _init5, _init6, _init7, _init8, _init9, _init10, _init11, _init12)

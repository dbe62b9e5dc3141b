"""ptstub: an all-stop ptrace debug stub for multi-threaded Linux programs.

`ptstub.launch(argv)` and `ptstub.attach(pid)` give an `Inferior` (see `ptstub.linux.inferior`);
`ptstub.events` holds the typed stop events and `ptstub.errors` the exceptions.

The names are loaded on first use (PEP 562 `__getattr__`): importing `ptstub` (as the pytest plugin
entry point, the CLI and `ptstub.rsp` do) must not load the engine's cffi module and pyelftools
(~0.1 s), which only `launch`, `attach` and `Inferior` need.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.errors import (
        AttachError,
        LaunchError,
        MemoryAccessError,
        NoSuchThreadError,
        PtstubError,
        StopTimeout,
        TargetError,
    )
    from ptstub.linux import Inferior, attach, launch

__version__ = "0.1.0"
__all__ = [
    "AttachError",
    "Inferior",
    "LaunchError",
    "MemoryAccessError",
    "NoSuchThreadError",
    "PtstubError",
    "StopTimeout",
    "TargetError",
    "attach",
    "launch",
]

_HOMES = {name: "ptstub.linux" for name in ("Inferior", "attach", "launch")} | {
    name: "ptstub.errors" for name in __all__ if name.endswith("Error") or name == "StopTimeout"
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ptstub' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)  # not importlib: ~1 ms more at start-up
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

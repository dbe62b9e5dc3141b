"""ptstub: an all-stop ptrace debug stub for multi-threaded Linux programs.

`ptstub.launch(argv)` and `ptstub.attach(pid)` give an `Inferior` (see `ptstub.linux.inferior`);
`ptstub.events` holds the typed stop events and `ptstub.errors` the exceptions.
"""

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

"""Making one C engine (csrc/ptcore.h `pt_engine`) for a process."""

from __future__ import annotations

import os

from ptstub.errors import TargetError
from ptstub.linux import ptrace_log
from ptstub.linux.ffi import ffi, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any


def new_engine(pid: int, seed: int | None) -> Any:
    """An engine for `pid` (0: for a program `launch` starts), its ptrace log on when `ptstub.ptrace` is."""
    engine = lib.pt_engine_new(pid, seed if seed is not None else int.from_bytes(os.urandom(8), "little"))
    if engine == ffi.NULL:
        raise TargetError(f"cannot set up tracing of process {pid} (is /proc mounted?)")
    ptrace_log.enable(engine)
    return engine

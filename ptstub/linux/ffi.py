"""The cffi helper (`ptstub._ptcore`) and the one place its -errno results become exceptions."""

from __future__ import annotations

import errno as errno_mod
import os

from ptstub._ptcore import ffi, lib  # built from csrc/ at install time (API mode)
from ptstub.errors import MemoryAccessError, NoSuchThreadError, PtraceError, TargetError

__all__ = ["ffi", "lib", "check", "check_resumed", "check_waited", "check_thread", "check_memory"]


def check(rc: int, what: str) -> int:
    """Return `rc` when it is a result, raise `TargetError` when it is -errno."""
    if rc < 0:
        raise TargetError(f"{what}: {os.strerror(-rc)}", -rc)
    return rc


def check_resumed(rc: int) -> int:
    """Like `check` for a resume: -EDEADLK means no thread had an action (the caller's mistake)."""
    if rc == -errno_mod.EDEADLK:
        raise TargetError("no thread was resumed", errno_mod.EINVAL)
    return check(rc, "resume")


def check_waited(rc: int) -> int:
    """Like `check` for an all-stop wait: -ECHILD means no resumed thread can report any more."""
    if rc == -errno_mod.ECHILD:
        raise TargetError("no thread is running", errno_mod.ECHILD)
    return check(rc, "wait")


def check_thread(rc: int, op: str, tid: int) -> int:
    """Like `check` for a per-thread ptrace request: ESRCH means the thread is gone."""
    if rc < 0:
        if rc == -errno_mod.ESRCH:
            raise NoSuchThreadError(tid)
        raise PtraceError(op, tid, -rc)
    return rc


def check_memory(rc: int, address: int, length: int, verb: str) -> int:
    """Like `check` for memory access: any failure names the address range."""
    if rc < 0:
        raise MemoryAccessError(f"cannot {verb} {length} byte(s) at {address:#x}: {os.strerror(-rc)}", -rc)
    return rc

"""Registers of one stopped thread through the engine: general registers (user_regs_struct, 216
bytes), the XSAVE area (PTRACE_GETREGSET NT_X86_XSTATE) and the siginfo of its stop (ptrace(2)).

Each call takes the engine and a tid; ESRCH (the thread is gone) becomes `NoSuchThreadError`, any
other failure a `PtraceError` naming the request (`ffi.check_thread`).
"""

from __future__ import annotations

import errno as errno_mod
from collections.abc import Mapping

from ptstub.errors import TargetError
from ptstub.linux.ffi import check_thread, ffi, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

GPR_SIZE = 216  # struct user_regs_struct (<sys/user.h>)
XSTATE_MAX = 16384
SIGINFO_SIZE = 128


def read_gpr(e: Any, tid: int) -> bytes:
    buf = ffi.new("uint8_t[]", GPR_SIZE)
    check_thread(lib.pt_get_regs(e, tid, buf), "GETREGS", tid)
    return ffi.buffer(buf, GPR_SIZE)[:]


def write_gpr(e: Any, tid: int, data: bytes) -> None:
    if len(data) != GPR_SIZE:
        raise TargetError(f"general registers are {GPR_SIZE} bytes, got {len(data)}", errno_mod.EINVAL)
    check_thread(lib.pt_set_regs(e, tid, data), "SETREGS", tid)


def read_xstate(e: Any, tid: int) -> bytes:
    buf = ffi.new("uint8_t[]", XSTATE_MAX)
    n = check_thread(lib.pt_get_xstate(e, tid, buf, XSTATE_MAX), "GETREGSET", tid)
    return ffi.buffer(buf, n)[:]


def write_xstate(e: Any, tid: int, data: bytes) -> None:
    check_thread(lib.pt_set_xstate(e, tid, data, len(data)), "SETREGSET", tid)


def get_regs(e: Any, tid: int) -> dict[str, int]:
    """General registers of `tid` by name (user_regs_struct: rax, rip, orig_rax, fs_base ...)."""
    from ptstub.arch import x86_64

    return x86_64.unpack_gpr(read_gpr(e, tid))


def set_regs(e: Any, tid: int, values: Mapping[str, int]) -> None:
    """Change some general registers of `tid`; the others keep their values."""
    from ptstub.arch import x86_64

    unknown = set(values) - set(x86_64.GPR_FIELDS)
    if unknown:
        raise TargetError(f"unknown register(s): {', '.join(sorted(unknown))}", errno_mod.EINVAL)
    write_gpr(e, tid, x86_64.pack_gpr(values, read_gpr(e, tid)))


def read_siginfo(e: Any, tid: int) -> bytes:
    buf = ffi.new("uint8_t[]", SIGINFO_SIZE)
    check_thread(lib.pt_get_siginfo(e, tid, buf), "GETSIGINFO", tid)
    return ffi.buffer(buf, SIGINFO_SIZE)[:]


def write_siginfo(e: Any, tid: int, data: bytes) -> None:
    data = data.ljust(SIGINFO_SIZE, b"\0")[:SIGINFO_SIZE]
    check_thread(lib.pt_set_siginfo(e, tid, data), "SETSIGINFO", tid)

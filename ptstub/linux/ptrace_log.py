"""The `ptstub.ptrace` log channel: every ptrace call the engine made, as strace would show it.

The C engine sends each ptrace request through one wrapper (`pt_ptrace()` in csrc/ptcore_internal.h).
While the channel is enabled at DEBUG level when an engine is made (`--debug` does that), the wrapper
keeps request, tid, result and errno in a ring per engine; `flush()` empties the ring into the log.
Disabled, the wrapper tests one pointer and nothing else happens.

Lines read `PTRACE_CONT(1234, SIGUSR1) = 0` or `PTRACE_INTERRUPT(1234) = -1 ESRCH`. The request
numbers are those of <sys/ptrace.h> and linux/ptrace.h (ptrace(2)); signal and errno names come from
the standard library.
"""

from __future__ import annotations

import errno as errno_mod
import sys

from ptstub import logs
from ptstub.events import signal_name
from ptstub.linux.ffi import ffi, lib

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

log = logs.logger("ptstub.ptrace")

CAPACITY = 65536  # records kept between two flushes; older ones are counted as dropped
_BATCH = 1024

REQUEST_NAMES = {
    0: "PTRACE_TRACEME",
    1: "PTRACE_PEEKTEXT",
    2: "PTRACE_PEEKDATA",
    3: "PTRACE_PEEKUSER",
    4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA",
    6: "PTRACE_POKEUSER",
    7: "PTRACE_CONT",
    8: "PTRACE_KILL",
    9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS",
    13: "PTRACE_SETREGS",
    14: "PTRACE_GETFPREGS",
    15: "PTRACE_SETFPREGS",
    16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH",
    18: "PTRACE_GETFPXREGS",
    19: "PTRACE_SETFPXREGS",
    24: "PTRACE_SYSCALL",
    0x4200: "PTRACE_SETOPTIONS",
    0x4201: "PTRACE_GETEVENTMSG",
    0x4202: "PTRACE_GETSIGINFO",
    0x4203: "PTRACE_SETSIGINFO",
    0x4204: "PTRACE_GETREGSET",
    0x4205: "PTRACE_SETREGSET",
    0x4206: "PTRACE_SEIZE",
    0x4207: "PTRACE_INTERRUPT",
    0x4208: "PTRACE_LISTEN",
    0x4209: "PTRACE_PEEKSIGINFO",
    0x420A: "PTRACE_GETSIGMASK",
    0x420B: "PTRACE_SETSIGMASK",
    0x420E: "PTRACE_GET_SYSCALL_INFO",
}
# Requests whose data argument is a signal to deliver (ptrace(2)).
_SIGNAL_DATA = {7, 9, 17, 24}
# Requests whose addr (a user-area offset or a regset type) and data (a value) are worth printing.
_ADDR_DATA = {3: False, 4: True, 5: True, 6: True, 0x4204: False, 0x4205: False}
_OPTIONS_DATA = {0x4200, 0x4206}


def request_name(request: int) -> str:
    return REQUEST_NAMES.get(request, f"PTRACE_{request:#x}")


def errno_name(err: int) -> str:
    return errno_mod.errorcode.get(err, str(err))


def describe(request: int, tid: int, result: int, err: int, addr: int, data: int) -> str:
    """One record as a line: the request with its arguments, then the result (and errno name)."""
    args = [str(tid)]
    if request in _SIGNAL_DATA:
        args.append(signal_name(data) if data else "0")
    elif request in _OPTIONS_DATA:
        args.append(f"options={data:#x}")
    elif request in _ADDR_DATA:
        args.append(f"{addr:#x}")
        if _ADDR_DATA[request]:
            args.append(f"{data:#x}")
    outcome = f"-1 {errno_name(err)}" if result == -1 and err else str(result)
    return f"{request_name(request)}({', '.join(args)}) = {outcome}"


def enable(engine: Any) -> bool:
    """Turn the engine's ptrace log on when the channel logs at DEBUG level; True when it did."""
    logging = sys.modules.get("logging")  # not imported: nothing can have turned the channel on (ptstub.logs)
    if logging is None or not logging.getLogger(log.name).isEnabledFor(logging.DEBUG):
        return False
    return lib.pt_ptrace_log_enable(engine, CAPACITY) == 0


def flush(engine: Any) -> None:
    """Log every record the engine kept since the last flush, oldest first."""
    out = ffi.new("pt_ptrace_record[]", _BATCH)
    dropped = ffi.new("uint64_t *")
    while True:
        n = lib.pt_ptrace_log_take(engine, out, _BATCH, dropped)
        if dropped[0]:
            log.debug("(%d ptrace calls not logged: the ring overflowed)", dropped[0])
            dropped[0] = 0
        for i in range(n):
            r = out[i]
            log.debug("%s", describe(r.request, r.tid, r.result, r.err, r.addr, r.data))
        if n < _BATCH:
            return

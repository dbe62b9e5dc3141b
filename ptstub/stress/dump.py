"""Every thread's state and registers when a run is declared deadlocked.

Engine face: the world is stopped (the engine's timeout stops it), so registers come from ptrace:
rip and rsp, and `orig_rax` says which system call a thread was blocked in (docs/kernel-facts.md §3: a thread
interrupted inside a call stops with orig_rax = the call number). Stub face: the program belongs to
the stub, so the state comes from /proc/PID/task/TID/{stat,comm,syscall} (proc(5)); `syscall` holds
the number, stack pointer and pc of a thread blocked in a call, and is readable by the stub's parent.
"""

from __future__ import annotations

import os
from typing import Any

from ptstub.errors import PtstubError
from ptstub.stress.frozen import thread_state
from ptstub.stress.model import ThreadDump
from ptstub.stress.symbolize import read_maps, symbolize

SYSCALL_NAMES = {
    0: "read",
    1: "write",
    7: "poll",
    23: "select",
    34: "pause",
    35: "nanosleep",
    43: "accept",
    45: "recvfrom",
    47: "recvmsg",
    61: "wait4",
    128: "rt_sigtimedwait",
    202: "futex",
    230: "clock_nanosleep",
    232: "epoll_wait",
    247: "waitid",
    270: "pselect6",
    271: "ppoll",
    281: "epoll_pwait",
    288: "accept4",
    441: "epoll_pwait2",
}
SYSCALL_INSN = b"\x0f\x05"


def syscall_name(number: int) -> str:
    return SYSCALL_NAMES.get(number, f"syscall {number}")


def dump_inferior(inferior: Any) -> tuple[ThreadDump, ...]:
    """Dump the threads of a stopped `ptstub.Inferior`: tid, name, engine state, rip, rsp, symbol, call."""
    try:
        threads = inferior.threads()
    except PtstubError:
        return ()
    maps = read_maps(inferior.pid)
    dumps = []
    for info in threads:
        try:
            regs = inferior.get_regs(info.tid)
        except PtstubError:
            dumps.append(ThreadDump(info.tid, info.name, info.state.value, None, None, ""))
            continue
        rip, rsp, orig = regs["rip"], regs["rsp"], regs["orig_rax"]
        in_call = ""
        if orig >= 0 and orig < 1 << 32 and _after_syscall(inferior, rip):
            in_call = syscall_name(orig)
        dumps.append(ThreadDump(info.tid, info.name, info.state.value, rip, rsp, symbolize(maps, rip), in_call))
    return tuple(dumps)


def blocked_summary(dumps: tuple[ThreadDump, ...]) -> str:
    """`3 threads: 2 in futex, 1 in nanosleep` (or `running`) for a one-line deadlock message."""
    where: dict[str, int] = {}
    for d in dumps:
        key = f"in {d.syscall}" if d.syscall else "not in a system call"
        where[key] = where.get(key, 0) + 1
    parts = ", ".join(f"{n} {key}" for key, n in sorted(where.items(), key=lambda kv: -kv[1]))
    return f"{len(dumps)} threads: {parts}" if dumps else "no thread could be read"


def _after_syscall(inferior: Any, rip: int) -> bool:
    try:
        return bool(inferior.read_memory(rip - 2, 2) == SYSCALL_INSN)
    except PtstubError:
        return False


def dump_proc(pid: int) -> tuple[ThreadDump, ...]:
    """Dump the threads of a process we do not trace, from /proc only."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return ()
    maps = read_maps(pid)
    dumps = []
    for tid in tids:
        state = thread_state(pid, tid)
        if not state:
            continue
        name = _read_text(f"/proc/{pid}/task/{tid}/comm").strip()
        number, rsp, pc = _proc_syscall(pid, tid)
        dumps.append(
            ThreadDump(
                tid,
                name,
                state,
                pc,
                rsp,
                symbolize(maps, pc) if pc else "",
                syscall_name(number) if number is not None else "",
            )
        )
    return tuple(dumps)


def _proc_syscall(pid: int, tid: int) -> tuple[int | None, int | None, int | None]:
    """(call number, rsp, pc) from /proc/.../syscall: `NR a1..a6 SP PC`, or `-1 SP PC`, or `running`."""
    fields = _read_text(f"/proc/{pid}/task/{tid}/syscall").split()
    try:
        if len(fields) == 9:
            return int(fields[0]), int(fields[7], 16), int(fields[8], 16)
        if len(fields) == 3:
            return None, int(fields[1], 16), int(fields[2], 16)
    except ValueError:
        pass
    return None, None, None


def _read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""

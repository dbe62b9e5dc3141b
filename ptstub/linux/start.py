"""Starting to trace a process: `launch` a program, or `attach` to a running one.

Both return an `Inferior` with every thread stopped. A launched program stops before its first
instruction (at the PTRACE_EVENT_EXEC stop, ptrace(2)) and dies with its tracer (PTRACE_O_EXITKILL);
an attached process is seized thread by thread until /proc/PID/task shows no new thread. Errors are
one-line `LaunchError` / `AttachError` messages (not found, not permitted, already traced).
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Mapping

from ptstub import logs
from ptstub.errors import AttachError, LaunchError, TargetError
from ptstub.linux.engine import new_engine
from ptstub.linux.ffi import check, ffi, lib
from ptstub.linux.inferior import Inferior
from ptstub.linux.program import resolve_program

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import IO, Any

log = logs.logger("ptstub.events")


def _fd_of(stream: IO[Any] | int | None) -> int:
    if stream is None:
        return -1
    if isinstance(stream, int):
        return stream
    return stream.fileno()


def launch(
    argv: list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    *,
    stdin: IO[Any] | int | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    disable_randomization: bool = True,
    new_process_group: bool = False,
    seed: int | None = None,
) -> Inferior:
    """Start `argv` traced; it is stopped before its first instruction with every thread traced."""
    if not argv:
        raise LaunchError("no program given")
    path = resolve_program(argv[0])
    if cwd is not None and not os.path.isdir(cwd):
        raise LaunchError(f"{cwd}: working directory does not exist")
    environment = os.environ if env is None else env
    keep = [ffi.new("char[]", os.fsencode(a)) for a in argv]
    c_argv = ffi.new("char *[]", keep + [ffi.NULL])
    env_keep = [ffi.new("char[]", os.fsencode(f"{k}={v}")) for k, v in environment.items()]
    c_env = ffi.new("char *[]", env_keep + [ffi.NULL])
    flags = lib.PT_LAUNCH_NO_ASLR if disable_randomization else 0
    flags |= lib.PT_LAUNCH_SETPGID if new_process_group else 0
    c_cwd = ffi.new("char[]", os.fsencode(cwd)) if cwd else ffi.NULL
    try:
        engine = new_engine(0, seed)
    except TargetError as err:
        raise LaunchError(f"{argv[0]}: cannot start: {err}") from None
    rc = lib.pt_launch(
        engine, os.fsencode(path), c_argv, c_env, c_cwd, flags, _fd_of(stdin), _fd_of(stdout), _fd_of(stderr)
    )
    if rc < 0:
        lib.pt_engine_free(engine)
        raise LaunchError(f"{argv[0]}: cannot start: {os.strerror(-rc)}")
    pid = engine.pid
    check(lib.pt_adopt_launched(engine), "adopt")
    log.debug("launched %s as pid %d", path, pid)
    return Inferior(engine, pid, True, path)


def attach(pid: int, seed: int | None = None) -> Inferior:
    """Attach to every thread of a running process; returns with all of them stopped."""
    if pid <= 0 or not os.path.exists(f"/proc/{pid}"):
        raise AttachError(f"cannot attach to process {pid}: no such process")
    if pid == os.getpid():
        raise AttachError("cannot attach to ptstub's own process")
    tracer = _tracer_of(pid)
    if tracer:
        raise AttachError(f"cannot attach to process {pid}: it is already traced by process {tracer}")
    try:
        engine = new_engine(pid, seed)
    except TargetError as err:
        raise AttachError(f"cannot attach to process {pid}: {err}") from None
    rc = lib.pt_attach_all(engine)
    if rc < 0:
        lib.pt_engine_free(engine)
        raise AttachError(_attach_message(pid, -rc))
    if engine.memfd < 0:
        lib.pt_detach(engine)
        lib.pt_engine_free(engine)
        raise AttachError(f"cannot attach to process {pid}: cannot open /proc/{pid}/mem")
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    return Inferior(engine, pid, False, exe)


def _tracer_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _attach_message(pid: int, err: int) -> str:
    if err == errno_mod.EPERM:
        return (
            f"cannot attach to process {pid}: operation not permitted "
            "(check /proc/sys/kernel/yama/ptrace_scope, that you own the process or are root, "
            "and that no other debugger is attached)"
        )
    if err == errno_mod.ESRCH:
        return f"cannot attach to process {pid}: no such process"
    return f"cannot attach to process {pid}: {os.strerror(err)}"

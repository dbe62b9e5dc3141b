"""The stub face of the harness: the same scenario through the real GDB against any gdbserver-like stub.

`StressConfig.stub` is a command template: `{port}` (required) becomes a free TCP port, `{prog}` the
program and `{args}` its arguments (appended when the template names neither), e.g.

    gdbserver 127.0.0.1:{port} {prog} {args}
    qemu-x86_64 -g {port} {prog} {args}
    ptstub 127.0.0.1:{port} {prog} {args}

The harness starts the stub in its own session with the program's stdout captured (so the
program's protocol lines can be read), waits until the port listens (`procs.wait_listening`), then
runs `gdb -nx -batch -x gdb_script.py` and follows its messages. No message within `--timeout` is a
hang: the program's threads are dumped from /proc and everything is killed. Whatever happens, the
stub, GDB and everything they started are gone when `run_stub` returns.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ptstub.errors import LaunchError
from ptstub.linux.program import resolve_program
from ptstub.stress import procs
from ptstub.stress.dump import dump_proc
from ptstub.stress.model import (
    Breakpoint,
    ProgramEnd,
    Report,
    StressConfig,
    StressSetupError,
    ThreadDump,
    Violation,
    ViolationKind,
)
from ptstub.stress.verdict import RunRecord, build_report

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gdb_script.py")
STUB_EXIT_GRACE_S = 5.0
GDB_EXIT_GRACE_S = 5.0
Progress = Callable[[int, float], None]


@dataclass
class _Session:
    """What the harness learnt from GDB's messages."""

    connected: bool = False
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    hung: bool = False
    last_hits: int = 0
    budget: bool = False
    dump: tuple[ThreadDump, ...] = ()
    pids: list[int] = field(default_factory=list)  # the stub and what it started, seen once GDB connected


def stub_command(template: str, port: int, argv: tuple[str, ...]) -> list[str]:
    """Substitute the template's placeholders; StressSetupError if it is unusable."""
    if "{port}" not in template:
        raise StressSetupError("--stub: the command must contain {port} (where the stub listens)")
    if "{prog}" not in template and "{args}" not in template:
        template += " {prog} {args}"
    text = (
        template.replace("{port}", str(port))
        .replace("{prog}", shlex.quote(argv[0]))
        .replace("{args}", " ".join(shlex.quote(a) for a in argv[1:]))
    )
    try:
        command = shlex.split(text)
    except ValueError as err:
        raise StressSetupError(f"--stub: cannot parse the command: {err}") from None
    if not command or shutil.which(command[0]) is None:
        raise StressSetupError(f"--stub: command not found: {command[0] if command else '(empty)'}")
    return command


def check_symbols(program: str, names: list[str]) -> None:
    """Fail early (before anything starts) on a symbol the program does not define."""
    wanted = {n.lstrip("*") for n in names if not n.lstrip("*").lower().startswith("0x")}
    if not wanted:
        return
    defined: set[str] = set()
    try:
        with open(program, "rb") as f:
            elf = ELFFile(f)
            for section_name in (".symtab", ".dynsym"):
                section = elf.get_section_by_name(section_name)
                if section is not None:
                    symbols = section.iter_symbols()  # type: ignore[attr-defined]  # a SymbolTableSection
                    defined.update(s.name for s in symbols if s["st_shndx"] != "SHN_UNDEF")
    except (OSError, ELFError):
        return  # a script or an unreadable file: let GDB say what it thinks
    missing = sorted(wanted - defined)
    if missing:
        raise StressSetupError(f"no symbol {missing[0]!r} in {program}")


def run_stub(config: StressConfig, progress: Progress | None = None) -> Report:
    """Run the scenario through GDB and the stub `config.stub`, and judge the stub."""
    try:
        program = resolve_program(config.argv[0])
    except LaunchError as err:
        raise StressSetupError(str(err)) from None
    check_symbols(program, [*config.breaks, *config.frozen])
    gdb = shutil.which(config.gdb)
    if gdb is None:
        raise StressSetupError(f"GDB not found: {config.gdb}")
    argv = (program, *config.argv[1:])
    port = procs.free_port()
    command = stub_command(config.stub or "", port, argv)
    record = RunRecord("stub", breakpoints=tuple(Breakpoint(s, None) for s in config.breaks), functions=config.breaks)
    with tempfile.TemporaryDirectory(prefix="ptstub-stress-") as work:
        out_path = os.path.join(work, "stub.out")
        err_path = os.path.join(work, "stub.err")
        with open(out_path, "wb") as out_file, open(err_path, "wb") as err_file:
            stub = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out_file, stderr=err_file, start_new_session=True
            )
        pids: list[int] = []
        try:
            pids = _serve(config, record, stub, gdb, port, argv, work, progress)
        finally:
            failed = {kind for kind, _ in record.violations.totals} & {ViolationKind.DEADLOCK, ViolationKind.STUB}
            _stop_stub(stub, record, pids, program, hung=bool(failed))
        with open(out_path, "rb") as f:
            text = f.read().decode(errors="replace")
    return build_report(config, record, text)


def _serve(
    config: StressConfig,
    record: RunRecord,
    stub: subprocess.Popen[bytes],
    gdb: str,
    port: int,
    argv: tuple[str, ...],
    work: str,
    progress: Progress | None,
) -> list[int]:
    """Wait for the stub, run GDB against it, record what happened; the pids to clean up after."""
    why = procs.wait_listening(port, stub, config.listen_timeout)
    if why is not None:
        record.violate(Violation(ViolationKind.STUB, f"the stub {why}{_last_line(work, 'stub.err')}"))
        procs.kill_tree(stub)  # a stub that does not listen will not end by itself
        return []
    session = _run_gdb(config, gdb, port, argv, work, progress, stub)
    _record_session(config, record, session, stub, work)
    return session.pids


def _run_gdb(
    config: StressConfig,
    gdb: str,
    port: int,
    argv: tuple[str, ...],
    work: str,
    progress: Progress | None,
    stub: subprocess.Popen[bytes],
) -> _Session:
    settings = {
        "program": argv[0],
        "address": f"127.0.0.1:{port}",
        "breaks": list(config.breaks),
        "frozen": list(config.frozen),
        "hits": config.hits,
        "duration": config.duration,
    }
    config_path = os.path.join(work, "gdb.json")
    with open(config_path, "w") as f:
        json.dump(settings, f)
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, PTSTUB_STRESS_CONFIG=config_path, PTSTUB_STRESS_FD=str(write_fd))
    with open(os.path.join(work, "gdb.log"), "wb") as log:
        process = subprocess.Popen(
            [gdb, "-nx", "-batch", "-x", SCRIPT],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    os.close(write_fd)
    session = _Session()
    try:
        with os.fdopen(read_fd, "rb") as channel:
            _follow(session, channel, config.timeout, progress, stub)
        if session.hung:
            session.dump = dump_proc(_program_pid(stub, argv[0]))
            procs.kill_tree(process)
    finally:
        procs.stop_process(process, GDB_EXIT_GRACE_S)  # kills it (and its tree) if it lingers
    return session


def _follow(
    session: _Session, channel: IO[bytes], timeout: float, progress: Progress | None, stub: subprocess.Popen[bytes]
) -> None:
    """Read GDB's messages until it is done; no message within `timeout` marks a hang."""
    buffer = b""
    fd = channel.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            session.hung = True
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            return  # GDB exited (closed its end)
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"p "):
                _on_progress(session, line, progress)
            else:
                _on_message(session, json.loads(line), progress)
            if session.connected and not session.pids:
                session.pids = [stub.pid, *procs.descendants(stub.pid)]


def _on_progress(session: _Session, line: bytes, progress: Progress | None) -> None:
    _, hits, elapsed = line.split()
    session.last_hits = int(hits)
    if progress is not None:
        progress(session.last_hits, float(elapsed))


def _on_message(session: _Session, message: dict[str, Any], progress: Progress | None) -> None:
    event = message.pop("event")
    if event == "connected":
        session.connected = True
    elif event == "budget":
        session.budget = True
    elif event == "result":
        session.result = message
    elif event == "error":
        session.error = message


def _record_session(
    config: StressConfig, record: RunRecord, session: _Session, stub: subprocess.Popen[bytes], work: str
) -> None:
    """Turn GDB's messages (or their absence) into the run record."""
    record.dump = session.dump
    if session.error is not None:
        if session.error.get("kind") == "usage":
            raise StressSetupError(session.error["message"])
        record.violate(
            Violation(
                ViolationKind.STUB,
                f"GDB could not connect to the stub: {session.error['message']}{_last_line(work, 'stub.err')}",
            )
        )
        return
    if session.hung:
        record.complete = False
        record.hits = session.last_hits
        what = "after the run (program still running)" if session.budget else f"after {session.last_hits} hits"
        record.violate(
            Violation(
                ViolationKind.DEADLOCK,
                f"no stop reported through the stub within {config.timeout:g} s {what}; GDB and the stub were killed",
            )
        )
        record.end = ProgramEnd("killed-by-harness")
        return
    if session.result is None:
        record.violate(Violation(ViolationKind.STUB, f"GDB ended without a result{_last_line(work, 'gdb.log')}"))
        return
    _record_result(record, session.result)


def _record_result(record: RunRecord, result: dict[str, Any]) -> None:
    record.hits = result["hits"]
    record.elapsed_s = result["elapsed"]
    record.seen = {(name, tid): n for name, tid, n in result["seen"]}
    record.signals = dict(result["signals"])
    record.stops = record.hits + sum(record.signals.values())
    record.complete = result["complete"]
    for v in result["violations"]:
        record.violate(Violation(ViolationKind(v["kind"]), v["message"], v["tid"], v["address"]))
    for kind, total in result["totals"].items():
        record.violations.bump(ViolationKind(kind), total - sum(1 for v in result["violations"] if v["kind"] == kind))
    if result["error"]:
        record.complete = False
        record.violate(Violation(ViolationKind.STUB, f"the session broke after {record.hits} hits: {result['error']}"))
    exit_info = result["exit"]
    if exit_info is not None and not result["error"]:  # GDB also "exits" the inferior of a lost connection
        code = exit_info["code"]
        record.end = ProgramEnd("exited", code=code) if code is not None else ProgramEnd("killed")


def _stop_stub(stub: subprocess.Popen[bytes], record: RunRecord, pids: list[int], program: str, hung: bool) -> None:
    """Let the stub exit by itself after the session; kill it and anything it left behind otherwise."""
    killed = procs.kill_tree(stub) if hung else False  # a session that failed will not end by itself
    status = procs.stop_process(stub, STUB_EXIT_GRACE_S)
    if status is None:
        record.notes.append(f"the stub did not exit within {STUB_EXIT_GRACE_S:g} s after the session; killed")
    elif status < 0 and not killed:
        record.notes.append(f"the stub was killed by signal {-status}")
    elif status != 0 and record.end.how == "exited" and status != record.end.code:
        record.notes.append(f"the stub exited with status {status}")
    for pid in pids:
        if pid != stub.pid and _runs(pid, program):
            procs.kill_pid(pid)
            record.notes.append(f"process {pid} ({program}) was left running by the stub; killed")


def _runs(pid: int, program: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X") and os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(program)
    except (OSError, IndexError):
        return False


def _program_pid(stub: subprocess.Popen[bytes], program: str) -> int:
    """The traced program's pid: a descendant of the stub running `program`, else the stub itself (qemu)."""
    for pid in procs.descendants(stub.pid):
        if _runs(pid, program):
            return pid
    return stub.pid


def _last_line(work: str, name: str) -> str:
    try:
        with open(os.path.join(work, name), "rb") as f:
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f" (its last output: {lines[-1]})" if lines else ""

"""Bad input: each case gets its own `PtstubError` subclass with a one-line message, and leaves no
stuck, half-traced or unreaped process behind (the module-wide `no_leftover_children` check), and the
engine stays usable after a refused request.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest
from helpers import launched, task_ids, task_state, time_limit, tracer_pids

import ptstub
from ptstub.errors import (
    AttachError,
    LaunchError,
    MemoryAccessError,
    NoSuchThreadError,
    ProcessGoneError,
    PtstubError,
)
from ptstub.events import BreakpointHit, Exited

pytestmark = pytest.mark.usefixtures("no_leftover_children")

UNMAPPED = 0x10
GONE_TID = 999_999


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert message and "\n" not in message and len(message) < 300, f"not a one-line message: {message!r}"
    assert isinstance(err.value, PtstubError)
    return message


def elf_header(elf_class: int, machine: int) -> bytes:
    """A minimal little-endian ELF executable header (ET_EXEC) for `machine`; nothing after it."""
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    if elf_class == 2:
        return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0x400000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, machine, 1, 0x8048000, 52, 0, 0, 52, 32, 0, 40, 0, 0)


# ------------------------------------------------------------------------------------------ launch
@time_limit(10)
def test_launch_missing_program(tmp_path) -> None:
    with pytest.raises(LaunchError) as err:
        ptstub.launch([str(tmp_path / "no-such-program")])
    assert "no-such-program" in one_line(err)


@time_limit(10)
def test_launch_program_not_in_path() -> None:
    with pytest.raises(LaunchError) as err:
        ptstub.launch(["ptstub-no-such-program-in-path"])
    assert "ptstub-no-such-program-in-path" in one_line(err)


@time_limit(10)
def test_launch_not_executable(fixture_path, tmp_path) -> None:
    program = tmp_path / "spin"
    shutil.copy(fixture_path("spin"), program)
    program.chmod(0o644)
    with pytest.raises(LaunchError) as err:
        ptstub.launch([str(program)])
    one_line(err)


@time_limit(10)
def test_launch_directory(tmp_path) -> None:
    with pytest.raises(LaunchError) as err:
        ptstub.launch([str(tmp_path)])
    one_line(err)


@time_limit(10)
@pytest.mark.parametrize(
    "content",
    [b"just some text, no #! line\n", elf_header(2, 183), elf_header(1, 3)],
    ids=["text-file", "aarch64-elf", "i386-elf"],
)
def test_launch_not_an_x86_64_elf(tmp_path, content: bytes) -> None:
    program = tmp_path / "program"
    program.write_bytes(content)
    program.chmod(0o755)
    with pytest.raises(LaunchError) as err:
        ptstub.launch([str(program)])
    one_line(err)


@time_limit(10)
def test_launch_in_missing_directory(fixture_path, tmp_path) -> None:
    with pytest.raises(LaunchError) as err:
        ptstub.launch([fixture_path("spin")], cwd=str(tmp_path / "no-such-dir"))
    one_line(err)


# ------------------------------------------------------------------------------------------ attach
@time_limit(10)
def test_attach_to_missing_pid() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        missing = int(f.read())  # pids are always below pid_max
    for pid in (missing, 0, -1):
        with pytest.raises(AttachError) as err:
            ptstub.attach(pid)
        one_line(err)


@time_limit(10)
def test_attach_to_self() -> None:
    with pytest.raises(AttachError) as err:
        ptstub.attach(os.getpid())
    one_line(err)


@time_limit(20)
def test_attach_to_already_traced_process(fixture_path, native_process) -> None:
    with native_process([fixture_path("spin"), "--threads", "2"], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "ready\n"
        with ptstub.attach(proc.pid) as inf:
            with pytest.raises(AttachError) as err:
                ptstub.attach(proc.pid)
            assert "traced" in one_line(err)
            assert inf.threads(), "the first attach no longer works after the refused second one"
        assert set(tracer_pids(proc.pid).values()) == {0}


def attach_as_nobody(pid: int) -> str:
    """Try `ptstub.attach(pid)` in a forked child running as user nobody; return 'Type<TAB>message'."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child only
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                ptstub.attach(pid).detach()
                result = "attached\t"
            except Exception as err:  # report whatever it was to the parent
                result = f"{type(err).__name__}\t{err}"
            os.write(write_end, result.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        result = f.read()
    os.waitpid(child, 0)
    return result


@time_limit(20)
def test_attach_not_permitted_says_what_to_check(fixture_path, native_process) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the attach as another user")
    with native_process([fixture_path("spin"), "--threads", "2"], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline() == "ready\n"
        kind, _, message = attach_as_nobody(proc.pid).partition("\t")
        assert kind == "AttachError", f"{kind}: {message}"
        assert "\n" not in message
        assert "not permitted" in message, f"an EPERM attach must say what to check, got: {message!r}"
        assert set(tracer_pids(proc.pid).values()) == {0}
        assert all(task_state(proc.pid, tid)[0] not in "tT" for tid in task_ids(proc.pid))


# ------------------------------------------------------------------------------------------ a live process
@time_limit(20)
def test_unmapped_address(fixture_path) -> None:
    with launched([fixture_path("spin"), "--threads", "1", "--busy", "1"]) as inf:
        with pytest.raises(MemoryAccessError) as err:
            inf.insert_breakpoint(UNMAPPED)
        one_line(err)
        with pytest.raises(MemoryAccessError) as err:
            inf.read_memory(UNMAPPED, 8)
        one_line(err)
        with pytest.raises(MemoryAccessError) as err:
            inf.write_memory(UNMAPPED, b"\x90")
        one_line(err)
        hit_target = inf.symbol("hit_target")  # and the engine still works
        inf.insert_breakpoint(hit_target)
        event = inf.cont()
        assert isinstance(event, BreakpointHit) and event.pc == hit_target, event


@time_limit(20)
def test_thread_that_does_not_exist(fixture_path) -> None:
    with launched([fixture_path("spin"), "--threads", "1"]) as inf:
        for call in (
            lambda: inf.get_regs(GONE_TID),
            lambda: inf.set_regs(GONE_TID, {"rax": 0}),
            lambda: inf.step(GONE_TID),
        ):
            with pytest.raises(NoSuchThreadError) as err:
                call()
            one_line(err)
        assert inf.get_regs(inf.pid)["rip"]


@time_limit(20)
def test_unknown_symbol(fixture_path) -> None:
    with launched([fixture_path("spin")]) as inf:
        with pytest.raises(PtstubError) as err:
            inf.symbol("no_such_symbol_anywhere")
        assert "no_such_symbol_anywhere" in one_line(err)


@time_limit(20)
def test_requests_after_exit(fixture_path) -> None:
    with launched([fixture_path("simple")]) as inf:
        address = inf.symbol("global_counter")
        assert inf.cont() == Exited(inf.pid, 0)
        for call in (
            lambda: inf.read_memory(address, 4),
            lambda: inf.insert_breakpoint(address),
            lambda: inf.cont(),
            lambda: inf.threads(),
        ):
            with pytest.raises(ProcessGoneError) as err:
                call()
            one_line(err)


@time_limit(20)
def test_kill_is_final(fixture_path) -> None:
    with launched([fixture_path("spin"), "--threads", "2"]) as inf:
        pid = inf.pid
        inf.kill()
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # kill() reaped it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # no such process any more

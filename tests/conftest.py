"""Fixtures shared by every test directory: the fixtures/ programs and untraced helper processes.

- `fixture_path(name)`: builds fixtures/ once per session with CMake into build/fixtures/ (under a file
  lock, so concurrent pytest runs in one checkout do not build over each other) and returns the path of
  one program. fixtures/README.md documents what each program prints.
- `native_process(argv, **popen_kwargs)`: a context manager that starts an untraced helper with
  subprocess and always kills and reaps it, however the test ends.
- `no_leftover_children`: opt-in check (`pytest.mark.usefixtures`) that a test left no child process of
  the pytest process behind; leftovers are killed, reaped, and the test errors.

Caution (docs/kernel-facts.md §7): never call `poll()`/`wait()` on a Popen whose process ptstub is tracing; the
waitpid would steal ptrace stops. Detach or close the Inferior first, as `native_process` nesting does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES_SOURCE = REPO_ROOT / "fixtures"
FIXTURES_BUILD = REPO_ROOT / "build" / "fixtures"


def build_fixtures() -> pathlib.Path:
    """Configure and build fixtures/ into build/fixtures/; raise RuntimeError with CMake's output."""
    FIXTURES_BUILD.parent.mkdir(parents=True, exist_ok=True)
    lock_path = FIXTURES_BUILD.parent / "fixtures.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for command in (
            ["cmake", "-S", str(FIXTURES_SOURCE), "-B", str(FIXTURES_BUILD), "-DCMAKE_BUILD_TYPE=Debug"],
            ["cmake", "--build", str(FIXTURES_BUILD), "-j2"],
        ):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return FIXTURES_BUILD


@pytest.fixture(scope="session")
def fixture_path() -> Callable[[str], str]:
    """`fixture_path(name)`: absolute path of the built fixtures/ program `name`."""
    try:
        build = build_fixtures()
    except (RuntimeError, OSError) as err:
        pytest.fail(f"cannot build fixtures/: {err}", pytrace=False)

    def path(name: str) -> str:
        program = build / name
        if not program.is_file():
            pytest.fail(f"fixture program {name!r} was not built (is it in fixtures/CMakeLists.txt?)", pytrace=False)
        return str(program)

    return path


@contextlib.contextmanager
def _native_process(argv: list[str], **popen_kwargs: object) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(argv, **popen_kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        # Popen.kill() polls first, so a process that is already reaped is never signalled by pid.
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def native_process() -> Callable[..., contextlib.AbstractContextManager[subprocess.Popen]]:
    """`with native_process(argv, stdout=subprocess.PIPE) as proc:` an untraced helper, killed and reaped after."""
    return _native_process


def children_of(pid: int) -> dict[int, str]:
    """Processes whose parent is `pid`: {pid: command line} (read from /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return found


@pytest.fixture
def no_leftover_children() -> Iterator[None]:
    """Fail (at teardown) a test that leaves child processes behind; they are killed and reaped first."""
    before = set(children_of(os.getpid()))
    yield
    leftovers = {pid: cmd for pid, cmd in children_of(os.getpid()).items() if pid not in before}
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if leftovers:
        pytest.fail(f"test left child processes behind (killed now): {leftovers}", pytrace=False)

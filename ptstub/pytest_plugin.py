"""ptstub's pytest plugin (entry point `pytest11`): traced programs as fixtures, and stress runs in tests.

Fixtures:
- `ptstub_launch(argv, **launch_kwargs)` -> `ptstub.Inferior`: the program starts traced and stopped;
  at teardown it is killed (a launched process) or detached (an attached one), even when the test
  failed or the Inferior was left running.
- `ptstub_attach(pid)` -> `ptstub.Inferior`: the same for a running process.
- `ptstub_stress(argv=None, *, breaks=..., frozen=..., ...)` -> `ptstub.stress.Report`: run a stress
  scenario (`ptstub.stress.run_stress`) and fail the test with the harness's verdict line when an
  invariant broke (`check=False` returns the report instead).

When a test that used `ptstub_launch` / `ptstub_attach` fails, its report gets a "ptstub threads"
section: every live thread of every Inferior with its tid, name, state and rip (and the function).

The plugin is loaded into every pytest run of an environment where ptstub is installed, so it imports
nothing of its own at load time: the engine's API and the harness are imported inside the fixtures.
(The entry point imports the `ptstub` package, whose `__init__` loads nothing until a name is used.)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ptstub.linux.inferior import Inferior
    from ptstub.stress.model import Report

_INFERIORS = pytest.StashKey[list[Any]]()


def _register(item: pytest.Item, inferior: Any) -> None:
    item.stash.setdefault(_INFERIORS, []).append(inferior)


def _release_all(inferiors: list[Any]) -> list[str]:
    """Kill launched and detach attached Inferiors; the problems met, as lines (cleanup never raises)."""
    from ptstub.errors import PtstubError

    problems = []
    for inferior in reversed(inferiors):
        try:
            _stop_world(inferior)
            inferior.close()
        except (PtstubError, OSError) as err:
            problems.append(f"process {inferior.pid}: {err}")
    inferiors.clear()
    return problems


def _stop_world(inferior: Any) -> None:
    """Bring a world the test left running to a stop before close(): kill and detach expect it stopped.

    A program that ran on to its exit after `resume()` sits in exit stops that only a wait collects;
    without this, close() waited for it forever. When the world is already stopped, `wait` answers
    at once that nothing runs (TargetError), which is fine here.
    """
    from ptstub.errors import PtstubError

    if not inferior.alive:
        return
    try:
        inferior.interrupt()
        inferior.wait(5.0)
    except PtstubError:
        pass


@pytest.fixture
def ptstub_launch(request: pytest.FixtureRequest) -> Iterator[Callable[..., Inferior]]:
    """`ptstub_launch(argv, env=None, cwd=None, **kwargs)`: launch `argv` traced; cleaned up after the test."""
    import ptstub

    launched: list[Any] = []

    def launch(argv: list[str], *args: Any, **kwargs: Any) -> Inferior:
        inferior = ptstub.launch(list(argv), *args, **kwargs)
        launched.append(inferior)
        _register(request.node, inferior)
        return inferior

    yield launch
    problems = _release_all(launched)
    if problems:
        pytest.fail("ptstub_launch cleanup: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def ptstub_attach(request: pytest.FixtureRequest) -> Iterator[Callable[..., Inferior]]:
    """`ptstub_attach(pid)`: attach to a running process; detached after the test."""
    import ptstub

    attached: list[Any] = []

    def attach(pid: int, **kwargs: Any) -> Inferior:
        inferior = ptstub.attach(pid, **kwargs)
        attached.append(inferior)
        _register(request.node, inferior)
        return inferior

    yield attach
    problems = _release_all(attached)
    if problems:
        pytest.fail("ptstub_attach cleanup: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def ptstub_stress() -> Callable[..., Report]:
    """`ptstub_stress(argv=None, *, breaks=(), frozen=(), check=True, **config)`: one stress run.

    Without `argv` the bundled stress program runs (with `threads`, `calls`, `syscall`, `churn`, `idle`
    for it, as `ptstub stress --stress-*`) and `breaks` / `frozen` default to its `hit_target` /
    `frozen_counter`. Other keywords are
    `StressConfig` fields (hits, duration, timeout, seed, expect_exit, stub, gdb, listen_timeout).
    """

    def run(
        argv: list[str] | tuple[str, ...] | None = None,
        *,
        breaks: list[str] | tuple[str, ...] = (),
        frozen: list[str] | tuple[str, ...] = (),
        check: bool = True,
        threads: int = 4,
        calls: int = 200,
        syscall: str = "nanosleep",
        churn: int = 0,
        idle: int = 0,
        **config: Any,
    ) -> Report:
        from ptstub.stress import StressConfig, bundled, run_stress

        if argv is None:
            argv = bundled.argv(threads, calls, syscall, churn=churn, idle=idle)
            breaks = breaks or (bundled.BREAK,)
            frozen = frozen or (bundled.FROZEN,)
        report = run_stress(StressConfig(argv=tuple(argv), breaks=tuple(breaks), frozen=tuple(frozen), **config))
        if check and not report.passed:
            pytest.fail(f"ptstub stress {' '.join(argv)}: {report.summary()}", pytrace=False)
        return report

    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failing test that holds Inferiors, add every thread's state to its report."""
    outcome = yield
    inferiors = item.stash.get(_INFERIORS, None)
    if not inferiors:
        return
    report = outcome.get_result()
    if report.failed:
        report.sections.append(("ptstub threads", _describe_threads(inferiors)))


def _describe_threads(inferiors: list[Any]) -> str:
    from ptstub.errors import PtstubError
    from ptstub.stress.symbolize import read_maps, symbolize

    lines = []
    for inferior in inferiors:
        if not inferior.alive:
            lines.append(
                f"process {inferior.pid}: ended (exit code {inferior.exit_code}, signal {inferior.exit_signal})"
            )
            continue
        maps = read_maps(inferior.pid)
        lines.append(f"process {inferior.pid}:")
        try:
            threads = inferior.threads()
        except PtstubError as err:
            lines.append(f"  threads unreadable: {err}")
            continue
        for info in threads:
            try:
                rip = inferior.get_regs(info.tid)["rip"]
                where = f"rip={rip:#x} {symbolize(maps, rip)}".rstrip()
            except PtstubError:
                where = "rip=? (registers unreadable: the thread is running)"
            lines.append(f"  tid {info.tid} ({info.name}) {info.state.value}: {where}")
    return "\n".join(lines)

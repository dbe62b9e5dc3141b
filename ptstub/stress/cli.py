"""`ptstub stress`: the command line of the breakpoint stress harness (dispatched from `ptstub.cli`).

    ptstub stress PROG [ARGS...] --break SYM[,SYM...] [--hits N | --duration S] [--frozen VAR[,VAR...]]
                  [--seed S] [--timeout S] [--expect-exit N] [--json FILE] [--junit FILE]
    ptstub stress --stub 'CMD {port} {prog} {args}' [PROG [ARGS...]] [options]
    ptstub stress [options] -- PROG [ARGS...]

Harness options are recognised anywhere before `--`; the first other word is PROG and every other word
is passed to it (so a program option that is also a harness option must come after `--`). Without
PROG the bundled stress program runs (`--stress-threads/-calls/-syscall/-churn/-idle`), with `--break
hit_target --frozen frozen_counter` by default; the `--stress-*` options are refused with a PROG (they
would not reach it), and are prefixed so that a program's own `--threads` or `--churn` is not taken.
Exit status: 0 every invariant held, 1 one failed (or the run could not be completed), 2 usage error.
One line on stderr for any error, never a traceback.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
PROG_NAME = "ptstub stress"

HELP = """\
usage: ptstub stress PROG [ARGS...] --break SYM[,SYM...] [options]
       ptstub stress --stub 'CMD' [PROG [ARGS...]] [options]
       ptstub stress [options] -- PROG [ARGS...]

Run PROG under ptstub's all-stop engine with breakpoints on SYM (functions or 0x addresses of the
main executable) and check at every stop that the world is really stopped. Without PROG, run the
bundled stress program (built with cc) with --break hit_target --frozen frozen_counter.

options:
  --break SYM[,SYM...]    breakpoints to keep (repeatable)
  --hits N                end the measured phase after N hits
  --duration S            end the measured phase after S seconds
  --frozen VAR[,VAR...]   globals that must not change while stopped; *VAR checks what VAR points to
  --seed S                seed of the engine's fair choice among simultaneous hits
  --timeout S             no stop within S seconds is a deadlock (default 10)
  --expect-exit N         the program's normal exit status (default 0)
  --json FILE             write the report as JSON
  --junit FILE            write the report as JUnit XML
  --stub CMD              check the gdbserver-compatible stub CMD through GDB instead; CMD gets
                          {port} (required), {prog} and {args} substituted, e.g.
                          'gdbserver 127.0.0.1:{port} {prog} {args}' or 'qemu-x86_64 -g {port} {prog} {args}'
  --listen-timeout S      how long the stub may take to listen (default 10)
  --gdb PATH              the GDB to drive in --stub mode (default: gdb)
  --stress-threads N      bundled program: worker threads (default 4)
  --stress-calls M        bundled program: calls of hit_target per worker (default 500)
  --stress-syscall KIND   bundled program: the main thread's long blocking call (default nanosleep):
                          {kinds}
  --stress-churn S        bundled program: S spawner threads (0-64) create and join short-lived
                          threads, each calling hit_target once, while the workers run; their hits
                          are counted apart and left out of the fairness index (default 0)
  --stress-idle N         bundled program: N extra threads (0-10000) blocked in read() on a pipe for
                          the whole run, woken at its end (default 0)

exit status: 0 all invariants held, 1 an invariant failed, 2 usage error
"""


class UsageError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError
    return value


def _count_up_to(maximum: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = int(text)
        if not 0 <= value <= maximum:
            raise ValueError
        return value

    return convert


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ValueError
    return names


@dataclass
class Options:
    program: list[str] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    hits: int | None = None
    duration: float | None = None
    seed: int | None = None
    timeout: float = 10.0
    expect_exit: int = 0
    json: str | None = None
    junit: str | None = None
    stub: str | None = None
    listen_timeout: float = 10.0
    gdb: str = "gdb"
    stress_threads: int = 4
    stress_calls: int = 500
    stress_syscall: str = "nanosleep"
    stress_churn: int = 0
    stress_idle: int = 0
    given: set[str] = field(default_factory=set)  # the options the command line named


# option -> (attribute, converter, what a good value looks like, accumulates)
OPTIONS: dict[str, tuple[str, Callable[[str], Any], str, bool]] = {
    "--break": ("breaks", _names, "SYM[,SYM...]", True),
    "--frozen": ("frozen", _names, "VAR[,VAR...]", True),
    "--hits": ("hits", _positive_int, "a positive integer", False),
    "--duration": ("duration", _positive_float, "a positive number of seconds", False),
    "--seed": ("seed", int, "an integer", False),
    "--timeout": ("timeout", _positive_float, "a positive number of seconds", False),
    "--expect-exit": ("expect_exit", int, "an exit status (0-255)", False),
    "--json": ("json", str, "a file name", False),
    "--junit": ("junit", str, "a file name", False),
    "--stub": ("stub", str, "a command", False),
    "--listen-timeout": ("listen_timeout", _positive_float, "a positive number of seconds", False),
    "--gdb": ("gdb", str, "a path", False),
    "--stress-threads": ("stress_threads", _positive_int, "a positive integer", False),
    "--stress-calls": ("stress_calls", _positive_int, "a positive integer", False),
    "--stress-syscall": ("stress_syscall", str, "a syscall kind", False),
    "--stress-churn": ("stress_churn", _count_up_to(64), "a number of spawner threads (0-64)", False),
    "--stress-idle": ("stress_idle", _count_up_to(10_000), "a number of idle threads (0-10000)", False),
}


def parse_args(args: list[str]) -> Options:
    """Harness options anywhere before `--`; the first other word is PROG, the rest go with it."""
    opts = Options()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            opts.program.extend(args[i:])
            break
        name, eq, inline = arg.partition("=")
        if name not in OPTIONS:
            if arg.startswith("-") and not opts.program:
                raise UsageError(f"unknown option {arg} (see ptstub stress --help)")
            opts.program.append(arg)
            continue
        if not eq:
            if i >= len(args):
                raise UsageError(f"{name} needs a value")
            inline = args[i]
            i += 1
        _set(opts, name, inline)
    _check(opts)
    return opts


def _set(opts: Options, name: str, text: str) -> None:
    attribute, convert, good, accumulates = OPTIONS[name]
    try:
        value = convert(text)
    except ValueError:
        raise UsageError(f"{name} {text!r}: expected {good}") from None
    opts.given.add(name)
    if accumulates:
        getattr(opts, attribute).extend(value)
    else:
        setattr(opts, attribute, value)


def _check(opts: Options) -> None:
    from ptstub.stress.bundled import SYSCALL_KINDS

    if opts.program and not opts.breaks:
        raise UsageError("--break SYM is required with a program (which functions to break on)")
    bundled_only = sorted(name for name in opts.given if name.startswith("--stress-"))
    if opts.program and bundled_only:
        raise UsageError(f"{bundled_only[0]} sets up the bundled stress program, which does not run with PROG")
    if opts.stress_syscall not in SYSCALL_KINDS:
        raise UsageError(f"--stress-syscall {opts.stress_syscall!r}: expected one of {', '.join(SYSCALL_KINDS)}")
    if not 0 <= opts.expect_exit <= 255:
        raise UsageError(f"--expect-exit {opts.expect_exit}: expected an exit status (0-255)")
    if opts.stub is not None and "{port}" not in opts.stub:
        raise UsageError("--stub: the command must contain {port} (where the stub listens)")


def build_config(opts: Options) -> Any:
    """The `StressConfig` of a parsed command line (builds the bundled program when PROG is absent)."""
    from ptstub.stress import bundled
    from ptstub.stress.model import StressConfig

    argv = tuple(opts.program)
    breaks, frozen = tuple(opts.breaks), tuple(opts.frozen)
    if not argv:
        argv = bundled.argv(
            opts.stress_threads,
            opts.stress_calls,
            opts.stress_syscall,
            churn=opts.stress_churn,
            idle=opts.stress_idle,
        )
        breaks = breaks or (bundled.BREAK,)
        frozen = frozen or (bundled.FROZEN,)
    return StressConfig(
        argv=argv,
        breaks=breaks,
        frozen=frozen,
        hits=opts.hits,
        duration=opts.duration,
        timeout=opts.timeout,
        seed=opts.seed,
        expect_exit=opts.expect_exit,
        stub=opts.stub,
        gdb=opts.gdb,
        listen_timeout=opts.listen_timeout,
    )


def main(args: list[str]) -> int:
    """Run `ptstub stress ARGS`; return the exit status."""
    if any(a in ("-h", "--help") for a in args[: args.index("--") if "--" in args else len(args)]):
        from ptstub.stress.bundled import SYSCALL_KINDS

        print(HELP.replace("{kinds}", ", ".join(SYSCALL_KINDS)), end="")
        return EXIT_PASS
    try:
        opts = parse_args(args)
    except UsageError as err:
        return _error(str(err), EXIT_USAGE)
    return _run(opts)


def _run(opts: Options) -> int:
    from ptstub.errors import PtstubError
    from ptstub.stress import report as render
    from ptstub.stress import run_stress
    from ptstub.stress.model import StressSetupError
    from ptstub.stress.progress import ProgressLine

    progress = ProgressLine.for_stderr()
    try:
        config = build_config(opts)
        result = run_stress(config, progress.update if progress else None)
    except StressSetupError as err:
        return _error(str(err), EXIT_USAGE, progress)
    except (PtstubError, OSError) as err:
        return _error(f"the run failed: {err}", EXIT_FAIL, progress)
    except KeyboardInterrupt:
        return _error("interrupted", 130, progress)
    if progress:
        progress.clear()
    sys.stdout.write(render.render_text(result))
    sys.stdout.flush()
    try:
        if opts.json:
            render.write_json(result, opts.json)
        if opts.junit:
            render.write_junit(result, opts.junit)
    except OSError as err:
        return _error(f"cannot write the report: {err.strerror or err}: {err.filename}", EXIT_FAIL)
    return EXIT_PASS if result.passed else EXIT_FAIL


def _error(message: str, status: int, progress: Any = None) -> int:
    if progress:
        progress.clear()
    print(f"{PROG_NAME}: error: {message}", file=sys.stderr)
    return status

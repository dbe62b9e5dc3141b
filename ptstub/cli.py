"""ptstub's command line: GNU gdbserver's forms and stderr lines, plus `attach` and `stress`.

    ptstub [OPTIONS] COMM PROG [ARGS...]       launch PROG and serve it
    ptstub [OPTIONS] --attach COMM PID         attach to PID and serve it
    ptstub [OPTIONS] --multi COMM [PROG ...]   extended-remote server (vRun / vAttach); PROG started first
    ptstub attach PID [COMM]                   attach, listen on 127.0.0.1:0, print a gdb line
    ptstub stress PROG [ARGS] --break SYM ...  the breakpoint stress harness

COMM is `host:port`, `:port` (127.0.0.1 unless a host is given), `-`/`stdio`, or `unix:PATH`. A launched
program inherits ptstub's stdin, stdout and stderr; over stdio it gets /dev/null and ptstub's stderr.
The stderr lines (`Process X created; pid = N`, `Listening on port N`, ...) are gdbserver's, since
IDEs and GDB's testsuite wait for them. A bad command line prints one line and exits with status 2.
"""

from __future__ import annotations

import _signal
import contextlib
import os
import sys
from collections.abc import Iterator

from ptstub import logs
from ptstub.errors import LaunchError, PtstubError

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

USAGE = """\
Usage:\tptstub [OPTIONS] COMM PROG [ARGS ...]
\tptstub [OPTIONS] --attach COMM PID
\tptstub [OPTIONS] --multi COMM [PROG [ARGS ...]]
\tptstub attach PID [COMM]
\tptstub stress PROG [ARGS ...] --break SYM[,SYM...] [options]  (ptstub stress --help)

COMM may be HOST:PORT or :PORT to listen for a TCP connection (127.0.0.1 unless a host is
given), unix:PATH for a unix socket (created 0600), or '-' or 'stdio' to use stdin/stdout.
PROG is the executable program.  ARGS are arguments passed to inferior.
PID is the process ID to attach to, when --attach is specified.

Operating modes:
  --attach              Attach to running process PID.
  --multi               Start server without a specific program (or with
                        PROG, started first), and only quit when
                        explicitly commanded.
  --once                Exit after the first connection has closed.
  --help                Print this message and then exit.
  --version             Display version information and exit.

Other options:
  --wrapper WRAPPER --  Run WRAPPER to start new programs (directly, not
                        through a shell); PROG is served from its exec.
  --disable-randomization
                        Run PROG with address space randomization disabled (default).
  --no-disable-randomization
                        Don't disable address space randomization when starting PROG.
  --startup-with-shell / --no-startup-with-shell
                        Accepted for compatibility; ptstub starts PROG directly.

Debug options:
  --debug               Enable general debugging output.
  --remote-debug        Enable remote protocol debugging output.
"""

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad command line: one line, exit status 2."""


class Options:
    """The parsed command line (a plain class: `dataclasses` costs ~5 ms to import at start-up)."""

    def __init__(self, comm: str = "", attach_pid: int | None = None, print_gdb_line: bool = False) -> None:
        self.comm = comm
        self.program: list[str] = []
        self.attach_pid = attach_pid
        self.multi = False
        self.once = False
        self.debug = False
        self.remote_debug = False
        self.disable_randomization = True
        self.wrapper: list[str] = []
        self.print_gdb_line = print_gdb_line


IGNORED_FLAGS = {"--startup-with-shell", "--no-startup-with-shell", "--event-loop-debug", "--selftest"}


def parse_args(args: list[str]) -> Options:
    """Parse gdbserver's command line."""
    opts = Options()
    attach = False
    i = 0
    while i < len(args) and args[i].startswith("--"):
        arg = args[i]
        i += 1
        if arg == "--attach":
            attach = True
        elif arg == "--multi":
            opts.multi = True
        elif arg == "--once":
            opts.once = True
        elif arg == "--debug" or arg.startswith("--debug="):
            opts.debug = True
        elif arg.startswith("--debug-format=") or arg.startswith("--disable-packet"):
            pass
        elif arg == "--remote-debug":
            opts.remote_debug = True
        elif arg == "--disable-randomization":
            opts.disable_randomization = True
        elif arg == "--no-disable-randomization":
            opts.disable_randomization = False
        elif arg == "--wrapper":
            try:
                end = args.index("--", i)
            except ValueError:
                raise UsageError("--wrapper needs a command ended by '--'") from None
            opts.wrapper = args[i:end]
            if not opts.wrapper:
                raise UsageError("--wrapper needs a command ended by '--'")
            i = end + 1
        elif arg in IGNORED_FLAGS:
            pass
        elif arg == "--":
            break
        else:
            raise UsageError(f"unknown argument: {arg}")
    rest = args[i:]
    if not rest:
        raise UsageError("missing COMM (e.g. :1234, 127.0.0.1:0 or -)")
    opts.comm = rest[0]
    operands = rest[1:]
    if operands[:1] == ["--attach"]:  # gdbserver still accepts the old `COMM --attach PID` order
        attach = True
        operands = operands[1:]
    if attach:
        if len(operands) != 1 or not operands[0].isdigit():
            raise UsageError("--attach needs exactly one PID")
        opts.attach_pid = int(operands[0])
    elif opts.multi:
        opts.program = operands
    else:
        if not operands:
            raise UsageError("missing PROG (or use --attach PID or --multi)")
        opts.program = operands
    return opts


def run() -> None:
    """The `ptstub` command and `python -m ptstub`: `main()`, then exit without tearing the interpreter
    down. By then the program is killed or let go, the sockets are closed and nothing is left to write
    but what `sys.stdout`/`sys.stderr` buffer; freeing some 130 modules one by one took 10-40
    ms at every stub's exit, which GDB's testsuite waits for at each of its many stub sessions
    (design-notes, "Start-up"). `main()` itself returns, for callers in the same process."""
    code = main()
    import atexit

    atexit._run_exitfuncs()  # what the interpreter's exit runs first: the terminal's foreground (_give_terminal)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("--help", "-h"):
        print(USAGE, end="")
        return 0
    if args and args[0] == "--version":
        from ptstub import __version__

        print(f"ptstub {__version__} (gdbserver-compatible remote stub)")
        return 0
    if args and args[0] == "stress":
        from ptstub.stress.cli import main as stress_main

        return stress_main(args[1:])
    try:
        if args and args[0] == "attach":
            opts = parse_attach_subcommand(args[1:])
        else:
            opts = parse_args(args)
        from ptstub.loop import parse_comm

        endpoint = parse_comm(opts.comm)
    except (UsageError, ValueError) as err:
        print(f"ptstub: {err}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(opts.debug)
    try:
        return run_server(opts, endpoint)
    except PtstubError as err:
        print(str(err), file=sys.stderr)
        if isinstance(err, LaunchError) and not isinstance(err, StartupEnded):  # gdbserver's words when exec fails
            print("During startup program exited with code 127.", file=sys.stderr)
        print("Exiting", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"ptstub: {err.strerror or err}", file=sys.stderr)
        print("Exiting", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def parse_attach_subcommand(args: list[str]) -> Options:
    """`ptstub attach PID [COMM]`: listen on 127.0.0.1:0 unless COMM says otherwise."""
    if not args or not args[0].isdigit() or len(args) > 2:
        raise UsageError("usage: ptstub attach PID [COMM]")
    return Options(comm=args[1] if len(args) == 2 else "127.0.0.1:0", attach_pid=int(args[0]), print_gdb_line=True)


def _remote_debug_printer(direction: str, body: bytes) -> None:
    """Packets in gdbserver's `--remote-debug` style, so traces of the two can be diffed."""
    text = body.decode("latin-1")
    if direction == "getpkt":
        print(f'getpkt ("{text}");', file=sys.stderr, flush=True)
    elif direction == "notif":
        print(f'putpkt ("%{text}#{sum(body) & 0xFF:02x}"); [notif]', file=sys.stderr, flush=True)
    else:
        print(f'putpkt ("${text}#{sum(body) & 0xFF:02x}");', file=sys.stderr, flush=True)


def _launcher(opts: Options, stdio: bool) -> Any:
    """`start(argv, settings)`: launch a program as gdbserver does, print `Process X created`.

    The program inherits ptstub's stdin, stdout and stderr, except when GDB talks over ptstub's own
    stdin/stdout (`-`/`stdio`): then, as gdbserver's linux_ptrace_fun does in its child before each
    exec, it reads /dev/null and writes to ptstub's stderr, so it can neither eat GDB's packets nor
    write into the protocol stream, and its output still reaches the user.
    """
    from ptstub.linux import launch
    from ptstub.settings import LaunchSettings

    def start(argv: list[str], settings: LaunchSettings) -> Any:
        if stdio:
            print("stdin/stdout redirected", file=sys.stderr, flush=True)  # gdbserver's, once per launch
        with _program_stdio(stdio) as (stdin, stdout, stderr):
            inferior = launch(
                opts.wrapper + argv,
                env=settings.environment,
                cwd=settings.working_directory,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                disable_randomization=settings.disable_randomization,
                new_process_group=True,
            )
        if opts.wrapper:
            _skip_wrapper_exec(inferior)
        _give_terminal(inferior.pid)
        print(f"Process {argv[0]} created; pid = {inferior.pid}", file=sys.stderr, flush=True)
        return inferior

    return start


@contextlib.contextmanager
def _program_stdio(stdio: bool) -> Iterator[tuple[int | None, int | None, int | None]]:
    """The fds a launched program gets as its stdin, stdout and stderr (None: ptstub's own)."""
    if not stdio:
        yield None, None, None
        return
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # the child's dup2 clears close-on-exec
    try:
        yield null, sys.stderr.fileno(), sys.stderr.fileno()
    finally:
        os.close(null)


def _give_terminal(pid: int) -> None:
    """Make the program's process group the foreground of our terminal, as gdbserver does.

    The program runs in its own process group (so a Ctrl-C typed there is not ptstub's); without
    this its reads from the shared terminal stop it with SIGTTIN (gdb.base/interrupt.exp). Like
    gdbserver's post_fork_inferior: SIGTTOU/SIGTTIN ignored, the old foreground restored at exit.
    """
    import atexit

    try:
        fd = sys.stderr.fileno()
        if not os.isatty(fd):
            return
        _signal.signal(_signal.SIGTTOU, _signal.SIG_IGN)
        _signal.signal(_signal.SIGTTIN, _signal.SIG_IGN)
        old = os.tcgetpgrp(fd)
        os.tcsetpgrp(fd, pid)
    except (OSError, ValueError):
        return  # not our controlling terminal, or no terminal: nothing to hand over
    atexit.register(_restore_terminal, fd, old)


def _restore_terminal(fd: int, pgrp: int) -> None:
    try:
        os.tcsetpgrp(fd, pgrp)
    except OSError:
        pass  # the terminal or the old group is gone


class StartupEnded(LaunchError):
    """The program, or its --wrapper, ended before it could be served; `str()` is gdbserver's line."""


def _skip_wrapper_exec(inferior: Any) -> None:
    """With --wrapper, run the wrapper until it execs the program, then stop there.

    gdbserver counts one exec for the wrapper and one for the program (plus the shell's, which ptstub
    has not: it starts the wrapper directly), passing the wrapper's signals on, as GDB's
    startup_inferior does. So a wrapper that execs once more (`env A=1 env B=2 -- PROG`) is stopped at
    that exec, in the second `env`, under both. Like gdbserver, it waits as long as the wrapper takes;
    forks the wrapper makes on the way are let go (a shell script wrapper runs commands first).
    """
    from ptstub.events import Exec, Exited, Killed

    while True:
        event = inferior.cont(timeout=None)
        if isinstance(event, Exec):
            return
        if isinstance(event, Exited | Killed):
            inferior.close()
            raise StartupEnded(_startup_end(event))


def _startup_end(event: Any) -> str:
    """GDB's startup_inferior words for a program that ended before its exec."""
    from ptstub.events import Killed, signal_name

    if isinstance(event, Killed):
        name = signal_name(event.signal)
        return f"During startup program terminated with signal {name}, {_signal.strsignal(event.signal)}."
    if event.code == 0:
        return "During startup program exited normally."
    return f"During startup program exited with code {event.code}."


def _attacher() -> Any:
    from ptstub.linux import attach

    def start(pid: int) -> Any:
        inferior = attach(pid)
        print(f"Attached; pid = {pid}", file=sys.stderr, flush=True)
        return inferior

    return start


def run_server(opts: Options, endpoint: Any) -> int:
    """Start or attach to the program, listen, then serve.

    The session and the protocol layer are imported only after `Listening on port` is printed: tools
    wait for that line, and the ~50 ms of imports then overlap GDB's own start-up instead of delaying it.
    """
    from ptstub.loop import Listener
    from ptstub.settings import LaunchSettings

    launcher = _launcher(opts, endpoint.stdio)
    attacher = _attacher()
    target = None
    settings = LaunchSettings(disable_randomization=opts.disable_randomization, program=list(opts.program))
    if opts.attach_pid is not None:
        try:
            target = attacher(opts.attach_pid)
        except PtstubError as err:
            message = str(err)
            print(message[:1].upper() + message[1:], file=sys.stderr)
            print("Exiting", file=sys.stderr)
            return 1
    elif opts.program:  # with --multi too: gdbserver starts PROG, then serves it in extended mode
        target = launcher(opts.program, settings)

    def new_session() -> Any:
        from ptstub.linux.group import LinuxHost, LinuxProcessGroup
        from ptstub.session import Session

        session = Session(
            target,
            group=LinuxProcessGroup(),
            host=LinuxHost(),
            launcher=launcher,
            attacher=attacher,
            extended=opts.multi,
            attached=opts.attach_pid is not None,
            program=opts.program,
        )
        session.settings.disable_randomization = opts.disable_randomization
        session.prepare()
        return session

    _signal.signal(_signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if endpoint.stdio:
        print("Remote debugging using stdio", file=sys.stderr, flush=True)
        return _serve_stdio(new_session(), opts)
    try:
        listener = Listener(endpoint)
    except OSError as err:
        import _socket

        # gdbserver's exact words: GDB's testsuite watches for them to retry on another port, or
        # to see that a host name does not resolve (gdb.server/server-connect.exp).
        if isinstance(err, _socket.gaierror):
            print(f"{opts.comm}: cannot resolve name: {err.strerror}", file=sys.stderr)
        else:
            print(f"Can't bind address: {err.strerror}.", file=sys.stderr)
        print("Exiting", file=sys.stderr)
        _end_inferior(target, opts.attach_pid is not None)
        return 1
    session = None
    try:
        _announce_listening(listener, opts)
        session = new_session()
        return _serve_socket(session, listener, opts)
    finally:
        listener.close()
        if session is not None:
            _end_target(session)
        else:
            _end_inferior(target, opts.attach_pid is not None)


def _serve_stdio(session: Any, opts: Options) -> int:
    from ptstub.loop import StdioConnection, serve_connection

    remote_debug = _remote_debug_printer if opts.remote_debug else None
    session.agent_output_fd = 2  # stdout carries the protocol: a dprintf's output goes to stderr
    try:
        serve_connection(session, StdioConnection(), remote_debug)
        if session.detached_with_commands:
            session.run_detached_commands(None)
    except ConnectionError:
        pass
    finally:
        _end_target(session)
    return 0


def _announce_listening(listener: Any, opts: Options) -> None:
    if listener.endpoint.unix_path:
        print(f"Listening on {listener.endpoint.unix_path}", file=sys.stderr, flush=True)
    else:
        print(f"Listening on port {listener.port}", file=sys.stderr, flush=True)
    if opts.print_gdb_line:
        where = listener.endpoint.unix_path or f"{listener.endpoint.host}:{listener.port}"
        print(f"gdb -ex 'target remote {where}'", file=sys.stderr, flush=True)


def _serve_socket(session: Any, listener: Any, opts: Options) -> int:
    from ptstub.loop import serve_connection

    remote_debug = _remote_debug_printer if opts.remote_debug else None
    while True:
        conn, host, port = listener.accept()
        print(f"Remote debugging from host {host}, port {port}", file=sys.stderr, flush=True)
        try:
            serve_connection(session, conn, remote_debug, listener)
            disconnected = False
        except ConnectionError:
            disconnected = True
        finally:
            conn.close()
            if not session.detached_with_commands:
                session.close()
        if session.detached_with_commands:  # GDB detached leaving dprintfs to run: until the end or a new GDB
            try:
                session.run_detached_commands(None if opts.once else listener.sock.fileno())
            finally:
                session.close()
        if session.exit_requested and not (opts.multi and not session.finished):
            return 0
        if session.finished and not opts.multi:
            return 0
        if opts.once:
            return 0
        if not opts.multi and session.target is None:
            return 0
        if disconnected:
            print(
                "Remote side has terminated connection.  GDBserver will reopen the connection.",
                file=sys.stderr,
                flush=True,
            )
        session.finished = False  # session.close() reset the rest of the protocol state
        session.exit_requested = False
        print(f"Listening on port {listener.port}", file=sys.stderr, flush=True)


def _end_target(session: Any) -> None:
    """ptstub is leaving: kill what it launched, detach from what it attached to."""
    target, attached = session.target, session.attached
    session.target = None
    _end_inferior(target, attached)


def _end_inferior(target: Any, attached: bool) -> None:
    if target is None:
        return
    try:
        if target.alive:
            if attached:
                print(f"Detaching process(es): {target.pid}", file=sys.stderr, flush=True)
                target.detach()
            else:
                print(f"Killing process(es): {target.pid}", file=sys.stderr, flush=True)
                target.kill()
        target.close()
    except PtstubError:
        pass


if __name__ == "__main__":
    sys.exit(main())

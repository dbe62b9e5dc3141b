"""Behaviours found wrong by GDB's own testsuite (conformance/run), kept fixed through the real GDB.

Each test names the testsuite file that found it. Where gdbserver passes the same script it runs
as the oracle too.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import termios

import pytest

from tests.gdb.stubs import run_gdb, running_stub, stub_command
from tests.gdb.test_control import wait_for_line
from tests.gdb.test_nonstop_rsp import RawClient


@pytest.mark.timeout(120)
def test_attach_to_the_process_already_debugged_fails_and_keeps_it(fixture_path) -> None:
    """gdb.base/attach.exp "fail to attach again": ptstub detached the process and attached anew.

    ptstub only: gdbserver refuses too but then hangs the session (GDB's KFAIL gdb/19558).
    """
    spin = fixture_path("spin")
    victim = subprocess.Popen([spin, "--threads", "2"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert victim.stdout is not None
        wait_for_line(victim.stdout, "ready")
        with running_stub("ptstub", ["--multi", "127.0.0.1:0"]) as server:
            commands = [
                f"attach {victim.pid}",
                "add-inferior",
                "inferior 2",
                f"attach {victim.pid}",
                "inferior 1",
                "info threads",
                "detach",
                "monitor exit",
            ]
            result = run_gdb(server.port, spin, ["set sysroot /"] + commands, extended=True)
        assert re.search(rf"Attaching to process {victim.pid} failed", result.output), result.output[-3000:]
        assert len(re.findall(r"Thread \d+\.\d+ \"spin\"", result.output)) == 3, result.output[-3000:]
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait(timeout=10)
        if victim.stdout:
            victim.stdout.close()


@pytest.mark.timeout(120)
def test_program_reads_the_terminal_it_shares_with_the_stub(stub: str) -> None:
    """gdb.base/interrupt.exp: the program (own process group) got SIGTTIN reading the terminal.

    The stub runs on a pseudo-terminal as its controlling terminal, like DejaGnu's spawn, and hands
    the terminal's foreground to the program; `cat` then reads what is typed there.
    """
    master, slave = os.openpty()
    proc = subprocess.Popen(
        stub_command(stub, ["--once", "127.0.0.1:0", "/bin/cat"]),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
    )
    os.close(slave)
    try:
        seen = b""
        while b"Listening on port" not in seen:
            chunk = os.read(master, 4096)
            assert chunk, f"the stub ended early: {seen!r}"
            seen += chunk
        port = int(re.search(rb"Listening on port (\d+)", seen).group(1))
        os.write(master, b"typed line\n\x04")  # read once `cat` runs; then end of file
        result = run_gdb(port, "/bin/cat", ["set sysroot /", "continue"], timeout=60)
        assert "SIGTTIN" not in result.output, result.output[-2000:]
        assert "exited normally" in result.output, result.output[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        os.close(master)


@pytest.mark.timeout(120)
def test_follow_fork_child_keeps_serving_the_child(stub: str, fixture_path) -> None:
    """gdb.base/foll-fork.exp "follow-fork-mode=child: detach-on-fork=on": GDB detaches the parent
    and goes on with the child; ptstub closed the connection once the parent was detached."""
    program = fixture_path("simple")
    commands = ["set sysroot /", "set follow-fork-mode child", "set detach-on-fork on", "continue", "info inferiors"]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--fork", "--iterations", "1"]) as server:
        result = run_gdb(server.port, program, commands)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", result.output), result.output[-3000:]
    assert "Remote connection closed" not in result.output and "Target disconnected" not in result.output
    assert "child-status: 7" in program_output  # the detached parent ran on by itself


@pytest.mark.timeout(120)
def test_working_directory_with_a_tilde_is_expanded(stub: str) -> None:
    """gdb.base/set-cwd.exp "test_tilde_expansion": `set cwd ~/` made `run` fail (no such directory)."""
    with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
        commands = ["set sysroot /", "set remote exec-file /bin/pwd", "set cwd ~/", "run", "monitor exit"]
        result = run_gdb(server.port, "/bin/pwd", commands, extended=True)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    assert "exited normally" in result.output, result.output[-3000:]
    assert os.path.realpath(os.path.expanduser("~")) in program_output.splitlines(), program_output


@pytest.mark.timeout(120)
def test_signal_command_delivers_a_signal_gdb_does_not_pass(stub: str, fixture_path) -> None:
    """gdb.threads/signal-sigtrap.exp: `signal SIG` for a signal that `handle` says nopass (left out of
    QProgramSignals) was dropped; that list is only for signals the stub delivers on its own."""
    program = fixture_path("signals")
    commands = ["set sysroot /", "handle SIGUSR1 stop print nopass", "continue", "signal SIGUSR1", "signal SIGUSR1"]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--count", "2"]) as server:
        result = run_gdb(server.port, program, commands)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    assert "signals: usr1=2" in program_output, program_output + result.output[-2000:]
    assert "exited normally" in result.output, result.output[-2000:]


@pytest.mark.timeout(120)
def test_every_signal_gdb_passes_reaches_its_thread(stub: str, fixture_path) -> None:
    """gdb.threads/siginfo-threads.exp, queue-signal.exp, signal-sigtrap.exp: two signals pending in each
    of four threads, every one stopped at and passed on by GDB. ptstub lost two kinds: a signal for a
    thread held by PTRACE_INTERRUPT (the kernel ignores a resume's signal there: it now goes in with
    tgkill), and GDB's signal for a thread when another thread's pending stop was reported instead of
    resuming (it is now kept for the resume that runs the thread, as gdbserver keeps it)."""
    program = fixture_path("signals")
    threads = 4
    commands = ["set sysroot /", "handle SIGUSR1 stop print pass", "handle SIGUSR2 stop print pass"]
    commands += ["continue"] * (2 * threads + 1)
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--to-threads", str(threads)]) as server:
        result = run_gdb(server.port, program, commands)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    assert f"signals: per-thread={2 * threads}/{2 * threads}" in program_output, program_output + result.output[-3000:]
    assert len(re.findall(r"received signal SIGUSR[12]", result.output)) == 2 * threads, result.output[-3000:]
    assert "exited normally" in result.output, result.output[-2000:]


@pytest.mark.timeout(120)
def test_only_resumed_thread_exits_under_scheduler_locking(stub: str, fixture_path) -> None:
    """gdb.threads/schedlock-thread-exit.exp: the one resumed thread exits while scheduler-locking
    holds the others; gdbserver answers N (no resumed threads), ptstub ended the session."""
    program = fixture_path("churn")
    commands = [
        "set sysroot /",
        "break hit_target",
        "continue",
        "set scheduler-locking on",
        "continue",
        "info threads",
        "kill",
    ]
    args = ["--once", "127.0.0.1:0", program, "--spawners", "1", "--iterations", "1", "--batch", "1"]
    with running_stub(stub, args) as server:
        result = run_gdb(server.port, program, commands)
    assert "No unwaited-for children left" in result.output, result.output[-3000:]
    assert "Remote connection closed" not in result.output, result.output[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) killed\]", result.output), result.output[-3000:]


@pytest.mark.timeout(120)
def test_tls_fails_like_gdbserver_once_libthread_db_cannot_be_found(stub: str, fixture_path) -> None:
    """gdb.server/no-thread-db.exp: `monitor set libthread-db-search-path` was unknown to ptstub."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "monitor set libthread-db-search-path /nonexistent",
        "break work",
        "continue",
        "print tls_var",
    ]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--iterations", "1"]) as server:
        result = run_gdb(server.port, program, commands)
    assert "libthread-db-search-path set to `/nonexistent'" in result.output, result.output[-3000:]
    assert "Remote target failed to process qGetTLSAddr request" in result.output, result.output[-3000:]


def test_bare_program_name_in_the_working_directory_is_run_from_there(tmp_path, monkeypatch) -> None:
    """gdb.server/abspath.exp: `ptstub :PORT prog` with prog in the working directory (not in PATH)."""
    from ptstub.linux.program import resolve_program

    (tmp_path / "prog").write_bytes(open("/bin/true", "rb").read())
    (tmp_path / "prog").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert resolve_program("prog") == str(tmp_path / "prog")
    assert resolve_program("true") != str(tmp_path / "true")  # not here: PATH as before


@pytest.mark.timeout(120)
def test_monitor_commands_answer_in_gdbservers_words(stub: str, fixture_path) -> None:
    """gdb.server/server-mon.exp: the confirmations, and an error for an unknown (or empty) command."""
    program = fixture_path("simple")
    commands = [
        "monitor set debug 1",
        "monitor set debug 0",
        "monitor set remote-debug 1",
        "monitor set remote-debug 0",
        "monitor set debug-format all",
        "monitor set debug-format none",
        "monitor",
        "kill",
    ]
    with running_stub(stub, ["--once", "127.0.0.1:0", program]) as server:
        result = run_gdb(server.port, program, ["set sysroot /"] + commands)
    for words in (
        "Debug output enabled.",
        "Debug output disabled.",
        "Protocol debug output enabled.",
        "Protocol debug output disabled.",
        "All extra debug format options enabled.",
        "All extra debug format options disabled.",
    ):
        assert words in result.output, f"{stub}: {words!r} not in\n{result.output[-3000:]}"
    assert re.search(r"Unknown monitor command\.(.|\n)*Protocol error", result.output), result.output[-3000:]


@pytest.mark.timeout(60)
def test_unresolvable_host_is_reported_like_gdbserver(stub: str) -> None:
    """gdb.server/server-connect.exp: GDB's testsuite watches for `COMM: cannot resolve name:`."""
    proc = subprocess.run(
        stub_command(stub, ["--once", "garbage:1234:10010", "/bin/true"]),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert "garbage:1234:10010: cannot resolve name: " in proc.stderr, proc.stderr
    assert proc.returncode != 0 and "Exiting" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.timeout(60)
def test_missing_program_over_stdio_is_reported_like_gdbserver(stub: str) -> None:
    """gdb.server/non-existing-program.exp waits for gdbserver's own lines (startup-with-shell)."""
    proc = subprocess.run(
        stub_command(stub, ["stdio", "non-existing-program"]),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    pattern = (
        r"stdin/stdout redirected(.|\n)*exec: non-existing-program: not found\n"
        r"During startup program exited with code 127\.\nExiting\n$"
    )
    assert re.search(pattern, proc.stderr), proc.stderr
    assert proc.returncode != 0


@pytest.mark.timeout(120)
def test_tls_variable_of_a_static_executable(fixture_path) -> None:
    """gdb.threads/staticthreads.exp "tlsvar in main": no link maps, so qGetTLSAddr failed.

    ptstub only: gdbserver needs libthread_db, which a static program without libpthread lacks.
    """
    program = fixture_path("static_tls")
    commands = ["set sysroot /", "break stop_here", "continue", "print tls_value"]
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program]) as server:
        result = run_gdb(server.port, program, commands)
    assert re.search(r"\$1 = 42\b", result.output), result.output[-3000:]


@pytest.mark.timeout(120)
def test_leader_exits_alone_under_scheduler_locking(stub: str, fixture_path) -> None:
    """gdb.threads/no-unwaited-for-left.exp: the resumed leader calls pthread_exit while the other
    threads are held; its zombie gives no status, so the stub must answer N, not wait forever."""
    program = fixture_path("leader_exit")
    commands = [
        "set sysroot /",
        "break pthread_exit",
        "continue",
        "set scheduler-locking on",
        "continue",
        "info threads",
        "kill",
    ]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--threads", "1", "--calls", "1"]) as server:
        result = run_gdb(server.port, program, commands, timeout=60)
    assert "No unwaited-for children left" in result.output, result.output[-3000:]
    assert "The current thread <Thread ID 1> has terminated" in result.output, result.output[-3000:]


@pytest.mark.timeout(60)
def test_ctrl_c_sent_while_stopped_stops_the_next_resume(stub: str, fixture_path) -> None:
    """All-stop: GDB sends `\\x03` when the user interrupts, even if the stub is between a stop and
    the next resume (GDB was stepping a thread over a breakpoint). The interrupt must not be lost:
    the next resume stops at once with SIGINT, as gdbserver's queued SIGINT does; dropped, GDB waits
    for ever (gdb.threads/detach-step-over.exp)."""
    spin = fixture_path("spin")
    with running_stub(stub, ["--once", "127.0.0.1:0", spin, "--threads", "2", "--busy", "1"]) as server:
        client = RawClient(server.port)
        try:
            for request in (b"qSupported:multiprocess+;swbreak+", b"QStartNoAckMode"):
                client.ask(request)
                client.sock.sendall(b"+")  # gdbserver resends a reply until it is acknowledged
            assert client.ask(b"?").startswith(b"T")
            client.sock.sendall(b"\x03")  # stopped: nothing runs yet
            reply = client.ask(b"vCont;c")  # spin runs for ever: only the interrupt can answer
            assert reply.startswith(b"T02"), reply
        finally:
            client.close()


@pytest.mark.timeout(120)
def test_threads_stopped_by_an_attach_show_sigstop_in_siginfo(stub: str, fixture_path) -> None:
    """gdb.threads/attach-into-signal.exp: after an attach, `$_siginfo` of a thread the stub stopped is
    a SIGSTOP (gdbserver and GDB's native target stop threads with one). ptstub's PTRACE_INTERRUPT
    leaves the siginfo of its event stop, SIGTRAP, which GDB showed as is."""
    from tests.gdb.stubs import untraced_program

    spin = fixture_path("spin")
    with untraced_program([spin, "--threads", "3"]) as victim:
        with running_stub(stub, ["--once", "--attach", "127.0.0.1:0", str(victim.pid)]) as server:
            commands = ["thread apply all print $_siginfo.si_signo", "detach"]
            output = run_gdb(server.port, spin, commands).output
    values = re.findall(r"\$\d+ = (\d+)", output)
    assert values == ["19"] * 4, output[-3000:]

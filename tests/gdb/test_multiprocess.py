"""Several processes in one session: GDB keeps the fork child (`set detach-on-fork off`).

The same GDB scripts run against ptstub and GNU gdbserver (the oracle). They mirror
gdb.base/foll-fork.exp and foll-vfork.exp (detach-on-fork off, follow child, schedule-multiple) and
gdb.server/extended-remote-restart.exp (a restart with a fork child kept).
"""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.gdb.stubs import interactive_gdb, process_state, run_gdb, running_stub, untraced_program


def _run(stub: str, program: str, args: list[str], commands: list[str]) -> tuple[str, str]:
    """GDB's output and the program's own output (the stub's stdout)."""
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *args]) as server:
        result = run_gdb(server.port, program, commands)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        return result.output, server.proc.stdout.read().decode(errors="replace")


def _run_in_inferior_2(gdb, port: int, program: str, args: str, stop_at: str) -> None:
    """Connect in extended mode, add inferior 2 and run `program args` in it to `stop_at` (the
    breakpoint deleted after), as detach-step-over.exp sets up the process it keeps running."""
    gdb.run(f"target extended-remote 127.0.0.1:{port}")
    gdb.run("add-inferior")
    gdb.run("inferior 2")
    gdb.run(f"set remote exec-file {program}")
    gdb.run(f"break {stop_at}")
    gdb.run(f"run {args}", until=rf"Breakpoint 1\S*, {stop_at}")
    gdb.run("delete")


@pytest.mark.timeout(120)
def test_fork_child_kept_and_run_to_exit_beside_the_parent(stub: str, fixture_path) -> None:
    """catch fork, continue, both in `info inferiors`, inferior 2 runs to its exit, then inferior 1."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "catch fork",
        "continue",
        "stepi",  # GDB follows the fork (adds inferior 2) on the next resume
        "info inferiors",
        "info threads",
        "inferior 2",
        "print global_counter",
        "continue",
        "info inferiors",
        "inferior 1",
        "continue",
    ]
    output, program_output = _run(stub, program, ["--fork", "--iterations", "1"], commands)
    child = re.search(r"Catchpoint 1 \(forked process (\d+)\)", output)
    assert child, output[-3000:]
    assert re.search(rf"\n\s+2\s+process {child.group(1)}\s", output), output[-3000:]  # listed as inferior 2
    assert re.search(r"2\.1\s+Thread", output), output[-3000:]  # its thread in `info threads`
    assert "$1 = 1" in output, output[-3000:]  # memory of the child, read through Hg to its thread
    assert re.search(rf"\[Inferior 2 \(process {child.group(1)}\) exited with code 07\]", output), output[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child-status: 7" in program_output


@pytest.mark.timeout(120)
def test_vfork_child_followed_while_the_parent_is_kept(stub: str, fixture_path) -> None:
    """foll-vfork.exp "child follow": after a vfork GDB keeps the parent until the child exits."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "set follow-fork-mode child",
        "catch vfork",
        "continue",
        "continue",
        "info inferiors",
        "inferior 1",
        "continue",
    ]
    output, program_output = _run(stub, program, ["--vfork", "--iterations", "1"], commands)
    assert re.search(r"Catchpoint 1 \(vforked process \d+\)", output), output[-3000:]
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", output), output[-3000:]
    assert re.search(r"\n\s+1\s+process \d+\s", output), output[-3000:]  # the parent is still there
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child-status: 7" in program_output


@pytest.mark.timeout(120)
def test_both_processes_run_together_with_schedule_multiple(stub: str, fixture_path) -> None:
    """schedule-multiple on: parent and vfork child resumed at once (one wait over both engines).

    The parent's VFORK_DONE may be reported before or after the child's exit, and the parent may end
    in the same moment as the child (for gdbserver as well), so only the child's exit is checked.
    """
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "set schedule-multiple on",
        "catch vfork",
        "continue",
        "continue",
        "continue",
        "info inferiors",
    ]
    output, _ = _run(stub, program, ["--vfork", "--iterations", "1"], commands)
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", output), output[-3000:]


@pytest.mark.timeout(120)
def test_kill_one_of_two_processes_keeps_the_other(stub: str, fixture_path) -> None:
    """`kill inferiors 2` (vKill;pid) ends the child only; the parent then reaps it and exits."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "catch fork",
        "continue",
        "stepi",
        "kill inferiors 2",
        "info inferiors",
        "continue",
    ]
    output, program_output = _run(stub, program, ["--fork", "--iterations", "1"], commands)
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child-status: -1" in program_output, program_output  # killed by a signal


@pytest.mark.timeout(120)
def test_detach_one_of_two_processes_keeps_the_other(stub: str, fixture_path) -> None:
    """`detach inferiors 2` (D;pid) lets the child run off; the parent goes on being debugged."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "catch fork",
        "continue",
        "stepi",
        "detach inferiors 2",
        "continue",
    ]
    output, program_output = _run(stub, program, ["--fork", "--iterations", "1"], commands)
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child-status: 7" in program_output, program_output


@pytest.mark.timeout(120)
def test_attach_a_second_process_beside_a_running_one(stub: str, fixture_path) -> None:
    """Extended mode with the multiprocess extensions: `add-inferior`, then `attach` in it while the
    first process (started with `run`) stays. The attach adds a process; it must not end the first
    one (gdb.threads/detach-step-over.exp attaches beside a process it ran)."""
    simple, spin = fixture_path("simple"), fixture_path("spin")
    with untraced_program([spin, "--threads", "3"]) as victim:
        commands = [
            "set sysroot /",
            f"set remote exec-file {simple}",
            "break work",
            "run --iterations 2",
            "add-inferior",
            "inferior 2",
            f"attach {victim.pid}",
            "info threads",
            "inferior 1",
            "print global_counter",
            "continue",
            "inferior 2",
            "detach",
            "inferior 1",
            "delete",
            "continue",
            "monitor exit",
        ]
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            output = run_gdb(server.port, simple, commands, extended=True).output
        assert len(re.findall(r"Breakpoint 1, work", output)) == 2, output[-3000:]
        assert len(re.findall(r"2\.\d+\s+Thread \d+\.\d+ \"spin\"", output)) == 4, output[-3000:]
        assert re.search(r"1\.1\s+Thread \d+\.\d+ \"simple\"", output), output[-3000:]  # the first one stayed
        assert "$1 = 0" in output, output[-3000:]  # its memory, read after the attach
        assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
        assert victim.poll() is None, "the attached program must survive the detach"
        assert process_state(victim.pid) not in ("T", "t"), "left stopped after the detach"


@pytest.mark.timeout(120)
def test_interrupt_stops_the_process_attached_last(stub: str, fixture_path) -> None:
    """Two processes run (`schedule-multiple on`); `interrupt` reports the SIGINT in the process
    started or attached last, as gdbserver's kill(-signal_pid, SIGINT) does, so a `detach` that
    follows lets that one go (gdb.threads/detach-step-over.exp re-attaches to it)."""
    spin = fixture_path("spin")
    # its own process group, as expect spawns it: gdbserver's SIGINT goes to the group
    with untraced_program([spin, "--threads", "3"], own_session=True) as victim:
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            with interactive_gdb(spin, ["set sysroot /", "set schedule-multiple on"]) as gdb:
                _run_in_inferior_2(gdb, server.port, spin, "--threads 2 --busy 1", "hit_target")
                gdb.run("inferior 1")
                gdb.run(f"attach {victim.pid}")
                gdb.run("break hit_target")  # only inferior 2 has a busy thread that calls it
                gdb.run("continue", until=r"Breakpoint 2\S*, hit_target")  # the last stop is in inferior 2
                gdb.run("delete")
                gdb.run("continue &")
                stop = gdb.run("interrupt", until=r"received signal SIGINT")
                assert re.search(r"Thread 1\.\d+ .*received signal SIGINT", stop), stop
                detach = gdb.run("detach")
                assert f"process {victim.pid}" in detach, detach
                inferiors = gdb.run("info inferiors")
                assert re.search(r"\s2\s+process \d+", inferiors), inferiors  # the one run is still there
        assert victim.poll() is None, "the attached program must survive the detach"


@pytest.mark.timeout(120)
def test_programs_run_beside_each_other_die_with_the_session(stub: str, fixture_path) -> None:
    """Two programs started with `run` in one extended session: when GDB goes (`--once`), both are
    killed, as gdbserver kills what it started. The second was detached and ran on, orphaned (GDB's
    own testsuite then ran with a growing crowd of busy detach-step-over programs)."""
    spin = fixture_path("spin")
    commands = [
        "set sysroot /",
        f"set remote exec-file {spin}",
        "break hit_target",
        "run --threads 2 --busy 1",
        "add-inferior",
        "inferior 2",
        "run --threads 2 --busy 1",
        "info inferiors",
        "disconnect",  # GDB leaves without killing them (its testsuite's clean_restart closes GDB)
    ]
    with running_stub(stub, ["--once", "--multi", "127.0.0.1:0"]) as server:
        output = run_gdb(server.port, spin, commands, extended=True).output
        server.proc.wait(timeout=30)
    pids = [int(p) for p in re.findall(r"\n\*?\s+\d+\s+process (\d+)", output)]
    assert len(pids) == 2, output[-3000:]
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        assert state in ("Z", "X"), f"process {pid} outlived the session (state {state})"


@pytest.mark.timeout(120)
def test_killing_one_of_three_processes_drops_its_threads(stub: str, fixture_path) -> None:
    """`kill inferiors 2` with three programs run in one extended session: the thread list GDB reads
    next no longer has the killed one's thread (ptstub served a cached list; GDB then showed it as a
    new thread of the removed inferior: gdb.threads/threadapply.exp "kill-and-remove")."""
    simple = fixture_path("simple")
    commands = ["set sysroot /", f"set remote exec-file {simple}", "break work", "run"]
    commands += ["add-inferior", "inferior 2", "run", "add-inferior", "inferior 3", "run"]
    commands += ["info inferiors", "kill inferiors 2", "info threads", "kill"]
    with running_stub(stub, ["--once", "--multi", "127.0.0.1:0"]) as server:
        output = run_gdb(server.port, simple, commands, extended=True).output
    pids = re.findall(r"\n\*?\s+2\s+process (\d+)", output)
    assert pids, output[-3000:]
    threads = output[output.rindex("Target Id") :]
    assert f"Thread {pids[0]}." not in threads, threads
    assert len(re.findall(r"Thread \d+\.\d+ \"simple\"", threads)) == 2, threads


@pytest.mark.timeout(120)
def test_interrupt_stops_the_running_process_when_the_last_attached_is_held(fixture_path) -> None:
    """`schedule-multiple off` (GDB's default): only inferior 1 runs while the process attached last
    stays stopped. `interrupt` must stop inferior 1, not wait for a process GDB never resumes.
    gdbserver hangs here (its SIGINT goes to the held process's group), so this runs against ptstub."""
    spin = fixture_path("spin")
    with untraced_program([spin, "--threads", "3"], own_session=True) as victim:
        with running_stub("ptstub", ["--multi", "127.0.0.1:0"]) as server:
            with interactive_gdb(spin, ["set sysroot /"]) as gdb:
                gdb.run(f"target extended-remote 127.0.0.1:{server.port}")
                gdb.run(f"set remote exec-file {spin}")
                gdb.run("break hit_target")
                gdb.run("run --threads 2 --busy 1", until=r"Breakpoint 1\S*, hit_target")
                gdb.run("delete")
                gdb.run("add-inferior")
                gdb.run("inferior 2")
                gdb.run(f"attach {victim.pid}")
                gdb.run("inferior 1")
                gdb.run("continue &")
                stop = gdb.run("interrupt", until=r"received signal SIGINT")
                assert re.search(r"Thread 1\.\d+ .*received signal SIGINT", stop), stop


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["maint set target-non-stop on", "set non-stop on"])
def test_fork_child_kept_in_non_stop(stub: str, fixture_path, mode: str) -> None:
    """The fork child GDB keeps is served through the non-stop protocol (GDB's target-non-stop, or
    non-stop itself): it runs to its exit when GDB resumes it, and the parent after it
    (gdb.threads/fork-plus-threads.exp keeps 11 processes in non-stop mode)."""
    program = fixture_path("simple")
    commands = [
        "set sysroot /",
        "set detach-on-fork off",
        "catch fork",
        "continue",
        "stepi",
        "info inferiors",
        "inferior 2",
        "print global_counter",
        "continue",
        "inferior 1",
        "continue",
    ]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--fork", "--iterations", "1"]) as server:
        output = run_gdb(server.port, program, commands, setup=[mode]).output
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    assert re.search(r"\n\s+2\s+process \d+\s", output), output[-3000:]
    assert "$1 = 1" in output, output[-3000:]
    assert re.search(r"\[Inferior 2 \(process \d+\) exited with code 07\]", output), output[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child-status: 7" in program_output, program_output


@pytest.mark.timeout(120)
def test_two_processes_run_and_stop_apart_in_non_stop(stub: str, fixture_path) -> None:
    """gdb.threads/detach-step-over.exp's non-stop variants: one process run, one attached, all their
    threads resumed with `continue -a &`. A signal in the process run first stops its thread while
    the one attached last runs on; `detach` of the attached one leaves the first one served, and
    `interrupt -a` then stops its threads. ptstub's non-stop used to serve the target process alone:
    the other's threads were never resumed, nor its events collected."""
    spin = fixture_path("spin")
    setup = ["set sysroot /", "maint set target-non-stop on", "set non-stop on", "set schedule-multiple on"]
    with untraced_program([spin, "--threads", "3"], own_session=True) as victim:
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            with interactive_gdb(spin, setup) as gdb:
                _run_in_inferior_2(gdb, server.port, spin, "--threads 2 --busy 1", "hit_target")
                inferiors = gdb.run("info inferiors")
                first = re.search(r"\*\s+2\s+process (\d+)", inferiors)
                assert first, inferiors
                gdb.run("inferior 1")
                # the leader's stop is the attach's own; the 3 others are reported apart
                gdb.run(f"attach {victim.pid}", until=r"(?s)(Thread 1\.\d+ .*stopped.*){3}")
                gdb.run("continue -a &")
                threads = gdb.run("info threads")
                assert len(re.findall(r"\(running\)", threads)) == 7, threads  # 3 run + 4 attached
                os.kill(int(first.group(1)), signal.SIGUSR1)
                stop = gdb.expect(r"Thread 2\.\d+ .*received signal SIGUSR1")
                assert "Thread 1." not in stop, stop
                threads = gdb.run("info threads")
                assert len(re.findall(r"1\.\d+\s+Thread .*\(running\)", threads)) == 4, threads
                detach = gdb.run("detach")
                assert f"process {victim.pid}" in detach, detach
                gdb.run("inferior 2")
                gdb.run("interrupt -a", until=r"(?s)(Thread 2\.\d+ .*stopped.*){2}")  # the third got SIGUSR1
                threads = gdb.run("info threads")
                assert "(running)" not in threads, threads
        assert victim.poll() is None, "the attached program must survive the detach"
        assert process_state(victim.pid) not in ("T", "t"), "left stopped after the detach"


@pytest.mark.timeout(180)
def test_interrupt_lands_in_the_attached_process_while_the_other_hits_a_false_condition(
    stub: str, fixture_path
) -> None:
    """detach-step-over.exp, all-stop: the process run first keeps hitting a breakpoint whose
    condition is false (evaluated by the stub, never reported), the attached one runs. Each
    `interrupt` must stop the attached process (gdbserver's SIGINT to its group). ptstub sent the
    Ctrl-C to whichever process had an event pending, so the SIGINT was reported in the other one
    and `detach` let the wrong process go."""
    spin = fixture_path("spin")
    with untraced_program([spin, "--threads", "3"], own_session=True) as victim:
        with running_stub(stub, ["--multi", "127.0.0.1:0"]) as server:
            with interactive_gdb(spin, ["set sysroot /", "set schedule-multiple on"]) as gdb:
                _run_in_inferior_2(gdb, server.port, spin, "--threads 4 --busy 4", "main")
                gdb.run("inferior 1")
                gdb.run(f"attach {victim.pid}")
                gdb.run("break hit_target if 0")
                for _ in range(3):
                    gdb.run("continue &")
                    stop = gdb.run("interrupt", until=r"received signal SIGINT")
                    assert re.search(r"Thread 1\.\d+ .*received signal SIGINT", stop), stop
                detach = gdb.run("detach")
                assert f"process {victim.pid}" in detach, detach
        assert victim.poll() is None, "the attached program must survive the detach"


@pytest.mark.timeout(120)
def test_child_detached_while_its_threads_die_ends(stub: str, fixture_path) -> None:
    """gdb.threads/process-dies-while-detaching.exp, multi-process: the child of a fork stops at
    `_exit` while 256 threads are born and race to `_exit` too; GDB detaches it and continues the
    parent, which waits for it. Threads in the stub's table that were not in a ptrace-stop at the
    detach (still on their way to their first stop) were counted as detached and stayed traced and
    stopped, so the child never ended and the parent waited for ever."""
    program = fixture_path("dies_detaching")
    commands = [
        "set sysroot /",
        "break main",
        "continue",
        "set detach-on-fork off",
        "set follow-fork-mode child",
        "tbreak _exit",
        "continue",
        "detach",
        "inferior 1",
        "continue",
    ]
    output, program_output = _run(stub, program, [], commands)
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]
    assert "child: exited, status=0" in program_output, program_output

"""Everyday GDB through `target remote`: the same batch scripts against ptstub and GNU gdbserver.

Each scenario names the program's arguments, the GDB commands, and patterns that must appear in
GDB's output (and in the program's own output, which the stub passes through on its stdout). Both
stubs must satisfy the same expectations; the few places where gdbserver is known to differ are
marked in the scenario.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.gdb.stubs import run_gdb, running_stub


@dataclass(frozen=True)
class Scenario:
    args: list[str]
    commands: list[str]
    expect: list[str]
    program_expect: list[str] = field(default_factory=list)
    only: str | None = None  # run against this stub only, with the reason in `why`
    why: str = ""


SCENARIOS = {
    "break-continue-locals": Scenario(
        ["--iterations", "3"],
        [
            "break work",
            "continue",
            "continue",
            "info locals",
            "print i",
            "print global_point",
            "print global_counter",
            "print global_point.label",
            "continue",
            "delete",
            "continue",
        ],
        [
            r"Breakpoint 1, work \(i=1\)",
            r"\$1 = 1",
            r"\$2 = \{x = 3, y = 4, label = 0x[0-9a-f]+ \"origin\"\}",
            r"\$3 = 1",
            r"\$4 = 0x[0-9a-f]+ \"origin\"",
            r"Breakpoint 1, work \(i=2\)",
            r"exited normally",
        ],
        [r"simple: result=15"],
    ),
    "step-next-finish-until": Scenario(
        ["--iterations", "2"],
        [
            "break work",
            "continue",
            "next",
            "next",
            "print doubled",
            "next",
            "next",
            "step",
            "bt 1",
            "finish",
            "until",
            "delete",
            "continue",
        ],
        [r"\$1 = 0", r"touch_watch \(value=3\) at \S+:36", r"work \(i=0\) at \S+:46", r"^47\t\}", r"exited normally"],
    ),
    "tls-variable-threads": Scenario(
        ["--iterations", "3", "--threads", "2"],
        ["break thread_ready", "continue", "print tls_var", "continue", "print tls_var", "delete", "continue"],
        [r"\$1 = 100[01]", r"\$2 = 100[01]", r"exited normally"],
    ),
    "info-os": Scenario(
        ["--iterations", "2", "--threads", "2"],
        [
            "break thread_ready",
            "continue",
            "info os",
            "info os processes",
            "info os threads",
            "info os files",
            "info os nosuchtable",
            "delete",
            "continue",
        ],
        [
            r"processes\s+Listing of all processes",
            r"threads\s+Listing of all threads",
            r"pid\s+user\s+command\s+cores",
            r"\d+\s+\S+\s+\S*simple --iterations 2 --threads 2",
            r"pid\s+command\s+tid\s+core",
            r"\d+\s+simple\s+\d+\s+\d+",
            r"file descriptor\s+name",
            r"exited normally",
        ],
    ),
    "tls-variable-main": Scenario(
        ["--iterations", "3"],
        ["break work if i == 2", "continue", "print tls_var", "print &tls_var == &tls_var", "continue"],
        [r"\$1 = 1\b", r"\$2 = 1\b", r"exited normally"],
    ),
    "memory-and-registers": Scenario(
        [],
        [
            "break work",
            "continue",
            "x/2dw &global_point",
            "x/s global_point.label",
            "info registers rip",
            "print $orig_rax",
            "print/x $fs_base != 0",
            "print $ymm0.v8_int32",
            "print $mxcsr",
            "set var global_counter = 41",
            "print global_counter",
            "set $rax = 5",
            "print $rax",
            "kill",
        ],
        [
            r"<global_point>:\s+3\s+4",
            r"\"origin\"",
            r"rip\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <work\+\d+>",
            r"\$1 = -1",
            r"\$2 = 0x1",
            r"\$3 = \{",
            r"\$4 = \[",
            r"\$5 = 41",
            r"\$6 = 5",
            r"\[Inferior 1 \(process \d+\) killed\]",
        ],
    ),
    "watchpoint": Scenario(
        ["--iterations", "2"],
        ["break work", "continue", "watch watch_me", "delete 1", "continue", "continue", "delete", "continue"],
        [
            r"Hardware watchpoint 2: watch_me",
            r"Old value = 0\s+New value = 3",
            r"Old value = 3\s+New value = 5",
            r"exited normally",
        ],
    ),
    "hardware-breakpoint": Scenario(
        ["--iterations", "2"],
        ["hbreak touch_watch", "continue", "bt 1", "continue", "continue"],
        [
            r"Hardware assisted breakpoint 1 at",
            r"Breakpoint 1, touch_watch \(value=3\)",
            r"Breakpoint 1, touch_watch \(value=5\)",
            r"exited normally",
        ],
    ),
    "inferior-call": Scenario(
        [],
        ["break work", "continue", "delete", "print add1(41)", "print work(10) - 20", "continue"],
        [r"\$1 = 42", r"\$2 = 3", r"exited normally"],
    ),
    "catch-fork": Scenario(
        ["--fork", "--iterations", "1"],
        ["catch fork", "continue", "continue"],
        [r"Catchpoint 1 \(forked process \d+\)", r"exited normally"],
        [r"child-status: 7"],
    ),
    "catch-exec": Scenario(
        ["--exec", "--iterations", "1"],
        ["catch exec", "continue", "continue"],
        [r"process \d+ is executing new program: \S*true", r"Catchpoint 1 \(exec'd \S*true\)", r"exited normally"],
    ),
    "exit-code": Scenario(["--exit", "3"], ["continue"], [r"exited with code 03"]),
    "detach": Scenario(
        ["--iterations", "4"],
        ["break work", "continue", "detach"],
        [r"\[Inferior 1 \(process \d+\) detached\]"],
        [r"simple: result=24"],
    ),
    "threads": Scenario(
        ["--threads", "3", "--iterations", "2"],
        ["break work", "continue", "info threads", "thread apply all bt 1", "continue", "delete", "continue"],
        [r"\* 1\s+Thread \d+\.\d+ \"simple\"", r"Thread 4 \(Thread \d+\.\d+", r"exited normally"],
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_gdb_scenario(stub: str, fixture_path, name: str) -> None:
    scenario = SCENARIOS[name]
    if scenario.only and scenario.only != stub:
        pytest.skip(scenario.why)
    program = fixture_path("simple")
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *scenario.args]) as server:
        result = run_gdb(server.port, program, ["set sysroot /", *scenario.commands], timeout=90)
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        program_output = server.proc.stdout.read().decode(errors="replace")
    for pattern in scenario.expect:
        found = re.search(pattern, result.output, re.M)
        assert found, f"{stub}: /{pattern}/ not in GDB output:\n{result.output[-4000:]}"
    for pattern in scenario.program_expect:
        assert re.search(pattern, program_output), f"{stub}: /{pattern}/ not in program output:\n{program_output}"
    assert "Remote connection closed" not in result.output
    assert "internal-error" not in result.output

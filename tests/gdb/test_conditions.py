"""Target-side breakpoint conditions (`ConditionalBreakpoints+`) through the real GDB, against both stubs.

With `set breakpoint condition-evaluation target` GDB compiles a breakpoint's condition to agent bytecode,
sends it in `Z0,addr,kind;X<len>,<hex>`, and relies on the stub to report only the hits where it holds.
`set debug remote 1` shows the packets, so the tests check that the condition really went to the stub
(GDB silently falls back to evaluating it itself when the stub does not advertise the feature).
"""

from __future__ import annotations

import re

import pytest

from ptstub.linux import symbols
from tests.gdb.stubs import run_gdb, running_stub
from tests.gdb.test_nonstop_rsp import RawClient, tid_of

Z_WITH_CONDITION = re.compile(r"Sending packet: \$Z([01]),[0-9a-f]+,1;X[0-9a-f]+,[0-9a-f]+")
REMOTE_TRACE = re.compile(r"\[remote\] [^\n]*\n")


def _run(stub: str, program: str, commands: list[str], iterations: int = 10) -> tuple[str, str, str]:
    """GDB's output without packet traces, the program's output (the stub's stdout) and GDB's raw
    output, for one session run to the end."""
    with running_stub(stub, ["--once", "127.0.0.1:0", program, "--iterations", str(iterations)]) as server:
        # After connecting: set before, GDB checks the (not yet connected) target and falls back to host.
        result = run_gdb(server.port, program, ["set breakpoint condition-evaluation target", *commands])
        assert server.proc.stdout is not None
        server.proc.wait(timeout=30)
        assert "does not support breakpoint condition evaluation" not in result.output, result.output[-4000:]
        # Packet traces interleave with GDB's own lines ("Breakpoint 1, work ([remote] Sending...").
        return REMOTE_TRACE.sub("", result.output), server.proc.stdout.read().decode(), result.output


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("command", "packet"), [("break", "0"), ("hbreak", "1")])
def test_condition_on_a_global_stops_exactly_once(stub: str, fixture_path, command: str, packet: str) -> None:
    program = fixture_path("simple")
    output, program_output, trace = _run(
        stub,
        program,
        [
            f"{command} work if global_counter == 7",
            "set debug remote 1",
            "continue",
            "set debug remote 0",
            "print i",
            "print global_counter",
            "continue",
        ],
    )
    assert {m.group(1) for m in Z_WITH_CONDITION.finditer(trace)} == {packet}, trace[-4000:]
    assert len(re.findall(r"Breakpoint 1, work \(i=7\)", output)) == 1, output[-4000:]
    assert len(re.findall(r"Breakpoint 1, work", output)) == 1, output[-4000:]
    assert "$1 = 7" in output and "$2 = 7" in output, output[-4000:]
    assert "exited normally" in output, output[-4000:]
    assert "simple: global_counter=10" in program_output  # every hit ran on, the program is intact


@pytest.mark.timeout(120)
def test_changed_condition_on_a_local_replaces_the_old_one(stub: str, fixture_path) -> None:
    """`condition 1 ...` makes GDB send Z0 again with the new bytecode; the stub must use only that."""
    program = fixture_path("simple")
    output, program_output, trace = _run(
        stub,
        program,
        [
            "break work if i == 3 || i == 4",
            "set debug remote 1",
            "continue",
            "set debug remote 0",
            "condition 1 i > 7",
            "continue",
            "continue",
            "delete 1",
            "continue",
        ],
    )
    assert Z_WITH_CONDITION.search(trace), trace[-4000:]
    stops = re.findall(r"Breakpoint 1, work \(i=(\d+)\)", output)
    assert stops == ["3", "8", "9"], output[-4000:]
    assert "exited normally" in output, output[-4000:]
    assert "simple: global_counter=10" in program_output


@pytest.mark.timeout(60)
def test_condition_list_at_the_packet_level(fixture_path) -> None:
    """Malformed bytecode is answered E01 and inserts nothing; a re-sent Z0 replaces the conditions."""
    program = fixture_path("simple")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "--iterations", "3"]) as server:
        client = RawClient(server.port)
        try:
            assert b"ConditionalBreakpoints+" in client.ask(b"qSupported:multiprocess+;swbreak+")
            pid = tid_of(client.ask(b"?"))
            work = b"%x" % symbols.resolve_symbol(pid, program, "work")
            never, always = b";X3,220027", b";X3,220127"  # const8 0|1, end
            for malformed in (b";X2,9927", b";X2,22", b";X1,22", b";X3,210001", b";X0,"):
                assert client.ask(b"Z0,%s,1%s" % (work, malformed)) == b"E01", malformed
            assert client.ask(b"Z0,%s,1%s" % (work, never)) == b"OK"
            assert client.ask(b"Z0,%s,1%s%s" % (work, never, always)) == b"OK"  # any true condition reports
            first = client.ask(b"vCont;c")
            assert first.startswith(b"T05") and b"swbreak" in first, first
            assert client.ask(b"Z0,%s,1%s" % (work, never)) == b"OK"  # replaces the list: never again
            assert client.ask(b"vCont;c").startswith(b"W0;")
        finally:
            client.close()


@pytest.mark.timeout(120)
def test_false_condition_in_threads_born_after_the_resume(stub: str, fixture_path) -> None:
    """The breakpoint is set at `main`, before any worker exists; the workers, born while the program
    runs, hit it with a condition that is never true. Each such hit is resumed silently, the new thread
    too: ptstub resumed only the threads there were at GDB's `continue`, so the first worker to hit it
    stayed stopped and the program (joining it) never ended (step-over-exec.exp, `break ... if 0`)."""
    program = fixture_path("stress")
    commands = [
        "set breakpoint condition-evaluation target",
        "break main",
        "continue",
        "break hit_target if 0",
        "continue",
    ]
    args = ["--threads", "4", "--calls", "50", "--syscall", "none"]
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *args]) as server:
        output = run_gdb(server.port, program, commands).output
    assert "Breakpoint 2, hit_target" not in output, output[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]

"""Target-side dprintf (`set dprintf-style agent`, `BreakpointCommands+`) through the real GDB, both stubs.

GDB compiles the dprintf to agent bytecode ending in `printf` and sends it with the breakpoint
(`Z0,addr,1;cmds:1,X<len>,<hex>`); the stub prints at every hit, where the program's stdout goes (the
stub's own stdout, as gdbserver's `printf` in `ax_printf`), and never reports the hit: GDB sees no stop
until the program ends. `set debug remote 1` shows the packets, so the tests check that the commands
went to the stub and that no stop reply ever named the dprintf's address.
"""

from __future__ import annotations

import concurrent.futures
import re
import subprocess
from collections import Counter

import pytest

from ptstub.linux import symbols
from ptstub.rsp.agentexpr import Op
from tests.gdb.stubs import GDB, _kill_group, run_gdb, running_stub, stub_command
from tests.gdb.test_nonstop_rsp import RawClient, tid_of

REMOTE_TRACE = re.compile(r"\[remote\] [^\n]*\n")
Z_WITH_COMMANDS = re.compile(r"Sending packet: \$Z0,([0-9a-f]+),1;(?:X[0-9a-f]+,[0-9a-f]+)*;?cmds:1,X[0-9a-f]+,")
DPRINTF_AT = re.compile(r"Dprintf \d+ at (0x[0-9a-f]+)")


def _session(stub: str, program: str, args: list[str], commands: list[str]) -> tuple[str, str, str]:
    """GDB's output (packet traces kept), the stub's stdout and its stderr, for one run to the end."""
    with running_stub(stub, ["--once", "127.0.0.1:0", program, *args]) as server:
        setup = ["set dprintf-style agent", *commands, "set debug remote 1", "continue", "set debug remote 0"]
        result = run_gdb(server.port, program, setup)
        server.proc.wait(timeout=30)
        assert server.proc.stdout is not None
        return result.output, server.proc.stdout.read().decode(), server.read_stderr(timeout=1)


def _stops_at(trace: str, address: int) -> list[str]:
    """Stop replies GDB received whose expedited pc (register 16, `10:`) is `address`."""
    pc = (address).to_bytes(8, "little").hex()
    return [line for line in trace.splitlines() if "Packet received: T" in line and f";10:{pc};" in line]


def _check_agent_session(output: str) -> int:
    """The dprintf went to the stub as a target-side command, and GDB never saw it hit; its address."""
    assert "Target cannot run dprintf commands" not in output, output[-3000:]
    address = int(DPRINTF_AT.search(output).group(1), 16)  # type: ignore[union-attr]
    assert address in {int(m.group(1), 16) for m in Z_WITH_COMMANDS.finditer(output)}, output[-4000:]
    assert _stops_at(output, address) == [], output[-4000:]
    return address


@pytest.mark.timeout(120)
def test_agent_dprintf_prints_every_call_on_the_stub_stdout_and_never_stops(stub: str, fixture_path) -> None:
    program = fixture_path("simple")
    output, stdout, _ = _session(
        stub,
        program,
        ["--iterations", "7", "--exit", "3"],
        ['dprintf work,"work i=%d label=%s sum=%#x\\n",i,global_point.label,i*2+3'],
    )
    _check_agent_session(output)
    lines = stdout.splitlines()
    expected = [f"work i={i} label=origin sum={i * 2 + 3:#x}" for i in range(7)]
    assert [line for line in lines if line.startswith("work ")] == expected, stdout
    assert lines.index(expected[-1]) < lines.index(
        f"simple: result={sum(i * 2 + 3 for i in range(7))}"
    )  # printed at the hit, in order
    assert re.search(r"\[Inferior 1 \(process \d+\) exited with code 03\]", output), output[-3000:]
    assert "work i=" not in REMOTE_TRACE.sub("", output)  # GDB printed nothing itself


@pytest.mark.timeout(180)
def test_agent_dprintf_in_many_threads(stub: str, fixture_path) -> None:
    """Four workers call hit_target(i) for i in 0..29: 120 lines, each value once per worker, and the
    program's own per-thread counts intact (every hit resumed exactly once)."""
    program = fixture_path("stress")
    output, stdout, _ = _session(
        stub,
        program,
        ["--threads", "4", "--calls", "30", "--syscall", "none"],
        ['dprintf hit_target,"hit %d\\n",i'],
    )
    _check_agent_session(output)
    hits = Counter(line for line in stdout.splitlines() if line.startswith("hit "))
    assert hits == {f"hit {i}": 4 for i in range(30)}, stdout[-3000:]
    assert len(re.findall(r"ptstub-count: hit_target \d+ 30\b", stdout)) == 4, stdout[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]


@pytest.mark.timeout(120)
def test_agent_dprintf_with_a_condition(stub: str, fixture_path) -> None:
    """GDB sends the condition with the commands (`;X...;cmds:...`). ptstub prints only when it holds;
    gdbserver 13 runs a breakpoint's commands at every hit whatever its condition (linux-low.cc calls
    `run_breakpoint_commands` unconditionally), so it prints all of them."""
    program = fixture_path("simple")
    output, stdout, _ = _session(
        stub,
        program,
        ["--iterations", "6"],
        ['dprintf work,"even %d\\n",i', "condition 1 i % 2 == 0"],
    )
    _check_agent_session(output)
    assert re.search(r"Sending packet: \$Z0,[0-9a-f]+,1;X[0-9a-f]+,[0-9a-f]+;cmds:", output), output[-3000:]
    printed = [line for line in stdout.splitlines() if line.startswith("even ")]
    expected = range(0, 6, 2) if stub == "ptstub" else range(6)
    assert printed == [f"even {i}" for i in expected], stdout
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]


@pytest.mark.timeout(120)
def test_agent_dprintf_that_cannot_print_is_told_once_and_the_program_runs_on(fixture_path) -> None:
    """gdbserver 13 has no `%f` in its agent printf and exits on it ("Format directive ... not supported
    in agent printf"), killing the program; ptstub says so once on stderr and goes on."""
    program = fixture_path("simple")
    output, stdout, stderr = _session(
        "ptstub", program, ["--iterations", "4"], ['dprintf work,"%d %f\\n",i,1.5', 'dprintf add1,"never\\n"']
    )
    address = _check_agent_session(output)
    message = f"ptstub: breakpoint command at {address:#x} failed: printf: format directive '%f' not supported"
    assert stderr.count(message) == 1, stderr
    assert "simple: global_counter=4" in stdout and "never" not in stdout
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", output), output[-3000:]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("once", [False, True], ids=["reconnectable", "once"])
def test_detach_leaves_persistent_dprintfs_running_to_the_end(stub: str, fixture_path, once: bool) -> None:
    """GDB marks agent dprintfs persistent (`set disconnected-dprintf on`, the default) and leaves them
    inserted at `detach` when breakpoints stay inserted (`always-inserted on`): the stub stays attached
    and the program goes on printing without GDB. ptstub serves it to its end and exits with it, also
    with --once; gdbserver --once kills it as soon as GDB's connection closes (its exit path), so it
    gets only that far there."""
    program = fixture_path("simple")
    comm = ["--once"] if once else []
    with running_stub(stub, [*comm, "127.0.0.1:0", program, "--iterations", "2000", "--exit", "5"]) as server:
        commands = [
            "set breakpoint always-inserted on",
            "set dprintf-style agent",
            'dprintf work,"left %d\\n",i',
            "break touch_watch",
            "continue",
            "delete 2",
            "detach",
        ]
        output = run_gdb(server.port, program, commands).output
        assert server.proc.wait(timeout=60) == 0, server.read_stderr(timeout=1)
        assert server.proc.stdout is not None
        stdout = server.proc.stdout.read().decode()
        stderr = server.read_stderr(timeout=1)
    assert "Persistent commands are present, leaving gdbserver attached to the process" in stderr, stderr
    assert "Breakpoint 2, touch_watch" in output, output[-3000:]
    printed = [line for line in stdout.splitlines() if line.startswith("left ")]
    if once and stub == "gdbserver":
        assert "Killing process(es)" in stderr, stderr
        assert printed == [f"left {i}" for i in range(len(printed))] and len(printed) < 2000
        return
    assert "Child exited with status 5" in stderr, stderr
    assert printed == [f"left {i}" for i in range(2000)]
    assert "simple: global_counter=2000" in stdout


@pytest.mark.timeout(120)
def test_a_new_gdb_finds_the_program_stopped_and_the_dprintfs_gone(fixture_path) -> None:
    """While the program runs with the commands a detached GDB left, ptstub keeps listening: the next
    GDB to connect gets the program stopped where it is (not at the first GDB's last stop), and the
    dprintfs end with the GDB that set them. A busy thread calls hit_target() for ever."""
    program = fixture_path("spin")
    with running_stub("ptstub", ["127.0.0.1:0", program, "--threads", "2", "--busy", "1"]) as server:
        first = [
            "set breakpoint always-inserted on",
            "set dprintf-style agent",
            "break main",
            "continue",
            'dprintf hit_target,"busy %lu\\n",busy_counter',
            "detach",
        ]
        run_gdb(server.port, program, first)
        assert server.proc.stdout is not None
        early = [server.proc.stdout.readline() for _ in range(2)]  # `ready` and the first dprintf, any order
        assert any(line.startswith(b"busy ") for line in early), early  # printing without GDB
        # Read on meanwhile: the engine prints a line per hit, and a full pipe would hold ptstub in write()
        # (as it holds gdbserver in printf), so the next GDB would never be answered.
        with concurrent.futures.ThreadPoolExecutor(1) as reader:
            rest_future = reader.submit(server.proc.stdout.read)
            second = run_gdb(server.port, program, ["info threads", "print busy_counter", "kill"]).output
            assert server.proc.wait(timeout=30) == 0
            rest = rest_future.result(timeout=30).decode().split()
    assert "in main (" not in second, second[-3000:]  # not the first GDB's stop, long gone
    assert "hit_target" in second, second[-3000:]
    counter = int(re.search(r"\$1 = (\d+)", second).group(1))  # type: ignore[union-attr]
    numbers = [int(word) for word in rest if word.isdigit()]
    last = numbers[-1] if numbers else 0
    assert counter - 1 <= last <= counter, (counter, rest[-4:])  # no dprintf once the program stopped


@pytest.mark.timeout(120)
def test_over_stdio_the_output_goes_to_stderr(fixture_path) -> None:
    """`target remote | ptstub - prog`: stdout carries the protocol, so a dprintf prints on stderr (which
    GDB shows) and the session is intact. gdbserver prints on its stdout there, into the protocol."""
    program = fixture_path("simple")
    pipe = " ".join([*stub_command("ptstub", ["-", program, "--iterations", "3"])])
    args = [GDB, "-nx", "-batch", "-ex", "set confirm off", "-ex", f"target remote | {pipe}"]
    for command in ["set dprintf-style agent", 'dprintf work,"over stdio %d\\n",i', "continue"]:
        args += ["-ex", command]
    proc = subprocess.Popen(
        [*args, program],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        _kill_group(proc)  # type: ignore[arg-type]
    text = output.decode(errors="replace")
    assert re.findall(r"^over stdio (\d)$", text, re.MULTILINE) == ["0", "1", "2"], text[-3000:]
    assert re.search(r"\[Inferior 1 \(process \d+\) exited normally\]", text), text[-3000:]


@pytest.mark.timeout(60)
def test_commands_at_the_packet_level(fixture_path) -> None:
    """Hand-made bytecode (`printf "raw %d|%s\\n", 7, <a string in the program>`): `BreakpointCommands+`
    in qSupported, each hit prints, `vCont;c` is answered only by the exit; bytecode that cannot be run
    is answered E01 and inserts nothing."""
    program = fixture_path("simple")
    with running_stub("ptstub", ["--once", "127.0.0.1:0", program, "--iterations", "3"]) as server:
        client = RawClient(server.port)
        try:
            assert b"BreakpointCommands+" in client.ask(b"qSupported:multiprocess+;swbreak+")
            pid = tid_of(client.ask(b"?"))
            work = b"%x" % symbols.resolve_symbol(pid, program, "work")
            label = symbols.resolve_symbol(pid, program, "global_point") + 8  # its `label` member
            fmt = b"raw %d|%s\\n\0"
            code = (
                bytes([Op.CONST8, 7])
                + bytes([Op.CONST64])
                + label.to_bytes(8, "big")
                + bytes([Op.REF64, Op.SWAP, Op.CONST8, 0, Op.CONST8, 0, Op.PRINTF, 2, 0, len(fmt)])
                + fmt
                + bytes([Op.END])
            )
            for bad in (code[:-4] + bytes([Op.END]), bytes([0xFF, Op.END])):
                assert client.ask(b"Z0,%s,1;cmds:1,X%x,%s" % (work, len(bad), bad.hex().encode())) == b"E01"
            assert client.ask(b"Z0,%s,1;cmds:0,X%x,%s" % (work, len(code), code.hex().encode())) == b"OK"
            assert client.ask(b"vCont;c").startswith(b"W0;")  # no stop before the exit
        finally:
            client.close()
        server.proc.wait(timeout=30)
        assert server.proc.stdout is not None
        stdout = server.proc.stdout.read().decode()
    assert stdout.splitlines()[:3] == ["raw 7|origin"] * 3, stdout

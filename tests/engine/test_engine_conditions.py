"""Conditions and agent dprintf judged in the engine (csrc/agenthit.c), on fixtures/stress's threads.

Installed as the session installs them for GDB (`Target.judge_breakpoint`), a false condition's hits and a
dprintf's hits never come out of `cont()`: the engine judges and passes each one in its wait loop. Every
call is still made (the fixture's own counts), every hit was judged and passed in C (the engine's
counts), and where the instruction under the breakpoint is carried out by the tracer the world was
never stopped at all (no stop-all: `n_stops` stays 0).
"""

from __future__ import annotations

import pytest
from helpers import launched, parse_report, time_limit

from ptstub.events import BreakpointHit, Exited, Verdict
from ptstub.rsp.agentexpr import Op
from ptstub.target import AgentCode

pytestmark = pytest.mark.usefixtures("no_leftover_children")

THREADS, CALLS = 8, 500
NEVER = bytes([Op.CONST8, 0, Op.END])
RDI = 5  # GDB's number for rdi (hit_target's argument) ...
RDI_OFFSET = 14 * 8  # ... and its place in the user_regs_struct


def _install(inf, address: int, conditions: list[bytes], commands: list[bytes] = [], output_fd: int = 1) -> None:  # noqa: B006
    registers = [(0, 0)] * 8
    registers[RDI] = (RDI_OFFSET, 8)
    assert inf.judge_breakpoint(address, AgentCode(tuple(conditions), tuple(commands), tuple(registers), output_fd))


def _judged(inf) -> tuple[int, int]:
    return inf.stats["hits_judged"], inf.stats["hits_passed"]


def _place(inf, where: str) -> int:
    """hit_target's push (emulated as ever), its load of `sink` (emulated for a pass), or the
    `mov %rsp,%rbp` after the push (stepped, the other threads held)."""
    start = inf.symbol("hit_target")
    code = inf.read_memory(start, 24)
    if where == "push":
        assert code[0] == 0x55
        return start
    if where == "step":
        assert code[1:4] == b"\x48\x89\xe5"
        return start + 1
    load = code.find(b"\x8b\x15")  # mov sink(%rip),%edx
    assert load > 0, code.hex()
    return start + load


@time_limit(120)
@pytest.mark.parametrize("where", ["push", "load", "step"])
def test_false_condition_never_leaves_the_engine(fixture_path, tmp_path, where: str) -> None:
    out = tmp_path / "stdout"
    argv = [fixture_path("stress"), "--threads", str(THREADS), "--calls", str(CALLS), "--syscall", "none"]
    with out.open("w") as stdout, launched(argv, stdout=stdout) as inf:
        address = _place(inf, where)
        inf.insert_breakpoint(address)
        _install(inf, address, [NEVER, NEVER])
        event = inf.cont(timeout=60)
        assert event == Exited(inf.pid, 0)
        assert _judged(inf) == (THREADS * CALLS, THREADS * CALLS)
        if where != "step":
            assert inf._e.n_stops == 0  # nobody was ever stopped for a hit
    report = parse_report(out.read_text())
    assert sorted(report.counts.values()) == [CALLS] * THREADS


@time_limit(120)
def test_agent_dprintf_with_a_condition_prints_in_the_engine(fixture_path, tmp_path) -> None:
    """`dprintf hit_target,"hit %d\\n",i` with `i % 100 == 7`, as GDB compiles it (reg, const, rem,
    equal; the argument, channel and function pushed, then printf)."""
    condition = bytes([Op.REG, 0, RDI, Op.EXT, 32, Op.CONST8, 100, Op.REM_SIGNED, Op.CONST8, 7, Op.EQUAL, Op.END])
    fmt = b"hit %d\\n\0"
    printf = bytes([Op.REG, 0, RDI, Op.EXT, 32, Op.CONST8, 0, Op.CONST8, 0, Op.PRINTF, 1, 0, len(fmt)])
    printed = tmp_path / "printed"
    argv = [fixture_path("stress"), "--threads", str(THREADS), "--calls", str(CALLS), "--syscall", "none"]
    with printed.open("w") as sink, launched(argv, stdout=(tmp_path / "stdout").open("w")) as inf:
        address = _place(inf, "load")
        inf.insert_breakpoint(address)
        _install(inf, address, [condition], [printf + fmt + bytes([Op.END])], sink.fileno())
        assert inf.cont(timeout=60) == Exited(inf.pid, 0)
        assert _judged(inf) == (THREADS * CALLS, THREADS * CALLS)
    lines = printed.read_text().splitlines()
    assert sorted(lines) == sorted(f"hit {i}" for i in range(7, CALLS, 100) for _ in range(THREADS))


@time_limit(120)
def test_true_condition_is_reported_with_its_verdict_and_a_removed_one_is_gone(fixture_path) -> None:
    """A hit whose condition holds stops the world as any hit, marked as judged; removing the
    breakpoint drops its condition with it (a new plain breakpoint there reports every hit)."""
    holds_at_3 = bytes([Op.REG, 0, RDI, Op.EXT, 32, Op.CONST8, 3, Op.EQUAL, Op.END])
    argv = [fixture_path("stress"), "--threads", "1", "--calls", "6", "--syscall", "none"]
    with launched(argv) as inf:
        address = _place(inf, "load")
        inf.insert_breakpoint(address)
        _install(inf, address, [holds_at_3])
        event = inf.cont(timeout=60)
        assert event == BreakpointHit(event.tid, address, engine_verdict=Verdict.REPORT)
        assert inf.get_regs(event.tid)["rdi"] == 3
        inf.remove_breakpoint(address)
        inf.insert_breakpoint(address)
        event = inf.cont(timeout=60)
        assert event == BreakpointHit(event.tid, address)  # nothing judged: a plain hit, at i == 4
        assert inf.get_regs(event.tid)["rdi"] == 4

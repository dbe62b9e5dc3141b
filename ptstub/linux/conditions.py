"""Target-side breakpoint conditions and agent dprintf judged in the C engine, at the hit (the Linux
side of `Target.judge_breakpoint`).

GDB sends a breakpoint's conditions (`Z0,addr,kind;X len,bytecode`) and, with `set dprintf-style
agent`, its commands (`;cmds:persist,X len,bytecode`). The session keeps them and evaluates them with
`ptstub.rsp.agentexpr` when a hit reaches it; it also hands them here as an `AgentCode`, and the engine
(`csrc/agenthit.h`) then judges a hit where it sees it: a false condition or an agent dprintf never
stops the world nor reaches Python (docs/design-notes.md, "Conditions and dprintf in the engine"). The
Python evaluator stays the reference the C one is tested against (tests/unit/test_agentexpr_c.py).

Invariants:
- Installed only what the C evaluator runs exactly as the Python one (`pt_ax_check`: registers of the
  user_regs_struct, printf widths it formats); for anything else `install` says False and the session
  judges, as before.
- The engine's entry goes with its breakpoint (removed, an exec, the engine freed), and each `install`
  replaces the entry at its address, so a changed or dropped condition is never judged with the old
  bytecode.
- A hit the engine reports carries its verdict (`BreakpointHit.engine_verdict`, `ptstub.events.Verdict`).
"""

from __future__ import annotations

from ptstub import logs
from ptstub.linux.ffi import ffi, lib
from ptstub.target import AgentCode

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

log = logs.logger("ptstub.events")
MAX_REGISTERS = 128  # the engine's table of GDB register numbers (agenthit.c, MAX_REGS)


def install(e: Any, address: int, code: AgentCode | None) -> bool:
    """Make the engine's entry for the software breakpoint at `address` judge with `code` (None or empty:
    no entry); True when the engine judges there from now on."""
    expressions: list[bytes] = []
    ncommands = 0
    if code is not None and (code.conditions or code.commands):
        _give_registers(e, code.registers)
        lib.pt_agent_set_output(e, code.output_fd)
        expressions = [*code.conditions, *code.commands]
        ncommands = len(code.commands)
    lens = ffi.new("uint32_t[]", [len(bytecode) for bytecode in expressions] or [0])
    rc = lib.pt_agent_install(e, address, b"".join(expressions), lens, len(expressions) - ncommands, ncommands)
    if rc != 0 and expressions:
        log.debug("conditions at %#x stay with the session (engine: %d)", address, rc)
    return rc == 0 and bool(expressions)


def _give_registers(e: Any, registers: tuple[tuple[int, int], ...]) -> None:
    """Tell the engine where GDB's register numbers are in the user_regs_struct."""
    count = min(len(registers), MAX_REGISTERS)
    offsets, sizes = ffi.new("int16_t[]", count or 1), ffi.new("uint8_t[]", count or 1)
    for regnum, (offset, size) in enumerate(registers[:count]):
        offsets[regnum], sizes[regnum] = offset, size
    lib.pt_agent_set_registers(e, offsets, sizes, count)


def counts(e: Any) -> tuple[int, int]:
    """(hits judged, hits passed) by engine `e` since it was made."""
    judged, passed = ffi.new("uint64_t *"), ffi.new("uint64_t *")
    lib.pt_agent_counts(e, judged, passed)
    return int(judged[0]), int(passed[0])

"""Target-side breakpoint conditions and agent dprintf judged in the C engine, at the hit.

GDB sends a breakpoint's conditions (`Z0,addr,kind;X len,bytecode`) and, with `set dprintf-style
agent`, its commands (`;cmds:persist,X len,bytecode`). The session keeps them (`ptstub.session.breakpoints`:
`conditions` and `commands`) and evaluates them with `ptstub.rsp.agentexpr` when a hit reaches it; this module also
installs them in the engine (`csrc/agenthit.h`), which then judges a hit where it sees it: a false
condition or an agent dprintf never stops the world nor reaches Python (docs/design-notes.md,
"Conditions and dprintf in the engine"). The Python evaluator stays the reference the C one is tested
against (tests/unit/test_agentexpr_c.py).

Invariants:
- Installed only what the C evaluator runs exactly as the Python one (`pt_ax_check`: registers of the
  user_regs_struct, printf widths it formats); anything else stays with the session, as before.
- Only a software breakpoint with no hardware breakpoint of GDB's at the same address (the session
  then looks at both, gdbserver's `gdb_condition_true_at_breakpoint`).
- The engine's entry goes with its breakpoint (removed, an exec, the engine freed); `sync` after each
  `Z`/`z` keeps it equal to the session's lists, so a changed or dropped condition is never judged
  with the old bytecode.
- A hit the engine reports carries its verdict (`BreakpointHit.engine_verdict`); the session takes it
  as it is and does not evaluate again (other threads ran since the hit).
"""

from __future__ import annotations

from enum import IntEnum
from weakref import WeakKeyDictionary

from ptstub import logs
from ptstub.errors import PtstubError
from ptstub.target import BreakpointKind

TYPE_CHECKING = False  # not `typing`'s: kept off the start-up path (ptstub.logs)
if TYPE_CHECKING:
    from typing import Any

log = logs.logger("ptstub.events")


class Verdict(IntEnum):
    """What the engine decided at a hit (`PT_JUDGE_*` of csrc/agenthit.h), in `BreakpointHit.engine_verdict`."""

    NONE = 0  # nothing installed there: the session judges, as before
    REPORT = 1  # a condition held (or failed: counted as true) and there are no commands
    PASS = 2  # never reported: the hit was passed in the engine
    FAILED = 3  # a command failed: the session tells the user once, and the hit is not reported


# per process: the addresses installed in its engine, and the register layout its engine was given
_installed: WeakKeyDictionary[Any, set[int]] = WeakKeyDictionary()
_layouts: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def sync(breakpoints: Any, target: Any, address: int) -> None:
    """Make the engine's entry for `address` match the session's conditions and commands there
    (`breakpoints`: the session's `Breakpoints`; called after every `Z0`/`Z1`/`z0`/`z1`); nothing to do
    for a plain breakpoint."""
    engine = getattr(target, "_e", None)  # the ptstub.linux engine; other targets judge in Python
    if engine is None or getattr(target, "_closed", True):
        return
    key = (target.pid, BreakpointKind.SOFTWARE, address)
    conditions = breakpoints.conditions.get(key, ())
    commands = breakpoints.commands.get(key)
    installed = _installed.setdefault(target, set())
    if not conditions and commands is None and address not in installed:
        return
    from ptstub._ptcore import ffi, lib

    hardware_here = any(k[0] == target.pid and k[1] == address for k in breakpoints.hardware_breakpoints)
    expressions = [e.code for e in conditions] + ([e.code for e in commands.expressions] if commands else [])
    if hardware_here or not expressions or not _give_registers(breakpoints.s, target, engine):
        expressions = []
    lib.pt_agent_set_output(engine, breakpoints.s.agent_output_fd)
    codes = b"".join(expressions)
    lens = ffi.new("uint32_t[]", [len(code) for code in expressions] or [0])
    ncommands = len(expressions) - len(conditions) if expressions else 0
    rc = lib.pt_agent_install(engine, address, codes, lens, len(expressions) - ncommands, ncommands)
    if rc == 0 and expressions:
        installed.add(address)
    else:
        installed.discard(address)
        if expressions:
            log.debug("conditions at %#x stay with the session (engine: %d)", address, rc)


def _give_registers(session: Any, target: Any, engine: Any) -> bool:
    """Tell the engine where GDB's register numbers are in the user_regs_struct (once per layout)."""
    try:
        layout = session.regs.layout_for(session.threads.select(0))
    except (PtstubError, OSError, ValueError) as err:
        log.debug("no register layout for the engine's conditions: %s", err)
        return False
    if _layouts.get(target) is layout:
        return True
    from ptstub._ptcore import ffi, lib
    from ptstub.arch.x86_64 import Source

    count = min(len(layout.registers), 128)
    offsets, sizes = ffi.new("int16_t[]", count), ffi.new("uint8_t[]", count)
    for reg in layout.registers[:count]:
        if reg.source is Source.GPR and reg.size <= 8:  # as layout.read_register: the stored bytes
            offsets[reg.regnum], sizes[reg.regnum] = reg.offset, reg.size
    lib.pt_agent_set_registers(engine, offsets, sizes, count)
    _layouts[target] = layout
    return True


def should_report(breakpoints: Any, event: Any) -> bool:
    """The session's answer for a hit the engine judged: reported when a condition held; a failed
    command is told once on stderr (with the Python evaluator's words) and not reported."""
    if event.engine_verdict != Verdict.FAILED:
        return True
    pid = breakpoints.s.process_for(event.tid).pid
    where = (pid, event.pc)
    if where not in breakpoints.command_failures:
        breakpoints.command_failures.add(where)
        commands = breakpoints.commands.get((pid, BreakpointKind.SOFTWARE, event.pc))
        message = _failure(breakpoints, event.tid, commands)
        breakpoints.s.announce(f"ptstub: breakpoint command at {event.pc:#x} failed: {message}")
    return False


def _failure(breakpoints: Any, tid: int, commands: Any) -> str:
    """Why the commands fail, from the reference evaluator, its output discarded (the engine printed
    what came before the failure)."""
    from ptstub.rsp.agentexpr import AgentExpressionError, run_command

    if commands is None:
        return "removed meanwhile"
    read_register, read_memory = breakpoints.agent_readers(tid)
    for expression in commands.expressions:
        try:
            run_command(expression, read_register, read_memory, lambda data: None)
        except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
            return str(err)
    return "in the engine (not again in Python)"


def counts(target: Any) -> tuple[int, int]:
    """(hits judged, hits passed) by the engine of `target` since it was made (tests, benchmarks)."""
    from ptstub._ptcore import ffi, lib

    judged, passed = ffi.new("uint64_t *"), ffi.new("uint64_t *")
    lib.pt_agent_counts(target._e, judged, passed)
    return int(judged[0]), int(passed[0])

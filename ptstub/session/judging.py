"""Target-side conditions and commands judged by the backend at the hit (`Target.judge_breakpoint`).

The breakpoint book keeps GDB's conditions and commands and evaluates them when a hit reaches the
session (`ptstub.rsp.agentexpr`). After each `Z0`/`Z1`/`z0`/`z1` that can change what a software
breakpoint has, `sync` hands its bytecode to the backend as an `AgentCode`; a backend that can judges
the hits there itself (the Linux engine: docs/design-notes.md, "Conditions and dprintf in the engine"),
so a false condition or an agent dprintf never stops the world. A hit it reports carries its verdict,
which `should_report` takes as it is: the session does not evaluate again (other threads ran since).

Invariants:
- Handed over only for a software breakpoint with no hardware breakpoint of GDB's at the same address
  (the session then looks at both, gdbserver's `gdb_condition_true_at_breakpoint`), and only once the
  register layout is known; otherwise the backend is told to judge nothing there.
- `BreakpointBook.judged` names the (pid, address) the backend judges, so a breakpoint that never had
  a condition costs no call, and one that lost its conditions is withdrawn.
"""

from __future__ import annotations

from ptstub import logs
from ptstub.errors import PtstubError
from ptstub.events import BreakpointHit, Verdict
from ptstub.target import AgentCode, BreakpointKind, Target

TYPE_CHECKING = False  # not `typing`'s: kept off the start-up path (ptstub.logs)
if TYPE_CHECKING:
    from ptstub.arch.x86_64 import RegisterLayout
    from ptstub.rsp.agentexpr import BreakpointCommands
    from ptstub.session.breakpoints import BreakpointBook

log = logs.logger("ptstub.events")
MAX_REGISTERS = 128  # GDB register numbers a backend is told about
_last_offsets: tuple[RegisterLayout, tuple[tuple[int, int], ...]] | None = None  # the last layout's


def sync(book: BreakpointBook, target: Target, address: int) -> None:
    """Make the backend judge the software breakpoint at `address` with the conditions and commands the
    book has there now (or nothing); nothing to do for a plain breakpoint it never judged."""
    key = (target.pid, BreakpointKind.SOFTWARE, address)
    conditions = book.conditions.get(key, ())
    commands = book.commands.get(key)
    where = (target.pid, address)
    if not conditions and commands is None and where not in book.judged:
        return
    hardware_here = any(k[0] == target.pid and k[1] == address for k in book.hardware_breakpoints)
    registers = None if hardware_here or not (conditions or commands) else _register_offsets(book)
    code = None
    if registers is not None:
        command_codes = tuple(e.code for e in commands.expressions) if commands else ()
        code = AgentCode(tuple(e.code for e in conditions), command_codes, registers, book.s.agent_output_fd)
    if target.judge_breakpoint(address, code):
        book.judged.add(where)
    else:
        book.judged.discard(where)


def _register_offsets(book: BreakpointBook) -> tuple[tuple[int, int], ...] | None:
    """Where GDB's register numbers are in the general registers (`AgentCode.registers`); None while
    the register layout cannot be read."""
    global _last_offsets
    session = book.s
    try:
        layout = session.regs.layout_for(session.threads.select(0))
    except (PtstubError, OSError, ValueError) as err:
        log.debug("no register layout for the backend's conditions: %s", err)
        return None
    if _last_offsets is not None and _last_offsets[0] is layout:
        return _last_offsets[1]
    from ptstub.arch.x86_64 import Source

    count = min(len(layout.registers), MAX_REGISTERS)
    offsets = [(0, 0)] * count
    for reg in layout.registers[:count]:
        if reg.source is Source.GPR and reg.size <= 8:  # as layout.read_register: the stored bytes
            offsets[reg.regnum] = (reg.offset, reg.size)
    _last_offsets = (layout, tuple(offsets))
    return _last_offsets[1]


def should_report(book: BreakpointBook, event: BreakpointHit) -> bool:
    """The session's answer for a hit the backend judged: reported when a condition held; a failed
    command is told once on stderr (with the Python evaluator's words) and not reported."""
    if event.engine_verdict != Verdict.FAILED:
        return True
    pid = book.s.process_for(event.tid).pid
    where = (pid, event.pc)
    if where not in book.command_failures:
        book.command_failures.add(where)
        commands = book.commands.get((pid, BreakpointKind.SOFTWARE, event.pc))
        message = _failure(book, event.tid, commands)
        book.s.announce(f"ptstub: breakpoint command at {event.pc:#x} failed: {message}")
    return False


def _failure(book: BreakpointBook, tid: int, commands: BreakpointCommands | None) -> str:
    """Why the commands fail, from the reference evaluator, its output discarded (the backend printed
    what came before the failure)."""
    from ptstub.rsp.agentexpr import AgentExpressionError, run_command

    if commands is None:
        return "removed meanwhile"
    read_register, read_memory = book.agent_readers(tid)
    for expression in commands.expressions:
        try:
            run_command(expression, read_register, read_memory, lambda data: None)
        except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
            return str(err)
    return "in the backend (not again in Python)"

"""The breakpoint book: every breakpoint and watchpoint GDB inserted, per process, with its target-side
conditions and commands (GDB manual, "General Query Packets": ConditionalBreakpoints,
BreakpointCommands), and the evaluation of those at a hit.

Invariant: what one process had is forgotten in one place, `forget(pid)` (its end, detach, kill, exec,
a reused pid); the backend keeps its own reference counts and saved bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from ptstub import logs
from ptstub.errors import PtstubError
from ptstub.events import (
    BreakpointHit,
    StopEvent,
)
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.target import BreakpointKind, Target

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.rsp.agentexpr import AgentExpression, BreakpointCommands
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class BreakpointBook:
    """Software and hardware breakpoints, watchpoints, conditions and commands, by process."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.software_breakpoints: dict[int, set[int]] = {}  # pid -> addresses GDB inserted (idempotent Z0)
        self.hardware_breakpoints: set[tuple[int, int, BreakpointKind, int]] = set()  # (pid, address, kind, length)
        # Target-side conditions (ConditionalBreakpoints): (pid, kind, address) -> bytecodes, only for
        # breakpoints GDB inserted with `;X...`; an unconditional one has no entry.
        self.conditions: dict[tuple[int, BreakpointKind, int], tuple[AgentExpression, ...]] = {}
        # Target-side commands (BreakpointCommands, `set dprintf-style agent`): same keys, only for
        # breakpoints inserted with `;cmds:`. A hit there runs them and is not reported.
        self.commands: dict[tuple[int, BreakpointKind, int], BreakpointCommands] = {}
        self.command_failures: set[tuple[int, int]] = set()  # (pid, address) whose failure was told once
        self.judged: set[tuple[int, int]] = set()  # (pid, address) the backend judges (ptstub.session.judging)
        # Software breakpoints GDB removed while the world is stopped whose int3 is still in memory:
        # (pid, address) -> process. GDB's breakpoint loop removes one and inserts it again at every stop
        # (z0 then Z0 of the shared-library event breakpoint): the pair then costs no memory write.
        # Taken out for real (`settle`) before any other request (design-notes, "Lazy breakpoint removal").
        self.lifted: dict[tuple[int, int], Target] = {}

    def forget(self, pid: int) -> None:
        """Forget every breakpoint, watchpoint, condition and command of process `pid` (it ended, was
        let go, or exec'd a new image): the one place this is done, so a reused pid starts clean."""
        self.software_breakpoints.pop(pid, None)
        self.hardware_breakpoints = {k for k in self.hardware_breakpoints if k[0] != pid}
        if self.conditions:
            self.conditions = {k: v for k, v in self.conditions.items() if k[0] != pid}
        if self.commands:
            self.commands = {k: v for k, v in self.commands.items() if k[0] != pid}
        self.command_failures = {k for k in self.command_failures if k[0] != pid}
        self.judged = {k for k in self.judged if k[0] != pid}
        if self.lifted:
            self.lifted = {k: v for k, v in self.lifted.items() if k[0] != pid}

    def clear(self) -> None:
        """Forget everything of every process (a new target replaces them, or the connection ended)."""
        self.software_breakpoints.clear()
        self.hardware_breakpoints.clear()
        self.conditions.clear()
        self.commands.clear()
        self.command_failures.clear()
        self.judged.clear()
        self.lifted.clear()

    def settle(self) -> None:
        """Take out of memory every breakpoint GDB removed since the last request that could tell (any but
        Z, z and QPassSignals): memory reads show the saved bytes either way, but a resume would run into
        the int3, a detach would leave it. A process that vanished meanwhile has nothing to take out."""
        lifted, self.lifted = self.lifted, {}
        for (_, address), target in lifted.items():
            with contextlib.suppress(PtstubError):
                target.remove_breakpoint(address)

    def copy_to_child(self, parent_pid: int, child_pid: int) -> None:
        """A fork child has the parent's int3 bytes in its copy of memory: GDB removes them (z0) before
        it detaches the child, and each removal must find its breakpoint."""
        self.software_breakpoints[child_pid] = set(self.software_breakpoints.get(parent_pid, ()))

    def remove_from(self, target: Target) -> None:
        """Take every breakpoint and watchpoint GDB inserted out of `target` (a GDB left): the program
        runs on without them, and a GDB that reconnects inserts its own."""
        for address in self.software_breakpoints.get(target.pid, ()):
            with contextlib.suppress(PtstubError):
                target.remove_breakpoint(address)
        for pid, address, kind, length in self.hardware_breakpoints:
            if pid != target.pid:
                continue
            with contextlib.suppress(PtstubError):
                target.remove_breakpoint(address, kind, length)

    def has_persistent_commands(self, pid: int) -> bool:
        """Whether a breakpoint of `pid` has commands GDB wants run after it detaches (`persist`)."""
        return any(key[0] == pid and commands.persist for key, commands in self.commands.items())

    def handle_insert_breakpoint(self, c: cmd.InsertBreakpoint) -> bytes:
        if c.kind is BreakpointKind.READ_WATCH:
            return replies.unsupported()  # x86 has no read-only watchpoints (gdbserver says the same)
        # Checked before anything is inserted: malformed bytecode is answered E01 and changes nothing.
        judged_in_engine = bool(self.conditions or self.commands)  # what the engine has may change
        conditions: tuple[AgentExpression, ...] = ()
        commands: tuple[AgentExpression, ...] = ()
        if c.conditions or c.commands:  # agent expressions are rare: their module loads with the first one
            from ptstub.rsp.agentexpr import parse_agent_expression

            conditions = tuple(parse_agent_expression(code) for code in c.conditions)
            commands = tuple(parse_agent_expression(code) for code in c.commands)
        target = self.s.current()
        if c.kind is BreakpointKind.SOFTWARE and self.lifted.pop((target.pid, c.address), None) is not None:
            if not (conditions or commands or judged_in_engine):
                self.software_breakpoints.setdefault(target.pid, set()).add(c.address)
                return replies.ok()  # removed lazily and inserted again: its int3 never left memory
            target.remove_breakpoint(c.address)  # inserted anew below, with what the engine judges
        if c.kind is BreakpointKind.SOFTWARE:
            # Z0 is idempotent (GDB manual, "insert breakpoint"): a repeat re-writes the int3, which also
            # heals one a vfork child's detach restored in the shared memory.
            inserted = self.software_breakpoints.setdefault(target.pid, set())
            if c.address in inserted:
                target.reinsert_breakpoint(c.address)
            else:
                target.insert_breakpoint(c.address, c.kind, c.length)
                inserted.add(c.address)
        else:
            key = (target.pid, c.address, c.kind, c.length)
            if key not in self.hardware_breakpoints:
                target.insert_breakpoint(c.address, c.kind, c.length)
                self.hardware_breakpoints.add(key)
        if conditions or self.conditions:
            self.set_conditions((target.pid, c.kind, c.address), conditions)
        if commands or self.commands:
            self.set_commands((target.pid, c.kind, c.address), commands, c.persist_commands)
        if judged_in_engine or conditions or commands:  # judged in the engine's loop where it can
            from ptstub.session import judging

            judging.sync(self, target, c.address)
        return replies.ok()

    def set_conditions(self, key: tuple[int, BreakpointKind, int], conditions: tuple[AgentExpression, ...]) -> None:
        """GDB re-sends Z0/Z1 when a condition changes: the new list replaces the old one (gdbserver's
        `clear_breakpoint_conditions_and_commands` before `process_point_options`)."""
        if conditions and key[1] in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            self.conditions[key] = conditions
        else:
            self.conditions.pop(key, None)

    def set_commands(
        self, key: tuple[int, BreakpointKind, int], commands: tuple[AgentExpression, ...], persist: bool
    ) -> None:
        """As `_set_conditions`: a re-sent Z0/Z1 replaces the commands (or drops them when it has none)."""
        if commands and key[1] in (BreakpointKind.SOFTWARE, BreakpointKind.HARDWARE):
            from ptstub.rsp.agentexpr import BreakpointCommands

            self.commands[key] = BreakpointCommands(commands, persist)
        else:
            self.commands.pop(key, None)
        self.command_failures.discard((key[0], key[2]))

    def handle_remove_breakpoint(self, c: cmd.RemoveBreakpoint) -> bytes:
        if c.kind is BreakpointKind.READ_WATCH:
            return replies.unsupported()
        target = self.s.current()
        if c.kind is BreakpointKind.SOFTWARE:
            inserted = self.software_breakpoints.setdefault(target.pid, set())
            if c.address not in inserted and target is not self.s.target:
                return replies.ok()  # a fork child's copy of the parent's int3 (GDB removes it before a detach)
            inserted_before = c.address in inserted
            inserted.discard(c.address)
            if inserted_before and self.can_lift():
                self.lifted[(target.pid, c.address)] = target
                return replies.ok()
        else:
            key = (target.pid, c.address, c.kind, c.length)
            if key not in self.hardware_breakpoints:
                return replies.ok()
            self.hardware_breakpoints.discard(key)
        judged_in_engine = bool(self.conditions or self.commands)
        if self.conditions:
            self.conditions.pop((target.pid, c.kind, c.address), None)
        if self.commands:
            self.commands.pop((target.pid, c.kind, c.address), None)
        target.remove_breakpoint(c.address, c.kind, c.length)
        if judged_in_engine:
            from ptstub.session import judging

            judging.sync(self, target, c.address)
        return replies.ok()

    def can_lift(self) -> bool:
        """Whether a removal may wait for the next request: all-stop with the world stopped (in non-stop a
        running thread would hit the int3), and no condition or command anywhere (the engine judges
        those from its own breakpoint list, which must be exact)."""
        return not (self.s.conn.non_stop or self.s.running or self.conditions or self.commands)

    def breakpoint_at(self, pid: int, pc: int) -> bool:
        """Whether GDB has a software or hardware breakpoint at `pc` in process `pid`."""
        if pc in self.software_breakpoints.get(pid, ()):
            return True
        return any(key[0] == pid and key[1] == pc for key in self.hardware_breakpoints)

    def should_report(self, event: StopEvent) -> bool:
        """Whether a stop goes to GDB: a breakpoint hit does only if a GDB breakpoint at its address is
        unconditional or has a condition that holds (gdbserver's `gdb_condition_true_at_breakpoint`, which
        looks at the software and the hardware breakpoint there). A condition that cannot be evaluated
        counts as true, as in gdbserver: GDB then sees the stop rather than the stub hiding it.
        A hit whose condition holds at a breakpoint with target-side commands (an agent dprintf) runs
        them and is not reported either (gdbserver's `gdb_no_commands_at_breakpoint`)."""
        if (not self.conditions and not self.commands) or type(event) is not BreakpointHit:
            return True
        if event.engine_verdict:  # the backend evaluated them at the hit: taken as it is
            from ptstub.session import judging

            return judging.should_report(self, event)
        pid, pc = self.s.process_for(event.tid).pid, event.pc
        keys = []
        if pc in self.software_breakpoints.get(pid, ()):
            keys.append((pid, BreakpointKind.SOFTWARE, pc))
        if any(key[:3] == (pid, pc, BreakpointKind.HARDWARE) for key in self.hardware_breakpoints):
            keys.append((pid, BreakpointKind.HARDWARE, pc))
        if not keys:
            return True
        lists = [self.conditions.get(key, ()) for key in keys]
        if all(lists) and not any(self.condition_holds(e, event.tid) for conditions in lists for e in conditions):
            return False
        commands = [self.commands[key] for key in keys if key in self.commands]
        if not commands:
            return True
        self.run_commands(commands, event.tid, (pid, pc))
        return False

    def agent_readers(self, tid: int) -> tuple[Callable[[int], int], Callable[[int, int], bytes]]:
        """Register (by GDB number, read once per hit) and memory readers of a stopped thread for the
        agent-expression evaluator."""
        from ptstub.rsp.agentexpr import AgentExpressionError

        target = self.s.process_for(tid)
        registers: dict[str, tuple[bytes, bytes]] = {}

        def read_register(regnum: int) -> int:
            if not registers:
                registers["gpr"] = (target.read_gpr(tid), b"")
            gpr, xstate = registers["gpr"]
            layout = self.s.regs.layout_for(tid)
            if not xstate and layout.register(regnum).source != "gpr":
                xstate = target.read_xstate(tid)
                registers["gpr"] = (gpr, xstate)
            raw = layout.read_register(regnum, gpr, xstate)
            if len(raw) > 8:  # gdbserver's `reg` knows 1-8 byte registers only
                raise AgentExpressionError(f"register {regnum} is {len(raw)} bytes wide")
            return int.from_bytes(raw, "little")

        return read_register, target.read_memory

    def condition_holds(self, expression: AgentExpression, tid: int) -> bool:
        from ptstub.rsp.agentexpr import AgentExpressionError, evaluate

        try:
            return evaluate(expression, *self.agent_readers(tid)) != 0
        except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
            log.debug("breakpoint condition failed in thread %d (%s): reported as true", tid, err)
            return True

    def run_commands(self, commands: list[BreakpointCommands], tid: int, where: tuple[int, int]) -> None:
        """Run the commands of the breakpoints at a hit, in the order GDB sent them, while every thread
        is stopped (all-stop) as for a condition. One that fails ends the rest, as gdbserver's
        `run_breakpoint_commands` gives up ("stop digging the hole deeper"), and is told on stderr once
        per breakpoint. gdbserver 13 prints only the first dprintf at an address (its parser keeps one
        expression of a `cmds:` list, and its loop takes the empty stack a dprintf ends with for an
        error); here every dprintf there prints."""
        from ptstub.rsp.agentexpr import AgentExpressionError, run_command

        read_register, read_memory = self.agent_readers(tid)
        for expression in (expression for command in commands for expression in command.expressions):
            try:
                run_command(expression, read_register, read_memory, self.print_agent_output)
            except (AgentExpressionError, PtstubError, OSError, KeyError, ValueError) as err:
                log.debug("breakpoint command failed in thread %d: %s", tid, err)
                if where not in self.command_failures:
                    self.command_failures.add(where)
                    self.s.announce(f"ptstub: breakpoint command at {where[1]:#x} failed: {err}")
                return

    def print_agent_output(self, data: bytes) -> None:
        """A command's printf output, written at once (gdbserver flushes after each printf) to where the
        program's stdout goes; nothing is lost to a partial write, an error only logged (stdout closed)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.s.agent_output_fd, view) :]
        except OSError as err:
            log.debug("agent printf output lost: %s", err)

"""Agent expressions: check and evaluate GDB's bytecode for target-side breakpoint conditions and commands.

GDB compiles `break LOC if COND` to bytecode when `set breakpoint condition-evaluation target` is in
effect (the default `auto` does so whenever the stub advertises `ConditionalBreakpoints+`) and sends it
in `Z0`/`Z1` as `;X<len>,<hex>` (GDB manual, "Packets", `Z0`; appendix "The GDB Agent Expression
Mechanism", "Bytecode Descriptions"; opcode values from GDB's `gdbsupport/ax.def`). The stub reports a
hit only when a condition evaluates to non-zero. With `set dprintf-style agent` a dprintf becomes a
breakpoint *command* (`;cmds:<persist>,X<len>,<hex>`) that pushes its arguments and ends in `printf`;
`run_command` runs one, its output formatted by `agentprintf`.

Invariants:
- Pure: no I/O, no ptrace. Registers and memory of the stopped thread come through the two callbacks
  `evaluate` is given, so the module is tested without a process.
- `parse_agent_expression` rejects what cannot be run (an unknown opcode, an operand cut short, a jump
  into the middle of an instruction) with `ProtocolError`, so a bad `Z0` is answered `E01` and nothing is
  inserted. Opcodes GDB defines but never emits for conditions (floating point, tracing, trace state
  variables) are accepted there and fail at evaluation, as in gdbserver's `gdb_eval_agent_expr`.
- Evaluation never raises anything but `AgentExpressionError` (the callbacks' own errors excepted):
  gdbserver counts a failed evaluation as a true condition, and so does the session. `printf` runs only
  in a command (a condition has nowhere to print); a command may end with an empty stack (GDB's dprintf
  bytecode does: `printf` pops everything).
- Values are 64-bit two's complement (GDB's `ULONGEST` stack); target memory is little-endian (x86-64).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from ptstub.rsp.errors import ProtocolError
from ptstub.values import frozen

MASK64 = (1 << 64) - 1
STACK_LIMIT = 100  # gdbserver's STACK_MAX: deeper stacks are an error, not a bigger allocation
STEP_LIMIT = 100_000  # a backward `goto` must not hang the stub; GDB's conditions never loop


class Op(IntEnum):
    """Opcodes of `gdbsupport/ax.def` (the values are fixed by the protocol)."""

    FLOAT = 0x01
    ADD = 0x02
    SUB = 0x03
    MUL = 0x04
    DIV_SIGNED = 0x05
    DIV_UNSIGNED = 0x06
    REM_SIGNED = 0x07
    REM_UNSIGNED = 0x08
    LSH = 0x09
    RSH_SIGNED = 0x0A
    RSH_UNSIGNED = 0x0B
    TRACE = 0x0C
    TRACE_QUICK = 0x0D
    LOG_NOT = 0x0E
    BIT_AND = 0x0F
    BIT_OR = 0x10
    BIT_XOR = 0x11
    BIT_NOT = 0x12
    EQUAL = 0x13
    LESS_SIGNED = 0x14
    LESS_UNSIGNED = 0x15
    EXT = 0x16
    REF8 = 0x17
    REF16 = 0x18
    REF32 = 0x19
    REF64 = 0x1A
    REF_FLOAT = 0x1B
    REF_DOUBLE = 0x1C
    REF_LONG_DOUBLE = 0x1D
    L_TO_D = 0x1E
    D_TO_L = 0x1F
    IF_GOTO = 0x20
    GOTO = 0x21
    CONST8 = 0x22
    CONST16 = 0x23
    CONST32 = 0x24
    CONST64 = 0x25
    REG = 0x26
    END = 0x27
    DUP = 0x28
    POP = 0x29
    ZERO_EXT = 0x2A
    SWAP = 0x2B
    GETV = 0x2C
    SETV = 0x2D
    TRACEV = 0x2E
    TRACENZ = 0x2F
    TRACE16 = 0x30
    PICK = 0x32
    ROT = 0x33
    PRINTF = 0x34


# Operand bytes after each opcode (ax.def's SIZE column); `printf` has its own variable layout.
_OPERAND_SIZE = {op: 0 for op in Op} | {
    Op.TRACE_QUICK: 1,
    Op.EXT: 1,
    Op.ZERO_EXT: 1,
    Op.PICK: 1,
    Op.CONST8: 1,
    Op.CONST16: 2,
    Op.CONST32: 4,
    Op.CONST64: 8,
    Op.IF_GOTO: 2,
    Op.GOTO: 2,
    Op.REG: 2,
    Op.GETV: 2,
    Op.SETV: 2,
    Op.TRACEV: 2,
    Op.TRACE16: 2,
}
_JUMPS = (Op.IF_GOTO, Op.GOTO)
_REFS: dict[int, int] = {Op.REF8: 1, Op.REF16: 2, Op.REF32: 4, Op.REF64: 8}
_CONSTS: dict[int, int] = {Op.CONST8: 1, Op.CONST16: 2, Op.CONST32: 4, Op.CONST64: 8}


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _div_signed(a: int, b: int) -> int:
    """C division: the quotient truncates toward zero (Python's `//` floors)."""
    a, b = _signed(a), _signed(b)
    quotient = abs(a) // abs(b)
    return -quotient if (a < 0) != (b < 0) else quotient


def _rem_signed(a: int, b: int) -> int:
    """C remainder: takes the sign of the dividend."""
    return _signed(a) - _div_signed(a, b) * _signed(b)


# Binary operators: `a` is the value below the top, `b` the top (`a - b`, `a < b`, `a << b`).
_BINARY: dict[int, Callable[[int, int], int]] = {
    Op.ADD: lambda a, b: a + b,
    Op.SUB: lambda a, b: a - b,
    Op.MUL: lambda a, b: a * b,
    Op.DIV_SIGNED: _div_signed,
    Op.DIV_UNSIGNED: lambda a, b: a // b,
    Op.REM_SIGNED: _rem_signed,
    Op.REM_UNSIGNED: lambda a, b: a % b,
    Op.LSH: lambda a, b: a << b if b < 64 else 0,
    Op.RSH_SIGNED: lambda a, b: _signed(a) >> min(b, 63),
    Op.RSH_UNSIGNED: lambda a, b: a >> b if b < 64 else 0,
    Op.BIT_AND: lambda a, b: a & b,
    Op.BIT_OR: lambda a, b: a | b,
    Op.BIT_XOR: lambda a, b: a ^ b,
    Op.EQUAL: lambda a, b: int(a == b),
    Op.LESS_SIGNED: lambda a, b: int(_signed(a) < _signed(b)),
    Op.LESS_UNSIGNED: lambda a, b: int(a < b),
}
_DIVISIONS = (Op.DIV_SIGNED, Op.DIV_UNSIGNED, Op.REM_SIGNED, Op.REM_UNSIGNED)


class AgentExpressionError(Exception):
    """Evaluation failed (division by zero, unreadable memory, stack under/overflow, unhandled op)."""


@frozen
class AgentExpression:
    """One checked bytecode string (`parse_agent_expression` made sure every instruction is whole)."""

    code: bytes


@frozen
class BreakpointCommands:
    """The target-side commands of one breakpoint (`;cmds:`), in the order GDB sent them, and GDB's
    `persist` flag (`set disconnected-dprintf`: keep running them while GDB is disconnected)."""

    expressions: tuple[AgentExpression, ...]
    persist: bool


def parse_agent_expression(code: bytes) -> AgentExpression:
    """Check `code` instruction by instruction; ProtocolError if it cannot be run as GDB defines it."""
    if not code:
        raise ProtocolError("agent expression: empty")
    starts: set[int] = set()
    targets: list[int] = []
    pc = 0
    while pc < len(code):
        starts.add(pc)
        pc, target = _next_instruction(code, pc)
        if target is not None:
            targets.append(target)
    for target in targets:
        if target not in starts:
            raise ProtocolError(f"agent expression: jump to {target}, not an instruction")
    return AgentExpression(code)


def _next_instruction(code: bytes, pc: int) -> tuple[int, int | None]:
    """The offset after the instruction at `pc`, and its jump target if it is a jump."""
    try:
        op = Op(code[pc])
    except ValueError:
        raise ProtocolError(f"agent expression: unknown opcode {code[pc]:#04x} at {pc}") from None
    if op is Op.PRINTF:  # printf NARGS LEN16 FORMAT[LEN] (the format ends in NUL: GDB's `ax_string`)
        if pc + 4 > len(code):
            raise ProtocolError("agent expression: printf cut short")
        end = pc + 4 + int.from_bytes(code[pc + 2 : pc + 4], "big")
        if end > len(code) or end == pc + 4 or code[end - 1] != 0:
            raise ProtocolError(f"agent expression: printf format at {pc} not NUL-terminated")
    else:
        end = pc + 1 + _OPERAND_SIZE[op]
    if end > len(code):
        raise ProtocolError(f"agent expression: operand of {op.name.lower()} cut short at {pc}")
    target = int.from_bytes(code[pc + 1 : pc + 3], "big") if op in _JUMPS else None
    return end, target


RegisterReader = Callable[[int], int]
"""GDB register number (target description order) → its value as an unsigned integer."""
MemoryReader = Callable[[int, int], bytes]
"""(address, length) → the bytes there; fewer bytes mean the memory is not readable."""


PrintfOutput = Callable[[bytes], None]
"""Where a command's `printf` writes its formatted bytes."""


def evaluate(expression: AgentExpression, read_register: RegisterReader, read_memory: MemoryReader) -> int:
    """Run the bytecode to its `end`; the value on top of the stack (a condition holds when non-zero)."""
    value = _run(expression, read_register, read_memory, None)
    if value is None:
        raise AgentExpressionError("nothing on the stack at end")
    return value


def run_command(
    expression: AgentExpression, read_register: RegisterReader, read_memory: MemoryReader, output: PrintfOutput
) -> None:
    """Run a breakpoint command to its `end`, each `printf` writing to `output` as it runs (as
    gdbserver's `ax_printf` prints, then flushes, at the op)."""
    _run(expression, read_register, read_memory, output)


def _run(
    expression: AgentExpression,
    read_register: RegisterReader,
    read_memory: MemoryReader,
    output: PrintfOutput | None,
) -> int | None:
    """Run the bytecode to its `end`: the value on top of the stack, None when it is empty."""
    code = expression.code
    stack: list[int] = []
    pc = 0
    for _ in range(STEP_LIMIT):
        if pc >= len(code):
            raise AgentExpressionError("ran past the end of the bytecode")
        op = code[pc]
        pc += 1
        binary = _BINARY.get(op)
        if binary is not None:
            b, a = _pop(stack), _pop(stack)
            if op in _DIVISIONS and b == 0:
                raise AgentExpressionError("division by zero")
            stack.append(binary(a, b) & MASK64)
        elif op in _CONSTS:
            size = _CONSTS[op]
            stack.append(int.from_bytes(code[pc : pc + size], "big"))
            pc += size
        elif op in _REFS:
            size = _REFS[op]
            address = _pop(stack)
            data = read_memory(address, size)
            if len(data) != size:
                raise AgentExpressionError(f"cannot read {size} bytes at {address:#x}")
            stack.append(int.from_bytes(data, "little"))
        elif op == Op.END:
            return stack[-1] if stack else None
        elif op == Op.PRINTF:
            pc = _printf(code, pc, stack, read_memory, output)
        else:
            pc = _other(op, code, pc, stack, read_register)
        if len(stack) >= STACK_LIMIT:
            raise AgentExpressionError("stack overflow")
    raise AgentExpressionError(f"no end after {STEP_LIMIT} instructions")


def _printf(code: bytes, pc: int, stack: list[int], read_memory: MemoryReader, output: PrintfOutput | None) -> int:
    """`printf NARGS LEN FORMAT`: pop the function and channel GDB pushed last (0 for dprintf; unused,
    as in gdbserver), then the arguments, first one on top (GDB pushes them in reverse)."""
    from ptstub.rsp.agentprintf import AgentPrintfError, format_output

    if output is None:
        raise AgentExpressionError("printf outside a breakpoint command")
    nargs = code[pc]
    end = pc + 3 + int.from_bytes(code[pc + 1 : pc + 3], "big")
    _pop(stack)  # the function
    _pop(stack)  # the channel
    args = [_pop(stack) for _ in range(nargs)]
    try:
        output(format_output(code[pc + 3 : end], args, read_memory))
    except AgentPrintfError as err:
        raise AgentExpressionError(f"printf: {err}") from None
    return end


def _other(op: int, code: bytes, pc: int, stack: list[int], read_register: RegisterReader) -> int:
    """Every opcode but the binary operators, constants, refs and `end`; returns the next pc."""
    if op == Op.IF_GOTO:
        return int.from_bytes(code[pc : pc + 2], "big") if _pop(stack) else pc + 2
    if op == Op.GOTO:
        return int.from_bytes(code[pc : pc + 2], "big")
    if op == Op.REG:
        stack.append(read_register(int.from_bytes(code[pc : pc + 2], "big")) & MASK64)
        return pc + 2
    if op in (Op.EXT, Op.ZERO_EXT):
        bits = code[pc]
        value = _pop(stack)
        if 0 < bits < 64:
            value &= (1 << bits) - 1
            if op == Op.EXT and value >> (bits - 1):
                value = (value - (1 << bits)) & MASK64
        stack.append(value)
        return pc + 1
    if op == Op.LOG_NOT:
        stack.append(int(not _pop(stack)))
    elif op == Op.BIT_NOT:
        stack.append(~_pop(stack) & MASK64)
    elif op == Op.DUP:
        stack.append(_peek(stack, 0))
    elif op == Op.POP:
        _pop(stack)
    elif op == Op.SWAP:
        b, a = _pop(stack), _pop(stack)
        stack += [b, a]
    elif op == Op.PICK:  # pick N: copy the item N below the top (pick 0 is dup)
        stack.append(_peek(stack, code[pc]))
        return pc + 1
    elif op == Op.ROT:  # a b c => c a b
        c, b, a = _pop(stack), _pop(stack), _pop(stack)
        stack += [c, a, b]
    else:
        raise AgentExpressionError(f"opcode {Op(op).name.lower()} is not supported in a breakpoint condition")
    return pc


def _pop(stack: list[int]) -> int:
    if not stack:
        raise AgentExpressionError("stack underflow")
    return stack.pop()


def _peek(stack: list[int], depth: int) -> int:
    if depth >= len(stack):
        raise AgentExpressionError("stack underflow")
    return stack[-1 - depth]

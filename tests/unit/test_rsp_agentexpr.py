"""Agent-expression bytecode: checking at `Z0` time and evaluation at a hit, with no process.

Expected values follow gdbserver 13.1's `gdb_eval_agent_expr` (64-bit stack, C semantics for signed
division and shifts). The bytecode in `test_gdb_13_condition_*` is what GDB 13.1 sends for real
conditions (seen with `set debug remote 1`).
"""

from __future__ import annotations

import struct

import pytest

from ptstub.rsp.agentexpr import (
    AgentExpressionError,
    Op,
    evaluate,
    parse_agent_expression,
)
from ptstub.rsp.commands import InsertBreakpoint, parse_command
from ptstub.rsp.errors import ProtocolError

MASK = (1 << 64) - 1
MEMORY = {0x1000: struct.pack("<Q", 0x1122334455667788), 0x2000: struct.pack("<i", -5) + b"\0" * 4}
REGISTERS = {0: 7, 6: 0x1000, 16: 0x401000}


def read_memory(address: int, length: int) -> bytes:
    for base, data in MEMORY.items():
        if base <= address and address + length <= base + len(data):
            return data[address - base : address - base + length]
    return b""


def read_register(regnum: int) -> int:
    return REGISTERS[regnum]


def run(*parts: int | bytes) -> int:
    code = b"".join(bytes([p]) if isinstance(p, int) else p for p in parts)
    return evaluate(parse_agent_expression(code), read_register, read_memory)


def c8(value: int) -> bytes:
    return bytes([Op.CONST8, value])


def c16(value: int) -> bytes:
    return bytes([Op.CONST16]) + value.to_bytes(2, "big")


def c32(value: int) -> bytes:
    return bytes([Op.CONST32]) + value.to_bytes(4, "big")


def c64(value: int) -> bytes:
    return bytes([Op.CONST64]) + (value & MASK).to_bytes(8, "big")


def jump(op: Op, target: int) -> bytes:
    return bytes([op]) + target.to_bytes(2, "big")


# --- constants, registers, memory ----------------------------------------------------------------------


def test_constants_of_every_width() -> None:
    assert run(c8(0xFE), Op.END) == 0xFE
    assert run(c16(0xBEEF), Op.END) == 0xBEEF
    assert run(c32(0xDEADBEEF), Op.END) == 0xDEADBEEF
    assert run(c64(0x0123456789ABCDEF), Op.END) == 0x0123456789ABCDEF


def test_reg_reads_the_register_by_gdb_number() -> None:
    assert run(bytes([Op.REG, 0, 16]), Op.END) == 0x401000
    assert run(bytes([Op.REG, 0, 0]), Op.END) == 7


@pytest.mark.parametrize(
    ("op", "expected"),
    [(Op.REF8, 0x88), (Op.REF16, 0x7788), (Op.REF32, 0x55667788), (Op.REF64, 0x1122334455667788)],
)
def test_refs_read_little_endian_memory(op: Op, expected: int) -> None:
    assert run(c16(0x1000), op, Op.END) == expected


def test_ref_of_unreadable_memory_is_an_error() -> None:
    with pytest.raises(AgentExpressionError):
        run(c16(0x3000), Op.REF32, Op.END)
    with pytest.raises(AgentExpressionError):
        run(c16(0x1004), Op.REF64, Op.END)  # runs past the readable bytes


# --- arithmetic, comparisons, extension ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "a", "b", "expected"),
    [
        (Op.ADD, 5, 7, 12),
        (Op.ADD, MASK, 2, 1),  # wraps at 64 bits
        (Op.SUB, 5, 7, (-2) & MASK),
        (Op.MUL, 6, 7, 42),
        (Op.DIV_SIGNED, -7, 2, (-3) & MASK),  # C truncates toward zero
        (Op.DIV_UNSIGNED, 7, 2, 3),
        (Op.REM_SIGNED, -7, 2, (-1) & MASK),  # sign of the dividend
        (Op.REM_UNSIGNED, 7, 4, 3),
        (Op.LSH, 1, 4, 16),
        (Op.RSH_SIGNED, -16, 2, (-4) & MASK),
        (Op.RSH_UNSIGNED, 1 << 63, 63, 1),
        (Op.BIT_AND, 0b1100, 0b1010, 0b1000),
        (Op.BIT_OR, 0b1100, 0b1010, 0b1110),
        (Op.BIT_XOR, 0b1100, 0b1010, 0b0110),
        (Op.EQUAL, 7, 7, 1),
        (Op.EQUAL, 7, 8, 0),
        (Op.LESS_SIGNED, -1, 0, 1),
        (Op.LESS_SIGNED, 0, -1, 0),
        (Op.LESS_UNSIGNED, -1, 0, 0),  # 0xffff... is large unsigned
        (Op.LESS_UNSIGNED, 3, 4, 1),
    ],
)
def test_binary_operators(op: Op, a: int, b: int, expected: int) -> None:
    assert run(c64(a), c64(b), op, Op.END) == expected


@pytest.mark.parametrize("op", [Op.DIV_SIGNED, Op.DIV_UNSIGNED, Op.REM_SIGNED, Op.REM_UNSIGNED])
def test_division_by_zero_is_an_error(op: Op) -> None:
    with pytest.raises(AgentExpressionError, match="division by zero"):
        run(c8(1), c8(0), op, Op.END)


def test_unary_operators() -> None:
    assert run(c8(0), Op.LOG_NOT, Op.END) == 1
    assert run(c8(9), Op.LOG_NOT, Op.END) == 0
    assert run(c8(0), Op.BIT_NOT, Op.END) == MASK


def test_ext_sign_extends_and_zero_ext_truncates() -> None:
    assert run(c8(0xFF), bytes([Op.EXT, 8]), Op.END) == MASK  # (char) -1
    assert run(c8(0x7F), bytes([Op.EXT, 8]), Op.END) == 0x7F
    assert run(c32(0xFFFFFFFB), bytes([Op.EXT, 32]), Op.END) == (-5) & MASK
    assert run(c64(-1), bytes([Op.ZERO_EXT, 16]), Op.END) == 0xFFFF
    assert run(c64(-1), bytes([Op.EXT, 64]), Op.END) == MASK  # full width: unchanged


# --- stack operations and control flow ----------------------------------------------------------------


def test_stack_operations() -> None:
    assert run(c8(3), Op.DUP, Op.MUL, Op.END) == 9
    assert run(c8(3), c8(4), Op.POP, Op.END) == 3
    assert run(c8(10), c8(3), Op.SWAP, Op.SUB, Op.END) == (-7) & MASK  # 3 - 10
    assert run(c8(1), c8(2), c8(3), bytes([Op.PICK, 2]), Op.END) == 1
    # rot: a b c => c a b (b on top)
    assert run(c8(1), c8(2), c8(3), Op.ROT, Op.END) == 2
    assert run(c8(1), c8(2), c8(3), Op.ROT, Op.POP, Op.END) == 1
    assert run(c8(1), c8(2), c8(3), Op.ROT, Op.POP, Op.POP, Op.END) == 3


def test_if_goto_and_goto() -> None:
    # `a && b` as GDB compiles it: a; if_goto L1; 0; goto END; L1: b; log_not; log_not; END: end
    def logical_and(a: int, b: int) -> int:
        l1 = 2 + 3 + 2 + 3  # after const8, if_goto, const8, goto
        tail = c8(b) + bytes([Op.LOG_NOT, Op.LOG_NOT])
        code = c8(a) + jump(Op.IF_GOTO, l1) + c8(0) + jump(Op.GOTO, l1 + len(tail)) + tail + bytes([Op.END])
        return run(code)

    assert logical_and(1, 5) == 1
    assert logical_and(1, 0) == 0
    assert logical_and(0, 5) == 0


def test_if_goto_pops_its_operand() -> None:
    code = c8(42) + c8(1) + jump(Op.IF_GOTO, 9) + c8(9) + bytes([Op.END])
    assert run(code) == 42


def test_gdb_13_condition_global_int_equals_7() -> None:
    """`break f if counter == 7` with `int counter` at 0x2000 (GDB 13.1: const32 addr, ref32, ext 32,
    const8 7, equal, end)."""
    code = c32(0x2000) + bytes([Op.REF32, Op.EXT, 32]) + c8(7) + bytes([Op.EQUAL, Op.END])
    MEMORY[0x2000] = struct.pack("<i", 7) + b"\0" * 4
    try:
        assert run(code) == 1
        MEMORY[0x2000] = struct.pack("<i", 6) + b"\0" * 4
        assert run(code) == 0
    finally:
        MEMORY[0x2000] = struct.pack("<i", -5) + b"\0" * 4


def test_gdb_13_condition_local_below_zero() -> None:
    """`if local < 0` for an `int` at -0x... off the frame base (reg rbp, const, add, ref32, ext)."""
    MEMORY[0x0FF0] = struct.pack("<i", -3) + b"\0" * 12
    try:
        code = (
            bytes([Op.REG, 0, 6])
            + c64(-0x10)
            + bytes([Op.ADD, Op.REF32, Op.EXT, 32])
            + c8(0)
            + bytes([Op.LESS_SIGNED, Op.END])
        )
        assert run(code) == 1
    finally:
        del MEMORY[0x0FF0]


# --- errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        b"",  # empty
        b"\x99\x27",  # unknown opcode
        b"\x31\x27",  # invalid2: a hole in the table
        b"\x22",  # const8 without its byte
        b"\x25\x00\x00\x00",  # const64 cut short
        b"\x21\x00",  # goto cut short
        c8(1) + jump(Op.IF_GOTO, 1) + b"\x27",  # jump into the middle of const8
        c8(1) + jump(Op.GOTO, 99),  # jump past the end
        b"\x34\x00\x00\x05ab",  # printf whose format is cut short
    ],
)
def test_malformed_bytecode_is_a_protocol_error(code: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_agent_expression(code)


@pytest.mark.parametrize(
    "code",
    [
        bytes([Op.ADD, Op.END]),  # underflow
        bytes([Op.END]),  # nothing to return
        bytes([Op.POP, Op.END]),
        c8(1),  # runs off the end
        jump(Op.GOTO, 0),  # loops forever
        c8(1) * 101 + bytes([Op.END]),  # stack overflow
        bytes([Op.GETV, 0, 1, Op.END]),  # trace state variables: not in a condition
        bytes([Op.FLOAT, Op.END]),
        c8(1) + bytes([Op.PICK, 3, Op.END]),
    ],
)
def test_evaluation_errors(code: bytes) -> None:
    with pytest.raises(AgentExpressionError):
        evaluate(parse_agent_expression(code), read_register, read_memory)


def test_register_reader_errors_propagate_to_the_caller() -> None:
    with pytest.raises(KeyError):
        run(bytes([Op.REG, 0, 99]), Op.END)


# --- the Z0 packet ----------------------------------------------------------------------------------------


def test_z0_with_two_conditions_parses_to_bytecodes() -> None:
    command = parse_command(b"Z0,401136,1;X9,240000200019162027;X3,220727")
    assert isinstance(command, InsertBreakpoint)
    assert command.conditions == (bytes.fromhex("240000200019162027"), bytes.fromhex("220727"))
    for code in command.conditions:
        parse_agent_expression(code)

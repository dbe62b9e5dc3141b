"""The engine's C agent-expression evaluator and printf against the Python reference, on one corpus.

The engine judges breakpoint conditions and runs agent dprintfs in C (csrc/agentexpr.c,
csrc/agentprintf.c); `ptstub.rsp.agentexpr` and `ptstub.rsp.agentprintf` are the reference (their own
tests hold them to gdbserver 13.1 and the C library's printf). Every bytecode here runs in both, with
the same registers and memory, and must give the same value, the same output, or an error in both (an
error counts as a true condition either way). The corpus: each opcode GDB emits for conditions, the
bytecode GDB 13.1 sent for real conditions and dprintfs, every printf directive of the Python tests, and
seeded random programs.
"""

from __future__ import annotations

import random

import pytest
from ptstub._ptcore import ffi, lib

from ptstub.rsp.agentexpr import AgentExpressionError, Op, evaluate, parse_agent_expression, run_command

MASK = (1 << 64) - 1
MEM_BASE = 0x10000
MEMORY = bytearray(range(256)) * 16 + b"origin\0" + b"x" * 9  # 4 KiB of pattern, a string, one without NUL
STRING_AT, UNTERMINATED_AT = MEM_BASE + 4096, MEM_BASE + 4096 + 7
REGISTERS = [7, 0x10010, (1 << 64) - 3, 0x8000000000000000, 0, 1, MEM_BASE + 0x20, 42] + [i * 3 for i in range(8)]
READABLE = 0xFFFF  # registers 0-15 readable; 16 and up are not (the C side's "not in the user_regs_struct")


def read_memory(address: int, length: int) -> bytes:
    """Target memory as the session's reader gives it: fewer bytes where it ends."""
    if not MEM_BASE <= address < MEM_BASE + len(MEMORY):
        return b""
    return bytes(MEMORY[address - MEM_BASE : address - MEM_BASE + length])


def read_register(regnum: int) -> int:
    if regnum >= 16:
        raise AgentExpressionError(f"register {regnum} is not readable here")
    return REGISTERS[regnum]


def python_result(code: bytes, command: bool) -> tuple[str, int | bytes]:
    """("value", top) / ("empty", output) / ("error", output printed before the error)."""
    printed: list[bytes] = []
    expression = parse_agent_expression(code)
    try:
        if command:
            run_command(expression, read_register, read_memory, printed.append)
            return "done", b"".join(printed)
        return "value", evaluate(expression, read_register, read_memory)
    except AgentExpressionError:
        return "error", b"".join(printed)


def c_result(code: bytes, command: bool) -> tuple[str, int | bytes]:
    regs = ffi.new("uint64_t[]", REGISTERS)
    out = ffi.new("uint8_t[]", 1 << 18)
    out_len, top = ffi.new("uint64_t *"), ffi.new("uint64_t *")
    rc = lib.pt_ax_run_buffers(
        code, len(code), command, regs, len(REGISTERS), READABLE, MEM_BASE, bytes(MEMORY), len(MEMORY),
        out, 1 << 18, out_len, top,
    )  # fmt: skip
    printed = ffi.buffer(out, out_len[0])[:]
    if rc < 0:
        return "error", printed
    if command:
        return "done", printed
    return ("value", int(top[0])) if rc == lib.PT_AX_VALUE else ("error", b"")


def same(code: bytes, command: bool = False) -> tuple[str, int | bytes]:
    expected = python_result(code, command)
    assert c_result(code, command) == expected, code.hex()
    return expected


def c8(v: int) -> bytes:
    return bytes([Op.CONST8, v & 0xFF])


def c64(v: int) -> bytes:
    return bytes([Op.CONST64]) + (v & MASK).to_bytes(8, "big")


EDGE = [0, 1, 2, 7, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 63, MASK, MASK - 1]
BINARY = [
    Op.ADD, Op.SUB, Op.MUL, Op.DIV_SIGNED, Op.DIV_UNSIGNED, Op.REM_SIGNED, Op.REM_UNSIGNED, Op.LSH,
    Op.RSH_SIGNED, Op.RSH_UNSIGNED, Op.BIT_AND, Op.BIT_OR, Op.BIT_XOR, Op.EQUAL, Op.LESS_SIGNED, Op.LESS_UNSIGNED,
]  # fmt: skip


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.name.lower())
def test_binary_operators_on_edge_values_division_by_zero_included(op: Op) -> None:
    for a in EDGE:
        for b in EDGE:
            same(c64(a) + c64(b) + bytes([op, Op.END]))


@pytest.mark.parametrize("op", [Op.EXT, Op.ZERO_EXT])
def test_sign_and_zero_extension_of_every_width(op: Op) -> None:
    for bits in (0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 65, 255):
        for value in EDGE:
            same(c64(value) + bytes([op, bits, Op.END]))


@pytest.mark.parametrize("op", [Op.REF8, Op.REF16, Op.REF32, Op.REF64])
def test_memory_reads_of_every_size_and_bad_addresses(op: Op) -> None:
    size = {Op.REF8: 1, Op.REF16: 2, Op.REF32: 4, Op.REF64: 8}[op]
    end = MEM_BASE + len(MEMORY)
    for address in (MEM_BASE, MEM_BASE + 3, end - size, end - size + 1, end, 0, MEM_BASE - 1, MASK):
        same(c64(address) + bytes([op, Op.END]))


def test_registers_readable_and_not() -> None:
    for regnum in (0, 1, 6, 7, 15, 16, 57, 0xFFFF):
        same(bytes([Op.REG]) + regnum.to_bytes(2, "big") + bytes([Op.END]))


def test_constants_are_zero_extended_from_big_endian() -> None:
    for op, size in ((Op.CONST8, 1), (Op.CONST16, 2), (Op.CONST32, 4), (Op.CONST64, 8)):
        for fill in (0x00, 0x7F, 0x80, 0xFF, 0x12):
            same(bytes([op]) + bytes([fill]) * size + bytes([Op.END]))


@pytest.mark.parametrize(
    "code",
    [
        bytes([Op.END]),  # nothing on the stack at the end: an error for a condition
        bytes([Op.ADD, Op.END]),  # underflow
        c8(1) + bytes([Op.ADD, Op.END]),
        c8(1) + bytes([Op.DUP, Op.SWAP, Op.ROT, Op.END]),
        c8(1) + c8(2) + c8(3) + bytes([Op.ROT, Op.POP, Op.END]),
        c8(1) + c8(2) + c8(3) + bytes([Op.ROT, Op.END]),
        c8(1) + c8(2) + bytes([Op.SWAP, Op.SUB, Op.END]),
        c8(5) + c8(6) + bytes([Op.PICK, 1, Op.END]),
        c8(5) + bytes([Op.PICK, 1, Op.END]),
        c8(0) + bytes([Op.LOG_NOT, Op.END]),
        c8(9) + bytes([Op.LOG_NOT, Op.END]),
        c8(9) + bytes([Op.BIT_NOT, Op.END]),
        c8(1) + bytes([Op.POP, Op.POP, Op.END]),
        c8(5) + c8(1) + bytes([Op.IF_GOTO, 0, 9]) + c8(2) + bytes([Op.END]),  # taken: 5
        c8(5) + c8(0) + bytes([Op.IF_GOTO, 0, 9]) + c8(2) + bytes([Op.END]),  # not taken: 2
        bytes([Op.GOTO, 0, 0]),  # a loop with no end: the step limit
        c8(1) + bytes([Op.DUP, Op.GOTO, 0, 2]),  # a growing stack: overflow at 100 entries
        c8(1) * 99 + bytes([Op.END]),
        c8(1) * 100 + bytes([Op.END]),
        c8(1) + bytes([Op.FLOAT, Op.END]),
        c8(1) + bytes([Op.GETV, 0, 1, Op.END]),
        c8(1) + bytes([Op.TRACEV, 0, 1, Op.END]),
        c8(1) + bytes([Op.TRACE_QUICK, 4, Op.END]),
        c8(1) + bytes([Op.L_TO_D, Op.END]),
        c8(1),  # runs past the end
        c8(0) + c8(0) + bytes([Op.PRINTF, 0, 0, 2]) + b"x\0" + c8(1) + bytes([Op.END]),  # printf in a condition
    ],
)
def test_stack_flow_and_failures(code: bytes) -> None:
    same(code)


GDB_13_CONDITIONS = [
    "26000622100222dc1608021916202203130e27",  # dprintf's `i % 2 == 0` off rbp
    "240000200019162022071327",  # `counter == 7`, a global int
]


def test_bytecode_gdb_13_sent() -> None:
    for text in GDB_13_CONDITIONS:
        same(bytes.fromhex(text))


def _random_program(rng: random.Random) -> bytes:
    """Straight-line code with forward jumps to instruction starts, ending in `end`."""
    pieces: list[bytes] = []
    for _ in range(rng.randrange(1, 14)):
        kind = rng.random()
        if kind < 0.3:
            pieces.append(c64(rng.choice(EDGE + [MEM_BASE + rng.randrange(0, 4200), rng.getrandbits(64)])))
        elif kind < 0.55:
            pieces.append(bytes([rng.choice(BINARY)]))
        elif kind < 0.65:
            pieces.append(bytes([rng.choice([Op.REF8, Op.REF16, Op.REF32, Op.REF64])]))
        elif kind < 0.72:
            pieces.append(bytes([Op.REG, 0, rng.randrange(0, 18)]))
        elif kind < 0.8:
            pieces.append(bytes([rng.choice([Op.EXT, Op.ZERO_EXT]), rng.choice([8, 16, 32, 64, 3])]))
        else:
            op = rng.choice([Op.DUP, Op.POP, Op.SWAP, Op.ROT, Op.LOG_NOT, Op.BIT_NOT, Op.PICK])
            pieces.append(bytes([op, rng.randrange(0, 4)]) if op is Op.PICK else bytes([op]))
    if rng.random() < 0.3 and len(pieces) > 2:  # a forward if_goto over some pieces
        at = rng.randrange(0, len(pieces) - 1)
        target = sum(len(p) for p in pieces[: at + 1]) + 3 + sum(len(p) for p in pieces[at + 1 : at + 2])
        pieces.insert(at + 1, bytes([Op.IF_GOTO]) + target.to_bytes(2, "big"))
    return b"".join(pieces) + bytes([Op.END])


def test_seeded_random_programs() -> None:
    rng = random.Random(14)
    outcomes = set()
    for _ in range(4000):
        code = _random_program(rng)
        try:
            parse_agent_expression(code)
        except Exception:  # noqa: BLE001 - a jump that landed inside an instruction: not a valid program
            continue
        outcomes.add(same(code)[0])
    assert outcomes == {"value", "error"}


# --- printf ---------------------------------------------------------------------------------------------

INT_SPECS = ["%d", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d", "%-8.3d|", "%i", "%u", "%x", "%X", "%o"]
INT_SPECS += ["%#x", "%#o", "%#X", "%.0d", "%hd", "%hu", "%hx", "%Hd", "%Dd", "%DDu", "%#d", "%-+08d|", "% 07i"]
LONG_SPECS = ["%ld", "%lu", "%lx", "%#lo", "%lld", "%llu", "%zd", "%zu", "%+20ld", "%-22lld|", "%020lx", "%I64d"]
VALUES = [0, 1, 42, 255, 65537, 2147483647, 2147483648, MASK, MASK - 41, 1 << 63, 0xFFFF8000]
TEXT_SPECS = ["%s", "%8s", "%-8s|", "%.2s", "%#s", "%10.3s|", "%.0s", "%zs", "%p", "%18p|", "%-8p|", "%zp"]
TEXT_SPECS += ["%c", "%5c", "%-3c|", "%#c", "%zc", "%Hc"]
BAD_SPECS = ["%", "%5", "%q", "%hhd", "%n", "%*d", "%Ld", "%#u", "%+x", "%05s", "%.3c", "%lp", "%lf", "%f", "%Lg"]
BAD_SPECS += ["%lc", "%ls", "%Hf", "%e", "%G", "\\q", "ends in \\"]


def printf_code(text: str, args: list[int]) -> bytes:
    """What GDB sends for `dprintf LOC,"TEXT",ARGS...`: the arguments pushed last first, the channel
    and function (0), then printf NARGS LEN FORMAT."""
    fmt = text.encode("latin-1") + b"\0"
    pushes = b"".join(c64(a) for a in reversed(args))
    return pushes + c8(0) + c8(0) + bytes([Op.PRINTF, len(args)]) + len(fmt).to_bytes(2, "big") + fmt + bytes([Op.END])


@pytest.mark.parametrize("spec", INT_SPECS + LONG_SPECS)
def test_integer_directives(spec: str) -> None:
    for value in VALUES:
        assert same(printf_code(f"<{spec}>\\n", [value]), command=True)[0] == "done"


@pytest.mark.parametrize("spec", TEXT_SPECS)
def test_string_pointer_and_char_directives(spec: str) -> None:
    for value in (STRING_AT, UNTERMINATED_AT, 0, 0x41, MEM_BASE + 4095, 0xDEAD0000):
        same(printf_code(f"[{spec}]", [value]), command=True)


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_formats_both_reject(spec: str) -> None:
    assert same(printf_code(spec, [1]), command=True)[0] == "error"


def test_escapes_percent_and_argument_counts() -> None:
    same(printf_code('a\\nb\\t\\\\\\"\\a\\b\\e\\f\\r\\v 100%% "after the quote', []), command=True)
    same(printf_code("%d %d", [1]), command=True)
    same(printf_code("%d", [1, 2]), command=True)
    same(printf_code("%d %s %c %lx %p|%-6s|\\n", [-5 & MASK, STRING_AT, 0x7A, MASK, 0, STRING_AT]), command=True)


def test_two_printfs_print_in_order_and_a_failing_one_ends_the_command() -> None:
    first = printf_code("one %d\\n", [1])[:-1]
    assert same(first + printf_code("two\\n", [])[:], command=True) == ("done", b"one 1\ntwo\n")
    assert same(first + printf_code("%f\\n", [2]), command=True) == ("error", b"one 1\n")
    assert same(first + printf_code("%s\\n", [UNTERMINATED_AT]), command=True) == ("error", b"one 1\n")
    assert same(first + printf_code("%.4s\\n", [UNTERMINATED_AT]), command=True) == ("done", b"one 1\nxxxx\n")


def test_gdb_13_dprintf_bytecode_runs_the_same() -> None:
    """The format and argument kinds of `dprintf work,"work i=%d label=%s\\n",i,global_point.label`."""
    code = printf_code("work i=%d label=%s\\n", [5, STRING_AT])
    assert same(code, command=True) == ("done", b"work i=5 label=origin\n")


def test_check_leaves_wide_formats_and_other_registers_to_python() -> None:
    sizes = ffi.new("uint8_t[]", [8] * 24 + [0] * 8)
    assert lib.pt_ax_check(printf_code("%d", [1]), len(printf_code("%d", [1])), sizes, 32) == 0
    assert lib.pt_ax_check(printf_code("%f", [1]), len(printf_code("%f", [1])), sizes, 32) == 0  # fails in both
    wide = printf_code("%5000d", [1])
    assert lib.pt_ax_check(wide, len(wide), sizes, 32) == lib.PT_AX_E_UNSUPPORTED
    for regnum, supported in ((0, True), (23, True), (24, False), (40, False)):
        code = bytes([Op.REG, 0, regnum, Op.END])
        assert (lib.pt_ax_check(code, len(code), sizes, 32) == 0) is supported, regnum

"""The agent `printf` (dprintf-style agent): GDB's format string, C's conversions, and the printf op.

Expected output is what gdbserver 13.1 printed for the same directives and values (its agent printf
hands each directive to the C library's printf): `test_gdbserver_13_line` is one line it printed for a
real `dprintf`, and `test_gdb_13_dprintf_bytecode` runs the bytecode GDB 13.1 sent (`set debug remote 1`).
"""

from __future__ import annotations

import ctypes
import struct

import pytest

from ptstub.rsp.agentexpr import AgentExpressionError, Op, evaluate, parse_agent_expression, run_command
from ptstub.rsp.agentprintf import STRING_LIMIT, AgentPrintfError, format_output, parse_format, unescape
from ptstub.rsp.commands import InsertBreakpoint, parse_command
from ptstub.rsp.errors import ProtocolError

LIBC = ctypes.CDLL(None)
MEMORY = {0x5000: b"origin\0", 0x6000: b"x" * 10}  # 0x6000: no NUL before unreadable memory


def read_memory(address: int, length: int) -> bytes:
    for base, data in MEMORY.items():
        if base <= address < base + len(data):
            return data[address - base : address - base + length]
    return b""


def fmt(text: str, *args: int) -> str:
    return format_output(text.encode() + b"\0", list(args), read_memory).decode("latin-1")


def c_snprintf(spec: str, value: object) -> str:
    """What the C library's printf prints for one directive (the reference gdbserver's agent uses)."""
    buffer = ctypes.create_string_buffer(256)
    length = LIBC.snprintf(buffer, len(buffer), spec.encode(), value)
    return buffer.raw[:length].decode("latin-1")  # %c of 0 prints a NUL


# --- escapes and pieces ----------------------------------------------------------------------------------


def test_escapes_are_undone_as_gdb_format_pieces_does() -> None:
    assert unescape(b'a\\nb\\t\\\\\\"\\a\\b\\e\\f\\r\\v\0junk') == b'a\nb\t\\"\a\b\x1b\f\r\v'
    assert unescape(b'up to"the quote') == b"up to"
    with pytest.raises(AgentPrintfError, match="escape"):
        unescape(b"\\q")
    with pytest.raises(AgentPrintfError, match="escape"):
        unescape(b"ends in \\")


def test_percent_percent_is_a_literal_and_pieces_alternate() -> None:
    pieces = parse_format(b"100%% at %d, %s!\\n\0")
    assert [p if isinstance(p, bytes) else p.text for p in pieces] == [b"100% at ", "%d", b", ", "%s", b"!\n"]
    assert fmt("no directives, 50%%\\n") == "no directives, 50%\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%", "incomplete"),
        ("%5", "incomplete"),
        ("%q", "unrecognized format specifier 'q'"),
        ("%hhd", "unrecognized format specifier 'h'"),  # GDB's parser knows one `h` only
        ("%n", "`n' not supported"),
        ("%*d", "`*' not supported"),
        ("%Ld", "inappropriate"),
        ("%#u", "inappropriate"),
        ("%+x", "inappropriate"),
        ("%05s", "inappropriate"),
        ("%.3c", "inappropriate"),
        ("%lp", "inappropriate"),
        ("%lf", "inappropriate"),
    ],
)
def test_directives_gdb_rejects_are_errors(text: str, message: str) -> None:
    with pytest.raises(AgentPrintfError, match=message):
        fmt(text, 1)


@pytest.mark.parametrize("text", ["%f", "%Lg", "%lc", "%ls", "%Hf"])
def test_conversions_gdbserver_has_no_agent_printf_for_are_errors(text: str) -> None:
    """gdbserver 13 stops (and exits) on these; here the command fails and prints nothing."""
    with pytest.raises(AgentPrintfError, match="not supported in agent printf"):
        fmt(text, 1)


def test_argument_count_must_match_the_directives() -> None:
    with pytest.raises(AgentPrintfError, match="wrong number of arguments"):
        fmt("%d %d", 1)
    with pytest.raises(AgentPrintfError, match="wrong number of arguments"):
        fmt("%d", 1, 2)


# --- integer conversions ---------------------------------------------------------------------------------


INT_SPECS = ["%d", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d", "%-8.3d|", "%i", "%u", "%x", "%X"]
INT_SPECS += ["%#x", "%#X", "%o", "%#o", "%08x", "%#010x", "%+05d", "%.0d", "%#.0o", "%#.0x", "%-+6d|", "% 05d"]
INT_SPECS += ["%05.3d", "%-05d|", "%hd", "%hu", "%hx", "%c", "%-3c|"]
LONG_SPECS = ["%ld", "%lu", "%lx", "%#lo", "%lld", "%llu", "%zd", "%zu", "%+20ld", "%-22lld|", "%020lx"]
VALUES = [0, 1, 42, 255, 65537, 2147483647, 2147483648, (1 << 64) - 1, (1 << 64) - 42, 1 << 63]


@pytest.mark.parametrize("spec", INT_SPECS + LONG_SPECS)
@pytest.mark.parametrize("value", VALUES)
def test_integer_conversions_print_as_the_c_library_does(spec: str, value: int) -> None:
    """The reference is the C library's own snprintf, given the value as gdbserver's C code converts it
    (`int val = args[i]` for plain directives, 64 bits for l, ll and z)."""
    as_c = ctypes.c_long(value) if "l" in spec or "z" in spec else ctypes.c_int(value & 0xFFFFFFFF)
    assert fmt(spec, value) == c_snprintf(spec, as_c)


@pytest.mark.parametrize("spec", ["%s", "%8s", "%-8s|", "%.2s", "%#s", "%10.3s|", "%p", "%18p|", "%-8p|"])
def test_string_and_pointer_conversions_print_as_the_c_library_does(spec: str) -> None:
    if spec.endswith(("s", "s|")):
        assert fmt(spec, 0x5000) == c_snprintf(spec, ctypes.c_char_p(b"origin"))
    else:
        for value in (0, 0x5000, (1 << 64) - 1):
            assert fmt(spec, value) == c_snprintf(spec, ctypes.c_void_p(value))


def test_negative_values_and_the_width_of_the_c_type() -> None:
    minus_one = (1 << 64) - 1
    assert fmt("%d %i", minus_one, (1 << 64) - 5) == "-1 -5"
    assert fmt("%u %x %o", minus_one, minus_one, minus_one) == "4294967295 ffffffff 37777777777"
    assert fmt("%ld %lu %lx", minus_one, minus_one, minus_one) == "-1 18446744073709551615 ffffffffffffffff"
    assert fmt("%lld %llu %zd %zu", minus_one, minus_one, minus_one, minus_one) == (
        "-1 18446744073709551615 -1 18446744073709551615"
    )
    assert fmt("%I64d", minus_one) == "-1"  # the Windows spelling of %lld that GDB's parser accepts
    assert fmt("%d", 0x1_0000_0007) == "7"  # int: the low 32 bits, as gdbserver's `int val = args[i]`
    assert fmt("%hd %hu %hx", 65537, 0xFFFF, 0x12345) == "1 65535 2345"
    assert fmt("%05d|%-5d|%+d|% d", minus_one, minus_one, (1 << 64) - 3, (1 << 64) - 3) == "-0001|-1   |-3|-3"


def test_char_pointer_and_string() -> None:
    assert fmt("%c%c%3c|%-3c|", 65, 0x142, 66, 67) == "AB  B|C  |"  # %c: an unsigned char
    assert fmt("%p %p %18p|%-8p|", 0x5000, 0, 0xABC, 0) == "0x5000 (nil)              0xabc|(nil)   |"
    assert fmt("%s|%8s|%-8s|%.2s|%#s", 0x5000, 0x5000, 0x5000, 0x5000, 0x5000) == ("origin|  origin|origin  |or|origin")
    assert fmt("%s|%.3s|%8s", 0, 0, 0) == "(null)|(nu|  (null)"  # gdbserver prints the literal "(null)"
    assert fmt("%s", 0x5003) == "gin"


def test_string_reads_stop_at_unreadable_memory_or_at_the_precision() -> None:
    with pytest.raises(AgentPrintfError, match="cannot read the string at 0x6000"):
        fmt("%s", 0x6000)
    assert fmt("%.4s", 0x6000) == "xxxx"  # C reads no further than the precision
    with pytest.raises(AgentPrintfError, match="cannot read"):
        fmt("%s", 0xDEAD0000)


def test_string_without_a_nul_stops_at_the_limit() -> None:
    def endless(address: int, length: int) -> bytes:
        return b"y" * length

    assert format_output(b"%s\0", [0x7000], endless) == b"y" * STRING_LIMIT


def test_string_reads_never_cross_a_page_in_one_read() -> None:
    reads: list[tuple[int, int]] = []

    def logged(address: int, length: int) -> bytes:
        reads.append((address, length))
        return b"z" * length if address + length < 0x8005 else b"z" * (0x8004 - address) + b"\0"

    assert format_output(b"%s\0", [0x7FF0], logged) == b"z" * 20
    assert all((address // 4096) == ((address + length - 1) // 4096) for address, length in reads)


def test_gdbserver_13_line() -> None:
    """One line gdbserver 13.1 printed for `dprintf work,"i=%d %5s|%-7s|%.2s|%s %c%c %lld %hd %#o %#x %+d
    % d %05d %.3d %x %lu\\n",i,global_point.label,...` at i=1 (the values as GDB's bytecode pushes them)."""
    minus_one = (1 << 64) - 1
    label = 0x5000
    args = [1, label, label, label, 0, 66, 66, minus_one, 65537, 8, 0, 1, 1, minus_one, 1, minus_one, minus_one]
    text = "i=%d %5s|%-7s|%.2s|%s %c%c %lld %hd %#o %#x %+d % d %05d %.3d %x %lu\\n"
    assert fmt(text, *args) == (
        "i=1 origin|origin |or|(null) BB -1 1 010 0 +1  1 -0001 001 ffffffff 18446744073709551615\n"
    )


# --- the printf op in bytecode ---------------------------------------------------------------------------

# GDB 13.1 for `dprintf work,"work i=%d label=%s\n",i,global_point.label` (with `condition 1 i != 3`):
# Z0,555555555266,1;X13,<condition>;cmds:1,X39,<this>.
GDB_13_DPRINTF = bytes.fromhex(
    "2500005555555580a02208021a26000622100222dc1608021916202200220034020015776f726b20693d2564206c6162656c3d25735c6e0027"
)
GDB_13_CONDITION = bytes.fromhex("26000622100222dc1608021916202203130e27")
FRAME = 0x7FFF0000  # rbp; `i` is the int at rbp-0x14


def frame_memory(i: int) -> dict[int, bytes]:
    return {
        0x5555555580A8: struct.pack("<Q", 0x5000),  # global_point.label
        0x5000: b"origin\0",
        FRAME - 0x14: struct.pack("<i", i),
    }


def run_with(code: bytes, memory: dict[int, bytes]) -> bytes:
    printed: list[bytes] = []

    def read(address: int, length: int) -> bytes:
        for base, data in memory.items():
            if base <= address < base + len(data):
                return data[address - base : address - base + length]
        return b""

    run_command(parse_agent_expression(code), lambda regnum: {6: FRAME}[regnum], read, printed.append)
    return b"".join(printed)


def test_gdb_13_dprintf_bytecode() -> None:
    assert run_with(GDB_13_DPRINTF, frame_memory(5)) == b"work i=5 label=origin\n"
    assert run_with(GDB_13_DPRINTF, frame_memory(-2)) == b"work i=-2 label=origin\n"


def test_gdb_13_dprintf_condition_is_an_ordinary_condition() -> None:
    def value_at(i: int) -> int:
        local = frame_memory(i)[FRAME - 0x14]
        return evaluate(
            parse_agent_expression(GDB_13_CONDITION),
            lambda regnum: FRAME,
            lambda address, length: local[:length] if address == FRAME - 0x14 else b"",
        )

    assert (value_at(3), value_at(4)) == (0, 1)


def test_printf_pops_function_and_channel_then_arguments_first_on_top() -> None:
    code = bytes([Op.CONST8, 2, Op.CONST8, 1, Op.CONST8, 0, Op.CONST8, 0, Op.PRINTF, 2, 0, 6]) + b"%d %d\0"
    assert run_with(code + bytes([Op.END]), {}) == b"1 2"


def test_printf_in_a_condition_is_an_evaluation_error() -> None:
    code = bytes([Op.CONST8, 0, Op.CONST8, 0, Op.PRINTF, 0, 0, 2]) + b"x\0" + bytes([Op.CONST8, 1, Op.END])
    with pytest.raises(AgentExpressionError, match="outside a breakpoint command"):
        evaluate(parse_agent_expression(code), lambda regnum: 0, lambda address, length: b"")


def test_bad_format_fails_the_command_before_printing() -> None:
    code = bytes([Op.CONST8, 1, Op.CONST8, 0, Op.CONST8, 0, Op.PRINTF, 1, 0, 3]) + b"%f\0" + bytes([Op.END])
    with pytest.raises(AgentExpressionError, match="printf: format directive '%f' not supported"):
        run_with(code, {})


@pytest.mark.parametrize(
    "code",
    [
        bytes([Op.PRINTF, 0, 0, 2]) + b"ab" + bytes([Op.END]),  # the format is not NUL-terminated
        bytes([Op.PRINTF, 0, 0, 0, Op.END]),  # an empty format has no NUL either
        bytes([Op.PRINTF, 0, 0, 9]) + b"ab\0",  # longer than the bytecode
    ],
)
def test_malformed_printf_is_refused_at_z0_time(code: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_agent_expression(code)


def test_z0_with_condition_and_commands_as_gdb_13_sends_it() -> None:
    packet = (
        b"Z0,555555555266,1;X13," + GDB_13_CONDITION.hex().encode() + b";cmds:1,X39," + GDB_13_DPRINTF.hex().encode()
    )
    command = parse_command(packet)
    assert isinstance(command, InsertBreakpoint)
    assert command.conditions == (GDB_13_CONDITION,)
    assert command.commands == (GDB_13_DPRINTF,)
    assert command.persist_commands is True
    two = parse_command(b"Z0,401000,1;cmds:0,X1,27X1,27")
    assert isinstance(two, InsertBreakpoint)
    assert two.commands == (b"\x27", b"\x27") and two.persist_commands is False

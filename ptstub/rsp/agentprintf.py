"""The agent `printf` op: GDB's format string and C's conversions, done by the stub (dprintf-style agent).

With `set dprintf-style agent` GDB compiles `dprintf LOC,"FORMAT",ARGS...` to bytecode that pushes the
arguments and ends in `printf NARGS LEN FORMAT` (GDB manual, "Bytecode Descriptions"), sent as the
breakpoint's target-side command (`Z0,addr,1;cmds:<persist>,X<len>,<hex>`). The format travels as GDB's
user typed it between the quotes: escapes such as `\\n` are still two characters, and the stub undoes
them, as gdbserver's `ax_printf` does by parsing the format again with GDB's `format_pieces`.

This module turns (format, argument values) into the bytes to print:
- Escapes: `\\\\ \\a \\b \\e \\f \\n \\r \\t \\v \\"`; any other is an error (`format_pieces`). An
  unescaped `"` ends the format, as there.
- Directives follow `format_pieces`' grammar: flags `0-+ #`, width, `.precision`, length `h l ll L H D
  DD z I64`, conversion `d i u o x X c s p e f g E G`, with its checks of flags per conversion.
- Values are the 64-bit stack entries, converted as gdbserver's C code converts them before calling
  `printf`: `int` for plain directives (then `h` makes it a short, `%c` an unsigned char), 64 bits for
  `l`, `ll` and `z`. `%s` reads a NUL-terminated string from target memory; address 0 prints `(null)`
  through the directive, as gdbserver passes the literal "(null)".
- gdbserver 13 has no `%p`, wide or floating-point conversions in its agent printf: it stops on them with
  an error that ends gdbserver itself. Here `%p` prints as glibc prints a pointer (`0x...`, `(nil)`);
  the others raise `AgentPrintfError`, the command prints nothing and the stub goes on.

Pure: no I/O. Target memory comes through a callback, as in `agentexpr`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

from ptstub.values import frozen

MemoryReader = Callable[[int, int], bytes]
"""(address, length) → the bytes there; fewer bytes mean the memory is not readable."""

STRING_LIMIT = 1 << 16  # `%s` of memory with no NUL for this long prints this much (GDB has no limit)
_CHUNK = 256  # `%s` reads this much at a time, never across a page (a short read means unreadable)
_PAGE = 4096

_ESCAPES = {
    ord("\\"): b"\\",
    ord("a"): b"\a",
    ord("b"): b"\b",
    ord("e"): b"\x1b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("v"): b"\v",
    ord('"'): b'"',
}
_FLAGS = b"0-+ #"
_DIGITS = b"0123456789"


class AgentPrintfError(Exception):
    """The format cannot be printed (bad escape or directive, wrong argument count, unreadable %s)."""


class ArgClass(Enum):
    """What a directive takes, as `format_pieces`' `argclass` names it."""

    INT = "int"
    LONG = "long"
    LONG_LONG = "long long"
    SIZE_T = "size_t"
    POINTER = "pointer"
    STRING = "string"
    WIDE_CHAR = "wide char"
    WIDE_STRING = "wide string"
    DOUBLE = "double"
    LONG_DOUBLE = "long double"
    DECIMAL_FLOAT = "decimal float"


_SUPPORTED = (ArgClass.INT, ArgClass.LONG, ArgClass.LONG_LONG, ArgClass.SIZE_T, ArgClass.POINTER, ArgClass.STRING)


@frozen
class Directive:
    """One `%...` conversion: its text (for messages), flags, width, precision, length and conversion."""

    text: str
    flags: str
    width: int
    precision: int | None
    length: str
    conversion: str
    arg_class: ArgClass


Piece = bytes | Directive
"""A literal run of output (`%%` already made `%`) or a directive that consumes one argument."""


@functools.lru_cache(maxsize=256)  # a dprintf prints the same format at every hit: parse it once
def parse_format(raw: bytes) -> tuple[Piece, ...]:
    """The pieces of a format as GDB sends it (escapes not yet undone, NUL-terminated or not)."""
    text = unescape(raw)
    pieces: list[Piece] = []
    literal = bytearray()
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char != ord("%"):
            literal.append(char)
            pos += 1
        elif text[pos + 1 : pos + 2] == b"%":
            literal.append(char)
            pos += 2
        else:
            if literal:
                pieces.append(bytes(literal))
                literal.clear()
            directive, pos = _parse_directive(text, pos)
            pieces.append(directive)
    if literal:
        pieces.append(bytes(literal))
    return tuple(pieces)


def unescape(raw: bytes) -> bytes:
    """Undo the backslash escapes `format_pieces` knows; the format ends at a NUL or a bare `"`."""
    out = bytearray()
    pos = 0
    while pos < len(raw) and raw[pos] not in (0, ord('"')):
        char = raw[pos]
        pos += 1
        if char != ord("\\"):
            out.append(char)
            continue
        escape = raw[pos] if pos < len(raw) else 0
        pos += 1
        if escape not in _ESCAPES:
            raise AgentPrintfError(f"unrecognized escape character \\{chr(escape)} in format string")
        out += _ESCAPES[escape]
    return bytes(out)


def _parse_directive(text: bytes, start: int) -> tuple[Directive, int]:
    pos = start + 1
    flags = ""
    while pos < len(text) and text[pos] in _FLAGS:
        flags += chr(text[pos])
        pos += 1
    width, pos = _number(text, pos)
    precision = None
    if text[pos : pos + 1] == b".":
        precision, pos = _number(text, pos + 1)
    length, pos = _length(text, pos)
    if pos >= len(text):
        raise AgentPrintfError("incomplete format specifier at end of format string")
    conversion = chr(text[pos])
    spec = text[start : pos + 1].decode("latin-1")
    arg_class = _classify(spec, flags, precision is not None, length, conversion)
    return Directive(spec, flags, width, precision, length, conversion, arg_class), pos + 1


def _number(text: bytes, pos: int) -> tuple[int, int]:
    end = pos
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return (int(text[pos:end]) if end > pos else 0), end


def _length(text: bytes, pos: int) -> tuple[str, int]:
    for modifier in ("ll", "DD", "I64", "h", "l", "L", "H", "D", "z"):
        if text.startswith(modifier.encode(), pos):
            return ("ll" if modifier == "I64" else modifier), pos + len(modifier)
    return "", pos


def _classify(spec: str, flags: str, has_precision: bool, length: str, conversion: str) -> ArgClass:
    """The argument class of a directive, with `format_pieces`' checks of what may go with what."""
    if conversion in "diuoxX":
        bad = (conversion == "u" and "#" in flags) or (conversion in "uoxX" and ("+" in flags or " " in flags))
        integer = {"z": ArgClass.SIZE_T, "l": ArgClass.LONG, "ll": ArgClass.LONG_LONG}.get(length, ArgClass.INT)
        return _checked(spec, bad or length == "L", integer)
    if conversion == "c":
        bad = length in ("ll", "h", "L") or has_precision or any(f in flags for f in "0 +")
        return _checked(spec, bad, ArgClass.WIDE_CHAR if length == "l" else ArgClass.INT)
    if conversion == "p":
        bad = length in ("l", "ll", "h", "L") or has_precision or any(f in flags for f in "#0 +")
        return _checked(spec, bad, ArgClass.POINTER)
    if conversion == "s":
        bad = length in ("ll", "h", "L") or any(f in flags for f in "0 +")
        return _checked(spec, bad, ArgClass.WIDE_STRING if length == "l" else ArgClass.STRING)
    if conversion in "efgEG":
        kind = ArgClass.DECIMAL_FLOAT if length in ("H", "D", "DD") else ArgClass.DOUBLE
        return _checked(spec, length in ("l", "ll", "h"), ArgClass.LONG_DOUBLE if length == "L" else kind)
    if conversion == "*":
        raise AgentPrintfError("`*' not supported for precision or width in printf")
    if conversion == "n":
        raise AgentPrintfError("format specifier `n' not supported in printf")
    raise AgentPrintfError(f"unrecognized format specifier '{conversion}' in printf")


def _checked(spec: str, bad: bool, arg_class: ArgClass) -> ArgClass:
    if bad:
        raise AgentPrintfError(f"inappropriate modifiers to format specifier '{spec[-1]}' in printf")
    return arg_class


def format_output(raw_format: bytes, args: list[int], read_memory: MemoryReader) -> bytes:
    """What `printf(FORMAT, ARGS...)` prints; `args` in format order, each a 64-bit stack value."""
    pieces = parse_format(raw_format)
    directives = [piece for piece in pieces if isinstance(piece, Directive)]
    if len(directives) != len(args):
        raise AgentPrintfError("wrong number of arguments for specified format-string")
    for directive in directives:
        if directive.arg_class not in _SUPPORTED:
            raise AgentPrintfError(f"format directive '{directive.text}' not supported in agent printf")
    out = bytearray()
    values = iter(args)
    for piece in pieces:
        out += piece if isinstance(piece, bytes) else _convert(piece, next(values), read_memory)
    return bytes(out)


def _convert(directive: Directive, value: int, read_memory: MemoryReader) -> bytes:
    if directive.arg_class is ArgClass.STRING:
        text = b"(null)" if value == 0 else read_string(value, read_memory, directive.precision)
        if directive.precision is not None:
            text = text[: directive.precision]
        return _pad(b"", text, directive, zeros=False)
    if directive.arg_class is ArgClass.POINTER:
        return _pad(b"", b"0x%x" % value if value else b"(nil)", directive, zeros=False)
    if directive.conversion == "c":
        return _pad(b"", bytes([value & 0xFF]), directive, zeros=False)
    return _integer(directive, _c_integer(directive, value))


def _c_integer(directive: Directive, value: int) -> int:
    """The value as C sees it: cut to the argument's width, then to `h`'s short; signed for d and i."""
    bits = 32 if directive.arg_class is ArgClass.INT else 64
    if directive.length == "h":
        bits = 16
    value &= (1 << bits) - 1
    if directive.conversion in "di" and value >> (bits - 1):
        value -= 1 << bits
    return value


def _integer(directive: Directive, value: int) -> bytes:
    conversion, flags, precision = directive.conversion, directive.flags, directive.precision
    base = {"o": "o", "x": "x", "X": "X"}.get(conversion, "d")
    digits = format(abs(value), base).encode()
    if precision is not None:
        digits = b"" if precision == 0 and value == 0 else digits.rjust(precision, b"0")
    prefix = b""
    if "#" in flags and conversion == "o" and not digits.startswith(b"0"):
        digits = b"0" + digits
    if "#" in flags and conversion in "xX" and value != 0:
        prefix = b"0" + conversion.encode()
    if value < 0:
        prefix = b"-" + prefix
    elif conversion in "di" and "+" in flags:
        prefix = b"+" + prefix
    elif conversion in "di" and " " in flags:
        prefix = b" " + prefix
    return _pad(prefix, digits, directive, zeros=precision is None)


def _pad(prefix: bytes, body: bytes, directive: Directive, zeros: bool) -> bytes:
    """Pad to the width: on the right with `-`, with zeros after the sign with `0` (when allowed),
    otherwise on the left with spaces (C's rules; `-` wins over `0`)."""
    fill = directive.width - len(prefix) - len(body)
    if fill <= 0:
        return prefix + body
    if "-" in directive.flags:
        return prefix + body + b" " * fill
    if zeros and "0" in directive.flags:
        return prefix + b"0" * fill + body
    return b" " * fill + prefix + body


def read_string(address: int, read_memory: MemoryReader, limit: int | None = None) -> bytes:
    """The NUL-terminated string at `address` (at most `limit` bytes, and `STRING_LIMIT`), read a page
    piece at a time; AgentPrintfError if memory ends before its NUL."""
    wanted = STRING_LIMIT if limit is None else min(limit, STRING_LIMIT)
    out = bytearray()
    while len(out) < wanted:
        here = address + len(out)
        size = min(_CHUNK, _PAGE - here % _PAGE, wanted - len(out))
        data = read_memory(here, size)
        nul = data.find(b"\0")
        if nul >= 0:
            return bytes(out + data[:nul])
        out += data
        if len(data) < size:
            raise AgentPrintfError(f"cannot read the string at {address:#x} (stops at {here + len(data):#x})")
    return bytes(out)

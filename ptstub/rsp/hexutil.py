"""Strict, fast hex helpers for RSP fields (GDB manual, "Packets": "numbers are in hex").

Invariants: every parser here accepts exactly what GDB sends and raises `ProtocolError` for anything
else. Python's own `int(x, 16)` is too lenient for a wire format (it takes `0x`, `_`, signs and
whitespace), so numbers are checked against the hex alphabet first with one `bytes.translate` call,
which runs in C. Byte strings go through `binascii`, which rejects odd lengths and non-hex digits and,
unlike `bytes.fromhex`, accepts `bytes` and never skips whitespace.
"""

from __future__ import annotations

import binascii

from ptstub.rsp.errors import ProtocolError

HEX_DIGITS = b"0123456789abcdefABCDEF"
MAX_HEX_DIGITS = 16
"""Every number in RSP fits in 64 bits on x86-64; a longer field is a malformed packet."""


def parse_hex(field: bytes, what: str = "number") -> int:
    """Parse a non-empty unsigned hex number of at most 64 bits, e.g. `b"7ffff7fcc060"`."""
    if not field or len(field) > MAX_HEX_DIGITS or field.translate(None, HEX_DIGITS):
        raise ProtocolError(f"bad hex {what}: {field[:40]!r}")
    return int(field, 16)


def parse_address(field: bytes, what: str = "address") -> int:
    """Parse an address or file offset (the same rules as `parse_hex`; the name says what it is)."""
    return parse_hex(field, what)


def parse_length(field: bytes, limit: int, what: str = "length") -> int:
    """Parse a hex byte count and reject one larger than `limit` (keeps allocations bounded)."""
    value = parse_hex(field, what)
    if value > limit:
        raise ProtocolError(f"{what} 0x{value:x} exceeds the limit 0x{limit:x}")
    return value


def parse_hex_bytes(field: bytes, what: str = "hex data") -> bytes:
    """Decode hex-encoded bytes (`G`, `M`, `P`, hex-encoded paths and names); empty is allowed."""
    try:
        return binascii.a2b_hex(field)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"bad {what}: {field[:40]!r}") from None


def hex_encode(data: bytes) -> bytes:
    """Encode bytes as lower-case hex, two digits per byte, as gdbserver does."""
    return binascii.b2a_hex(data)

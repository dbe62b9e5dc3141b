"""Strict, fast hex helpers for RSP fields (GDB manual, "Packets": "numbers are in hex").

Invariants: every parser here accepts exactly what GDB sends and raises `ProtocolError` for anything
else. Python's own `int(x, 16)` is too lenient for a wire format (it takes `0x`, `_`, signs and
whitespace), so numbers are checked against the hex alphabet first with one `bytes.translate` call,
which runs in C. Byte strings are checked the same way (and for an even length) before `bytes.fromhex`,
which would otherwise skip whitespace; `binascii`, which is strict itself, cost ~0.5 ms to load at start-up.
"""

from __future__ import annotations

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
    if len(field) % 2 or field.translate(None, HEX_DIGITS):
        raise ProtocolError(f"bad {what}: {field[:40]!r}")
    return bytes.fromhex(field.decode("ascii"))


def hex_encode(data: bytes) -> bytes:
    """Encode bytes as lower-case hex, two digits per byte, as gdbserver does."""
    return data.hex().encode("ascii")

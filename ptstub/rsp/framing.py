"""RSP framing: bytes from GDB become frames, reply bodies become `$body#cs` on the wire.

Follows the GDB manual, Remote Protocol appendix, "Overview" (packets, checksums, acknowledgments,
`}` escapes, run-length encoding), "Interrupts" (`\\x03`) and "Binary Data".

Invariants:
- `PacketReader.feed` never raises on any input and never holds more than `max_packet` bytes of a
  packet: random bytes between packets are skipped, a packet with a wrong (or non-hex) checksum
  becomes a `BadPacket` (answered `-`), and an oversized one becomes a `BadPacket` whose remainder
  is skipped up to its `#xx`, so binary bytes inside it are never mistaken for `+`, `-` or `\\x03`.
- `Packet.body` is the raw body between `$` and `#`. GDB never run-length encodes what it sends,
  and `}` escapes only mean something in binary payloads (`X`, `vFile:pwrite`, `qXfer:...:write`,
  `qSearch:memory`), whose parsers call `unescape_binary` themselves.
- `encode_packet` takes a reply body that is already escaped where the reply is binary (see
  `escape_binary`; `replies.qxfer_chunk` and the vFile replies do it), adds run-length encoding and
  the checksum. It never re-escapes `}`, so escaped binary is not escaped twice, and it escapes any
  stray `$`, `#` or `*` so that no body can break the framing.
- Run-length encoding never emits a count character of `#` or `$` (they delimit packets) nor `+` or
  `-` (acknowledgments; gdbserver does use those two), never a count above `}` (gdbserver's limit,
  one below the manual's `~`), and only for runs of 4 or more, where it saves bytes.
"""

from __future__ import annotations

from enum import Enum
from zlib import adler32

from ptstub.rsp.errors import ProtocolError
from ptstub.values import frozen

MAX_PACKET = 1 << 20
"""Largest packet body kept in memory; GDB sizes its packets from our PacketSize (a few KiB)."""

_DOLLAR, _HASH, _ESCAPE, _STAR = 0x24, 0x23, 0x7D, 0x2A
_PLUS, _MINUS, _CTRL_C, _PERCENT = 0x2B, 0x2D, 0x03, 0x25
_HEX_VALUE = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
# The two checksum characters of a frame, as one slice, to their value: one dict lookup per request.
_CHECKSUM_VALUE = {bytes((hi, lo)): _HEX_VALUE[hi] << 4 | _HEX_VALUE[lo] for hi in _HEX_VALUE for lo in _HEX_VALUE}


@frozen
class Packet:
    """A complete packet with a valid checksum; `body` is the raw text between `$` and `#`."""

    body: bytes


class BadPacketReason(Enum):
    """Why a packet was rejected by the framing layer."""

    CHECKSUM = "checksum mismatch"
    MALFORMED_CHECKSUM = "checksum is not two hex digits"
    OVERSIZED = "packet too large"


@frozen
class BadPacket:
    """A packet the framing rejected; the session answers `-` (in ack mode) and logs it.

    `body` is the received body, cut to its first 64 bytes for an oversized packet.
    """

    body: bytes
    reason: BadPacketReason


@frozen
class InterruptRequest:
    """A bare `\\x03` byte outside any packet: GDB's Ctrl-C while the program runs."""


@frozen
class Ack:
    """`+`: GDB received our last packet."""


@frozen
class Nack:
    """`-`: GDB wants our last packet again."""


Frame = Packet | BadPacket | InterruptRequest | Ack | Nack

ACK = Ack()
NACK = Nack()
INTERRUPT = InterruptRequest()


def checksum(data: bytes) -> int:
    """The modulo-256 sum of the bytes between `$` and `#`."""
    if len(data) <= 512:
        return sum(data) & 0xFF
    # `sum` walks a bytes object one Python int at a time (~10 ns/byte). zlib's Adler-32 keeps
    # 1 + (sum of bytes) mod 65521 in its low half; for 256 bytes that sum is at most 65280, so it
    # never wraps and each 256-byte slice's exact sum comes out of one C call.
    view = memoryview(data)
    total = 0
    for offset in range(0, len(data), 256):
        total += (adler32(view[offset : offset + 256]) & 0xFFFF) - 1
    return total & 0xFF


class _State(Enum):
    IDLE = 0  # between frames
    PACKET = 1  # inside `$...` (or a `%...` notification, which is dropped)
    DISCARD = 2  # skipping the rest of an oversized packet


class PacketReader:
    """Incremental decoder: `feed` any chunk of bytes, get back the frames it completes.

    Keeps at most `max_packet` bytes of an unfinished packet and rescans nothing it has scanned.
    """

    __slots__ = ("_buffer", "_state", "_start", "_scan_from", "_skip", "_notification", "_max_packet")

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buffer = bytearray()
        self._state = _State.IDLE
        self._start = 0  # index of the `$` of the packet being read
        self._scan_from = 0  # where to resume looking for `#`
        self._skip = 0  # checksum characters still to skip after a discarded packet
        self._notification = False  # the packet being read is a `%` notification
        self._max_packet = max_packet

    @property
    def buffered(self) -> int:
        """How many bytes of an unfinished frame are held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Consume `data` and return every frame it completes, in order."""
        body = self.take_packet(data)
        if body is not None:
            return [Packet(body)]
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        while pos < end:
            if self._state is _State.PACKET:
                pos = self._read_packet(buf, end, frames)
                if self._state is _State.PACKET:
                    break  # need more bytes
            elif self._state is _State.DISCARD:
                hash_at = buf.find(b"#", pos)
                if hash_at < 0:
                    pos = end
                    break
                self._state = _State.IDLE
                self._skip = 2
                pos = hash_at + 1
            else:
                pos = self._read_idle(buf, pos, end, frames)
        if self._state is _State.PACKET:
            del buf[: self._start]
            self._scan_from -= self._start
            self._start = 0
        else:
            buf.clear()
        return frames

    def take_packet(self, data: bytes) -> bytes | None:
        """The body of `data` when it is exactly one well-formed packet and nothing is buffered (GDB in
        no-ack mode writes each request at once); None otherwise, and then `feed(data)` must be called.

        The connection loop's fast path: no frame list and no `Packet` value per request, and as few
        bytecodes as the checks allow (it runs for every request GDB sends)."""
        if self._buffer or self._skip or self._state is not _State.IDLE or data[:1] != b"$":
            return None
        body = data[1:-3]
        if data[-3:-2] != b"#" or b"#" in body or b"$" in body or len(body) > self._max_packet:
            return None
        expected = _CHECKSUM_VALUE.get(data[-2:])
        if expected is None or (sum(body) & 0xFF if len(body) <= 512 else checksum(body)) != expected:
            return None  # `feed` reports it as a BadPacket
        return body

    def _read_idle(self, buf: bytearray, pos: int, end: int, frames: list[Frame]) -> int:
        """Handle one byte outside a packet; return the next position."""
        byte = buf[pos]
        if self._skip:
            self._skip -= 1
        elif byte == _DOLLAR or byte == _PERCENT:
            self._state = _State.PACKET
            self._notification = byte == _PERCENT
            self._start = pos
            self._scan_from = pos + 1
        elif byte == _PLUS:
            frames.append(ACK)
        elif byte == _MINUS:
            frames.append(NACK)
        elif byte == _CTRL_C:
            frames.append(INTERRUPT)
        # Anything else between packets is line noise: skipped.
        return pos + 1

    def _read_packet(self, buf: bytearray, end: int, frames: list[Frame]) -> int:
        """Try to complete the packet starting at `self._start`; return the next position."""
        hash_at = buf.find(b"#", self._scan_from)
        if hash_at < 0:
            if end - self._start > self._max_packet + 1:
                self._drop_oversized(buf, frames)
                return end
            self._scan_from = end
            return end
        if hash_at + 3 > end:
            self._scan_from = hash_at
            return end
        # Like GDB's read_frame, a `$` inside a packet restarts it: the earlier start was noise.
        restart = buf.rfind(b"$", self._start + 1, hash_at)
        start = restart if restart >= 0 else self._start
        self._state = _State.IDLE
        if self._notification and restart < 0:
            return hash_at + 3  # `%` notifications are never sent to a stub: ignore them
        body = bytes(buf[start + 1 : hash_at])
        high = _HEX_VALUE.get(buf[hash_at + 1])
        low = _HEX_VALUE.get(buf[hash_at + 2])
        if high is None or low is None:
            frames.append(BadPacket(body, BadPacketReason.MALFORMED_CHECKSUM))
        elif checksum(body) != high << 4 | low:
            frames.append(BadPacket(body, BadPacketReason.CHECKSUM))
        else:
            frames.append(Packet(body))
        return hash_at + 3

    def _drop_oversized(self, buf: bytearray, frames: list[Frame]) -> None:
        if not self._notification:
            frames.append(BadPacket(bytes(buf[self._start + 1 : self._start + 65]), BadPacketReason.OVERSIZED))
        self._state = _State.DISCARD
        self._start = 0
        self._scan_from = 0


# --- encoding -----------------------------------------------------------------------------------------

# The manual allows count characters up to `~` (97 repeats); gdbserver stops at `}` (96), and so
# do we, so that replies are byte-identical to gdbserver's wherever `+`/`-` counts are not involved.
_MAX_REPEAT = 96
_FULL_CHUNK = b"*" + bytes((_MAX_REPEAT + 29,))  # `*}`: the preceding byte plus 96 more copies
# Repeat counts whose character would be `#`, `$`, `+` or `-`; shortened by one (or two) instead.
_FORBIDDEN_REPEATS = frozenset(c - 29 for c in b"#$+-")
_run_cache: dict[bytes, bytes] = {}


def _encode_run(run: bytes) -> bytes:
    """Encode one run of 4 or more identical bytes (memoized: stop replies repeat the same runs)."""
    encoded = _run_cache.get(run)
    if encoded is None:
        encoded = _encode_run_uncached(run)
        if len(run) <= 128 and len(_run_cache) < 4096:
            _run_cache[run] = encoded
    return encoded


def _encode_run_uncached(run: bytes) -> bytes:
    char = run[:1]
    full_chunks, remaining = divmod(len(run), _MAX_REPEAT + 1)
    parts = [(char + _FULL_CHUNK) * full_chunks]
    while remaining >= 4:  # `c*x` is 3 bytes: shorter than the run only from 4 copies on
        repeat = remaining - 1
        while repeat in _FORBIDDEN_REPEATS:
            repeat -= 1
        parts.append(char + b"*" + bytes((repeat + 29,)))
        remaining -= repeat + 1
    parts.append(char * remaining)
    return b"".join(parts)


def _zero_run_end(diff: bytes, pos: int) -> int:
    """The first index at or after `pos` where `diff` is not zero (or its length)."""
    end = len(diff)
    while pos < end:
        segment = diff[pos : pos + 256]
        zeros = len(segment) - len(segment.lstrip(b"\0"))
        pos += zeros
        if zeros < len(segment):
            break
    return pos


def run_length_encode(body: bytes) -> bytes:
    """Replace runs of 4 or more identical bytes with `c*<count+29>` (GDB manual, "Overview")."""
    # XOR the body with itself shifted by one byte, in C via big ints: diff[i] == 0 exactly when
    # body[i] == body[i - 1], so a run of 4 equal bytes is 3 zero bytes, found with `bytes.find`.
    # This scans a 16 KiB reply ~10x faster than the back-referencing regex `(.)\1{3,}`, and a stop
    # reply about as fast (~6 us); `re` itself, no longer needed, cost ~3 ms to import at start-up.
    size = len(body)
    if size < 4:
        return body
    value = int.from_bytes(body, "big")
    diff = (value ^ (value >> 8)).to_bytes(size, "big")
    zeros = diff.find(b"\0\0\0", 1)
    if zeros < 0:
        return body
    parts = []
    pos = 0
    while zeros >= 0:
        start = zeros - 1
        end = _zero_run_end(diff, zeros + 3)
        parts.append(body[pos:start])
        parts.append(_encode_run(body[start:end]))
        pos = end
        zeros = diff.find(b"\0\0\0", end + 1)
    parts.append(body[pos:])
    return b"".join(parts)


def expand_runs(data: bytes) -> bytes:
    """Undo `run_length_encode` as GDB's read_frame does (for tests and RSP clients)."""
    if b"*" not in data:
        return data
    out = bytearray()
    pos = 0
    while True:
        star = data.find(b"*", pos)
        if star < 0:
            out += data[pos:]
            return bytes(out)
        out += data[pos:star]
        if not out or star + 1 >= len(data):
            raise ProtocolError("run-length marker without a preceding byte or a count")
        out += bytes((out[-1],)) * (data[star + 1] - 29)
        pos = star + 2


def escape_binary(data: bytes) -> bytes:
    """Escape `#`, `$`, `}` and `*` as `}` + (byte ^ 0x20), for binary reply payloads."""
    if b"}" in data or b"#" in data or b"$" in data or b"*" in data:
        # `}` first: the later replacements insert `}` bytes that must stay escape characters.
        data = data.replace(b"}", b"}\x5d").replace(b"#", b"}\x03").replace(b"$", b"}\x04").replace(b"*", b"}\x0a")
    return data


def unescape_binary(data: bytes) -> bytes:
    """Undo `}` escapes in a binary payload (`X`, `vFile:pwrite`, `qXfer:...:write`, `qSearch`)."""
    escape = data.find(b"}")
    if escape < 0:
        return data
    out = bytearray()
    pos = 0
    while escape >= 0:
        if escape + 1 >= len(data):
            raise ProtocolError("binary data ends with an unfinished `}` escape")
        out += data[pos:escape]
        out.append(data[escape + 1] ^ 0x20)
        pos = escape + 2
        escape = data.find(b"}", pos)
    out += data[pos:]
    return bytes(out)


def _escape_framing(body: bytes) -> bytes:
    return body.replace(b"#", b"}\x03").replace(b"$", b"}\x04").replace(b"*", b"}\x0a")


class Encoded(bytes):
    """A reply body already run-length encoded and framing-safe (e.g. `replies.memory_hex`):
    `encode_packet` adds only `$`, `#` and the checksum."""


def encode_packet(body: bytes, *, run_length: bool = True) -> bytes:
    """Frame a reply body as `$body#cs`, run-length encoded.

    `body` must already be escaped if the reply is binary (`escape_binary`); stray `$`, `#`, `*` are
    escaped here so the frame stays intact whatever the body holds. Pass `run_length=False` when
    acting as a client: GDB never run-length encodes requests and gdbserver does not decode them.
    """
    if isinstance(body, Encoded):
        return b"$%s#%02x" % (body, checksum(body))
    memoize = run_length and len(body) <= _MEMO_MAX_BODY and type(body) is bytes
    if memoize:
        # `OK`, empty replies and the stop reply of a breakpoint hit repeat byte for byte.
        framed = _frame_memo.get(body)
        if framed is not None:
            return framed
    original = body
    if b"#" in body or b"$" in body or b"*" in body:
        body = _escape_framing(body)
    encoded = run_length_encode(body) if run_length else body
    framed = b"$%s#%02x" % (encoded, checksum(encoded))
    if memoize:
        if len(_frame_memo) >= _MEMO_MAX_ENTRIES:
            _frame_memo.clear()
        _frame_memo[original] = framed
    return framed


# 1 KiB: the `qXfer:threads:read` reply of ~10 threads (read at every stop, unchanged while the thread
# list is) is framed once too; at most 512 KiB are kept.
_MEMO_MAX_BODY = 1024
_MEMO_MAX_ENTRIES = 512
_frame_memo: dict[bytes, bytes] = {}

framed_reply = _frame_memo.get
"""`framed_reply(body)`: the frame `encode_packet(body)` returned for a plain `bytes` reply body before,
or None. The connection loop's fast path (`OK`, empty and repeated stop replies); only for bodies of
type `bytes` exactly (an `Encoded` body is framed differently)."""


def encode_notification(body: bytes) -> bytes:
    """Frame an asynchronous notification as `%body#cs` (non-stop `Stop:`; unused in all-stop)."""
    return b"%" + encode_packet(body)[1:]

"""The one error the protocol layer raises: a packet GDB sent that ptstub cannot make sense of.

Invariant: a `ProtocolError` is never fatal. The session logs it and answers `E NN` (gdbserver answers a
malformed packet with `E01`, so that is the default), then reads the next packet. Framing problems
(bad checksum, oversized packet) are not errors at all: `PacketReader` reports them as `BadPacket`
frames, answered with `-` (GDB manual, "Overview" of the Remote Protocol appendix).
"""

from __future__ import annotations

from ptstub.errors import PtstubError


class ProtocolError(PtstubError):
    """A known packet family with a malformed body (bad hex, missing field, length out of range).

    `errno` is the value the session puts in its `E NN` reply. `reply`, when set, is the exact reply
    body to send instead: vFile packets answer errors in their own `F-1,errno` form, as gdbserver does.
    """

    def __init__(self, message: str, errno: int = 1, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.reply = reply

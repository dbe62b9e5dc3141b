"""ptstub's GDB Remote Serial Protocol layer: pure functions and values, no I/O, no ptrace.

Follows the GDB manual's "Remote Protocol" appendix, checked against GDB 13.1 <-> gdbserver 13.1
traces. The pipeline a session drives:

    bytes --PacketReader.feed--> Frame --parse_command(Packet.body)--> Command
    reply body (replies.*) --encode_packet--> bytes

Modules: `framing` (frames, checksums, escapes, run-length encoding), `threadid` (`p<pid>.<tid>`),
`commands` (one frozen value per packet family), `replies` (reply encoders), `features`
(qSupported), `signals` (Linux <-> GDB signal numbers), `hexutil`, `errors` (`ProtocolError`).
Invariant: nothing here imports `ptstub.linux`, sockets or ptrace; `ProtocolError` is never fatal.
"""

from ptstub.rsp.commands import Command, UnknownCommand, parse_command
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.features import (
    ClientFeatures,
    NegotiatedFeatures,
    ServerFeatures,
    TransferObject,
    negotiate,
    parse_client_features,
    supported_reply,
)
from ptstub.rsp.framing import (
    ACK,
    INTERRUPT,
    NACK,
    Ack,
    BadPacket,
    Frame,
    InterruptRequest,
    Nack,
    Packet,
    PacketReader,
    encode_packet,
    escape_binary,
    unescape_binary,
)
from ptstub.rsp.signals import gdb_to_host_signal, host_to_gdb_signal
from ptstub.rsp.threadid import ThreadId, parse_thread_id

__all__ = [
    "ACK",
    "INTERRUPT",
    "NACK",
    "Ack",
    "BadPacket",
    "ClientFeatures",
    "Command",
    "Frame",
    "InterruptRequest",
    "Nack",
    "NegotiatedFeatures",
    "Packet",
    "PacketReader",
    "ProtocolError",
    "ServerFeatures",
    "ThreadId",
    "TransferObject",
    "UnknownCommand",
    "encode_packet",
    "escape_binary",
    "gdb_to_host_signal",
    "host_to_gdb_signal",
    "negotiate",
    "parse_client_features",
    "parse_command",
    "parse_thread_id",
    "supported_reply",
    "unescape_binary",
]

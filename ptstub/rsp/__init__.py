"""ptstub's GDB Remote Serial Protocol layer: pure functions and values, no I/O, no ptrace.

Follows the GDB manual's "Remote Protocol" appendix, checked against GDB 13.1 <-> gdbserver 13.1
traces. The pipeline a session drives:

    bytes --PacketReader.feed--> Frame --parse_command(Packet.body)--> Command
    reply body (replies.*) --encode_packet--> bytes

Modules: `framing` (frames, checksums, escapes, run-length encoding), `threadid` (`p<pid>.<tid>`),
`command_values` (one frozen value per packet family), `commands` (their parser), `replies` (reply
encoders), `features` (qSupported), `signals` (Linux <-> GDB signal numbers), `hexutil`, `errors`.
Invariant: nothing here imports `ptstub.linux`, sockets or ptrace; `ProtocolError` is never fatal.

The names below are loaded on first use (PEP 562 `__getattr__`), so that `ptstub.rsp.framing` (all the
connection loop needs before a client connects) does not pull in `commands` and its ~60 value classes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

    from ptstub.rsp.command_values import Command, UnknownCommand
    from ptstub.rsp.commands import parse_command
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

_HOMES = {
    "Command": "ptstub.rsp.commands",
    "UnknownCommand": "ptstub.rsp.commands",
    "parse_command": "ptstub.rsp.commands",
    "ProtocolError": "ptstub.rsp.errors",
    "ClientFeatures": "ptstub.rsp.features",
    "NegotiatedFeatures": "ptstub.rsp.features",
    "ServerFeatures": "ptstub.rsp.features",
    "TransferObject": "ptstub.rsp.features",
    "negotiate": "ptstub.rsp.features",
    "parse_client_features": "ptstub.rsp.features",
    "supported_reply": "ptstub.rsp.features",
    "ACK": "ptstub.rsp.framing",
    "INTERRUPT": "ptstub.rsp.framing",
    "NACK": "ptstub.rsp.framing",
    "Ack": "ptstub.rsp.framing",
    "BadPacket": "ptstub.rsp.framing",
    "Frame": "ptstub.rsp.framing",
    "InterruptRequest": "ptstub.rsp.framing",
    "Nack": "ptstub.rsp.framing",
    "Packet": "ptstub.rsp.framing",
    "PacketReader": "ptstub.rsp.framing",
    "encode_packet": "ptstub.rsp.framing",
    "escape_binary": "ptstub.rsp.framing",
    "unescape_binary": "ptstub.rsp.framing",
    "gdb_to_host_signal": "ptstub.rsp.signals",
    "host_to_gdb_signal": "ptstub.rsp.signals",
    "ThreadId": "ptstub.rsp.threadid",
    "parse_thread_id": "ptstub.rsp.threadid",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'ptstub.rsp' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)  # not importlib: ~1 ms more at start-up
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

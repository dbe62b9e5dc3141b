"""qSupported negotiation: what GDB offers, what ptstub advertises, and what both then use.

GDB manual, Remote Protocol appendix, "General Query Packets", `qSupported`. GDB 13.1 sends
`multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;
vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386`.

Invariants:
- Nothing is advertised by default: the session builds `ServerFeatures` from what the backend really
  implements, so the reply never claims a packet ptstub would answer with an empty reply.
- Features that change the *format* of what the stub sends (multiprocess thread ids, fork/vfork/exec
  events, `N` replies, `swbreak`/`hwbreak` reasons) are only used when both sides offer them;
  `negotiate` computes that, and `supported_reply` advertises the event features only when GDB
  offered them, as gdbserver does.
- The reply lists features in gdbserver 13's order so packet traces diff cleanly.
"""

from __future__ import annotations

from enum import Enum

from ptstub.values import frozen

DEFAULT_PACKET_SIZE = 0x4000
"""Advertised packet size; GDB sizes `m`, `X` and `vFile:pread` from it (gdbserver: 0x47ff)."""


class TransferObject(Enum):
    """The `qXfer` objects GDB may ask for (GDB manual, "qXfer read")."""

    FEATURES = "features"
    AUXV = "auxv"
    THREADS = "threads"
    LIBRARIES_SVR4 = "libraries-svr4"
    LIBRARIES = "libraries"
    EXEC_FILE = "exec-file"
    SIGINFO = "siginfo"
    OSDATA = "osdata"
    MEMORY_MAP = "memory-map"
    BTRACE = "btrace"
    BTRACE_CONF = "btrace-conf"
    TRACEFRAME_INFO = "traceframe-info"
    STATICTRACE = "statictrace"
    FDPIC = "fdpic"


@frozen
class ClientFeatures:
    """What GDB said it supports in `qSupported:` (each flag is an offered `name+`)."""

    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    relocate_instructions: bool = False  # qRelocInsn+
    fork_events: bool = False
    vfork_events: bool = False
    exec_events: bool = False
    vcont_supported: bool = False
    thread_events: bool = False  # QThreadEvents+
    no_resumed: bool = False
    memory_tagging: bool = False
    thread_options: bool = False  # QThreadOptions+ (GDB 14+)
    error_message: bool = False  # error-message+ (GDB 15+): `E.text` replies understood
    xml_registers: tuple[str, ...] = ()  # xmlRegisters=i386[,...]
    others: tuple[bytes, ...] = ()  # items ptstub does not know, verbatim


_CLIENT_FLAGS = {
    b"multiprocess": "multiprocess",
    b"swbreak": "swbreak",
    b"hwbreak": "hwbreak",
    b"qRelocInsn": "relocate_instructions",
    b"fork-events": "fork_events",
    b"vfork-events": "vfork_events",
    b"exec-events": "exec_events",
    b"vContSupported": "vcont_supported",
    b"QThreadEvents": "thread_events",
    b"no-resumed": "no_resumed",
    b"memory-tagging": "memory_tagging",
    b"QThreadOptions": "thread_options",
    b"error-message": "error_message",
}


def parse_client_features(items: bytes) -> ClientFeatures:
    """Parse the part of `qSupported:` after the colon. Unknown or malformed items are kept/ignored,
    never an error: the manual requires stubs to ignore features they do not understand."""
    flags: dict[str, bool] = {}
    xml_registers: tuple[str, ...] = ()
    others: list[bytes] = []
    for item in items.split(b";"):
        if not item:
            continue
        name, equals, value = item.partition(b"=")
        if equals:
            if name == b"xmlRegisters":
                xml_registers = tuple(value.decode("ascii", "replace").split(","))
            else:
                others.append(item)
            continue
        attribute = _CLIENT_FLAGS.get(item[:-1])
        if attribute is not None and item[-1:] in (b"+", b"-"):
            flags[attribute] = item[-1:] == b"+"
        else:
            others.append(item)
    return ClientFeatures(xml_registers=xml_registers, others=tuple(others), **flags)


@frozen
class ServerFeatures:
    """What ptstub really implements; the session fills it in from the backend's capabilities."""

    packet_size: int = DEFAULT_PACKET_SIZE
    no_ack_mode: bool = False
    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    fork_events: bool = False
    vfork_events: bool = False
    exec_events: bool = False
    vcont_supported: bool = False
    thread_events: bool = False
    no_resumed: bool = False
    pass_signals: bool = False
    program_signals: bool = False
    non_stop: bool = False  # QNonStop+: accepting `QNonStop:0` is enough for all-stop
    disable_randomization: bool = False
    startup_with_shell: bool = False
    environment: bool = False  # QEnvironmentHexEncoded, QEnvironmentReset, QEnvironmentUnset
    working_directory: bool = False  # QSetWorkingDir
    catch_syscalls: bool = False
    conditional_breakpoints: bool = False
    breakpoint_commands: bool = False
    augmented_libraries_svr4: bool = False
    readable_objects: frozenset[TransferObject] = frozenset()
    writable_objects: frozenset[TransferObject] = frozenset()


@frozen
class NegotiatedFeatures:
    """The behaviour the session must use after `qSupported` (both sides agreed)."""

    multiprocess: bool = False
    swbreak: bool = False
    hwbreak: bool = False
    fork_events: bool = False
    vfork_events: bool = False
    exec_events: bool = False
    no_resumed: bool = False
    vcont_supported: bool = False
    error_message: bool = False
    packet_size: int = DEFAULT_PACKET_SIZE


def negotiate(client: ClientFeatures, server: ServerFeatures) -> NegotiatedFeatures:
    """Combine both sides' offers into the features the session uses from now on."""
    return NegotiatedFeatures(
        multiprocess=client.multiprocess and server.multiprocess,
        swbreak=client.swbreak and server.swbreak,
        hwbreak=client.hwbreak and server.hwbreak,
        fork_events=client.fork_events and server.fork_events,
        vfork_events=client.vfork_events and server.vfork_events,
        exec_events=client.exec_events and server.exec_events,
        no_resumed=client.no_resumed and server.no_resumed,
        vcont_supported=client.vcont_supported and server.vcont_supported,
        error_message=client.error_message,
        packet_size=server.packet_size,
    )


# qXfer objects in the order gdbserver 13 lists them; the rest follow in enum order.
_XFER_ORDER_EARLY = (TransferObject.LIBRARIES_SVR4,)
_XFER_ORDER_MIDDLE = (TransferObject.AUXV, TransferObject.SIGINFO, TransferObject.FEATURES)


def _xfer_items(server: ServerFeatures, objects: tuple[TransferObject, ...]) -> list[bytes]:
    items = []
    for obj in objects:
        if obj in server.readable_objects:
            items.append(b"qXfer:%s:read+" % obj.value.encode())
        if obj in server.writable_objects:
            items.append(b"qXfer:%s:write+" % obj.value.encode())
    return items


def supported_reply(server: ServerFeatures, client: ClientFeatures) -> bytes:
    """The `qSupported` reply body: `PacketSize=<hex>;feature+;...`."""
    items = [b"PacketSize=%x" % server.packet_size]
    optional = (
        (server.pass_signals, b"QPassSignals+"),
        (server.program_signals, b"QProgramSignals+"),
        (server.startup_with_shell, b"QStartupWithShell+"),
        (server.environment, b"QEnvironmentHexEncoded+"),
        (server.environment, b"QEnvironmentReset+"),
        (server.environment, b"QEnvironmentUnset+"),
        (server.working_directory, b"QSetWorkingDir+"),
        (server.catch_syscalls, b"QCatchSyscalls+"),
    )
    items += [name for wanted, name in optional if wanted]
    items += _xfer_items(server, _XFER_ORDER_EARLY)
    if server.augmented_libraries_svr4 and TransferObject.LIBRARIES_SVR4 in server.readable_objects:
        items.append(b"augmented-libraries-svr4-read+")
    items += _xfer_items(server, _XFER_ORDER_MIDDLE)
    if server.no_ack_mode:
        items.append(b"QStartNoAckMode+")
    items += _xfer_items(server, (TransferObject.OSDATA,))
    agreed = negotiate(client, server)
    events = (
        (agreed.multiprocess, b"multiprocess+"),
        (agreed.fork_events, b"fork-events+"),
        (agreed.vfork_events, b"vfork-events+"),
        (agreed.exec_events, b"exec-events+"),
        (server.non_stop, b"QNonStop+"),
        (server.disable_randomization, b"QDisableRandomization+"),
    )
    items += [name for wanted, name in events if wanted]
    items += _xfer_items(server, (TransferObject.THREADS,))
    breakpoints = (
        (server.conditional_breakpoints, b"ConditionalBreakpoints+"),
        (server.breakpoint_commands, b"BreakpointCommands+"),
        (server.swbreak, b"swbreak+"),
        (server.hwbreak, b"hwbreak+"),
    )
    items += [name for wanted, name in breakpoints if wanted]
    items += _xfer_items(server, (TransferObject.EXEC_FILE,))
    tail = (
        (server.vcont_supported, b"vContSupported+"),
        (server.thread_events, b"QThreadEvents+"),
        (server.no_resumed, b"no-resumed+"),
    )
    items += [name for wanted, name in tail if wanted]
    listed = set(_XFER_ORDER_EARLY + _XFER_ORDER_MIDDLE) | {
        TransferObject.OSDATA,
        TransferObject.THREADS,
        TransferObject.EXEC_FILE,
    }
    items += _xfer_items(server, tuple(obj for obj in TransferObject if obj not in listed))
    return b";".join(items)

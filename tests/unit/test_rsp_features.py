"""qSupported negotiation against GDB 13.1's offer and gdbserver 13.1's reply."""

from __future__ import annotations

from ptstub.rsp.features import (
    ClientFeatures,
    ServerFeatures,
    TransferObject,
    negotiate,
    parse_client_features,
    supported_reply,
)

GDB_13_OFFER = (
    b"multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;"
    b"vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386"
)

GDBSERVER_13_REPLY = (
    b"PacketSize=47ff;QPassSignals+;QProgramSignals+;QStartupWithShell+;QEnvironmentHexEncoded+;"
    b"QEnvironmentReset+;QEnvironmentUnset+;QSetWorkingDir+;QCatchSyscalls+;qXfer:libraries-svr4:read+;"
    b"augmented-libraries-svr4-read+;qXfer:auxv:read+;qXfer:siginfo:read+;qXfer:siginfo:write+;"
    b"qXfer:features:read+;QStartNoAckMode+;qXfer:osdata:read+;multiprocess+;fork-events+;vfork-events+;"
    b"exec-events+;QNonStop+;QDisableRandomization+;qXfer:threads:read+;ConditionalTracepoints+;"
    b"TraceStateVariables+;TracepointSource+;DisconnectedTracing+;FastTracepoints+;StaticTracepoints+;"
    b"InstallInTrace+;qXfer:statictrace:read+;qXfer:traceframe-info:read+;EnableDisableTracepoints+;"
    b"QTBuffer:size+;tracenz+;ConditionalBreakpoints+;BreakpointCommands+;QAgent+;Qbtrace:bts+;"
    b"Qbtrace-conf:bts:size+;Qbtrace:pt+;Qbtrace-conf:pt:size+;Qbtrace:off+;qXfer:btrace:read+;"
    b"qXfer:btrace-conf:read+;swbreak+;hwbreak+;qXfer:exec-file:read+;vContSupported+;QThreadEvents+;"
    b"no-resumed+"
)

EVERYTHING = ServerFeatures(
    packet_size=0x47FF,
    no_ack_mode=True,
    multiprocess=True,
    swbreak=True,
    hwbreak=True,
    fork_events=True,
    vfork_events=True,
    exec_events=True,
    vcont_supported=True,
    thread_events=True,
    no_resumed=True,
    pass_signals=True,
    program_signals=True,
    non_stop=True,
    disable_randomization=True,
    startup_with_shell=True,
    environment=True,
    working_directory=True,
    catch_syscalls=True,
    conditional_breakpoints=True,
    breakpoint_commands=True,
    augmented_libraries_svr4=True,
    readable_objects=frozenset(
        {
            TransferObject.LIBRARIES_SVR4,
            TransferObject.AUXV,
            TransferObject.SIGINFO,
            TransferObject.FEATURES,
            TransferObject.OSDATA,
            TransferObject.THREADS,
            TransferObject.EXEC_FILE,
        }
    ),
    writable_objects=frozenset({TransferObject.SIGINFO}),
)


def test_parse_gdb_13_offer() -> None:
    client = parse_client_features(GDB_13_OFFER)
    assert client == ClientFeatures(
        multiprocess=True,
        swbreak=True,
        hwbreak=True,
        relocate_instructions=True,
        fork_events=True,
        vfork_events=True,
        exec_events=True,
        vcont_supported=True,
        thread_events=True,
        no_resumed=True,
        memory_tagging=True,
        xml_registers=("i386",),
    )


def test_unknown_and_odd_items_are_kept_not_errors() -> None:
    client = parse_client_features(b"multiprocess-;QThreadOptions+;error-message+;foo+;bar=1;;baz?")
    assert not client.multiprocess
    assert client.thread_options and client.error_message
    assert client.others == (b"foo+", b"bar=1", b"baz?")


def test_reply_matches_gdbserver_order_for_the_features_ptstub_knows() -> None:
    known = [
        item
        for item in GDBSERVER_13_REPLY.split(b";")
        if not item.startswith((b"Qbtrace", b"QTBuffer", b"QAgent", b"qXfer:btrace", b"qXfer:statictrace"))
        and b"trac" not in item.lower()  # the tracepoint family
    ]
    reply = supported_reply(EVERYTHING, parse_client_features(GDB_13_OFFER))
    assert reply.split(b";") == known


def test_nothing_is_advertised_by_default() -> None:
    assert supported_reply(ServerFeatures(), parse_client_features(GDB_13_OFFER)) == b"PacketSize=4000"


def test_multiprocess_and_events_need_both_sides() -> None:
    old_gdb = parse_client_features(b"swbreak+;hwbreak+")
    reply = supported_reply(EVERYTHING, old_gdb)
    for item in (b"multiprocess+", b"fork-events+", b"vfork-events+", b"exec-events+"):
        assert item not in reply.split(b";")
    assert b"swbreak+" in reply.split(b";")  # gdbserver advertises it regardless
    agreed = negotiate(old_gdb, EVERYTHING)
    assert not agreed.multiprocess and agreed.swbreak and not agreed.fork_events
    assert agreed.packet_size == 0x47FF


def test_negotiate_with_gdb_13() -> None:
    agreed = negotiate(parse_client_features(GDB_13_OFFER), ServerFeatures(multiprocess=True, swbreak=True))
    assert agreed.multiprocess and agreed.swbreak
    assert not agreed.hwbreak and not agreed.fork_events and not agreed.no_resumed

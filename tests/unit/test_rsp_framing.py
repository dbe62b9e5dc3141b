"""Framing: literal GDB 13.1 / gdbserver 13.1 wire bytes, checksums, escapes, run-length encoding."""

from __future__ import annotations

import os
import random
import re

import pytest

from ptstub.rsp import framing
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.framing import (
    ACK,
    INTERRUPT,
    NACK,
    BadPacket,
    BadPacketReason,
    Packet,
    PacketReader,
    checksum,
    encode_notification,
    encode_packet,
    escape_binary,
    expand_runs,
    run_length_encode,
    unescape_binary,
)

# Packets GDB 13.1 sent to gdbserver 13.1 on this machine (captured with a TCP proxy).
GDB_PACKETS = [
    b"$qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;"
    b"vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386#77",
    b"$vMustReplyEmpty#3a",
    b"$QStartNoAckMode#b0",
    b"$Hgp0.0#ad",
    b"$qXfer:features:read:target.xml:0,1000#0c",
    b"$vCont;c:p1b4b.-1#07",
    b"$vCont;s:p1b4b.1b4b#e2",
    b"$Z0,555555555160,1#87",
    b"$z0,555555555160,1#a7",
    b"$QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97;#0a",
    b"$QPassSignals:#f3",
    b"$qXfer:threads:read::0,1000#92",
    b"$X555555558040,0:#62",
    b"$X555555558040,1:}]#3d",
    b"$X555555558041,1:}\x03#e4",
    b"$X7fffffffe66f,1:\xcc#f3",
    b"$X7fffffffe658,8:o\xe6\xff\xff\xff\x7f\x00\x00#d0",
    b"$qGetTLSAddr:pd06.ff6,0,7ffff7ffe2e0#29",
    b"$vFile:open:2f746d702f72737074726163652f7374,0,0#26",
    b"$D;1db3#a9",
    b"$vKill;1b4b#66",
    b"$?#3f",
]


def _body(wire: bytes) -> bytes:
    return wire[1 : wire.rindex(b"#")]


@pytest.mark.parametrize("wire", GDB_PACKETS, ids=lambda w: w[:24].decode("latin-1"))
def test_real_gdb_packets_decode_with_valid_checksums(wire: bytes) -> None:
    assert PacketReader().feed(wire) == [Packet(_body(wire))]


def test_ack_mode_stream_yields_acks_and_packets_in_order() -> None:
    stream = b"+" + GDB_PACKETS[0] + b"+" + GDB_PACKETS[1] + b"-"
    assert PacketReader().feed(stream) == [ACK, Packet(_body(GDB_PACKETS[0])), ACK, Packet(b"vMustReplyEmpty"), NACK]


def test_ctrl_c_between_packets_is_an_interrupt() -> None:
    # Captured while `continue` ran and GDB got SIGINT: the \x03 follows the vCont immediately.
    stream = b"$vCont;c:p1db3.-1#08\x03$qXfer:threads:read::0,1000#92"
    assert PacketReader().feed(stream) == [
        Packet(b"vCont;c:p1db3.-1"),
        INTERRUPT,
        Packet(b"qXfer:threads:read::0,1000"),
    ]


def test_binary_bytes_inside_a_packet_are_data_not_frames() -> None:
    # `+`, `-` and \x03 inside an X payload must not be read as acks or interrupts.
    body = b"X1000,4:+-\x03\x00"
    wire = b"$%s#%02x" % (body, sum(body) & 0xFF)
    assert PacketReader().feed(wire) == [Packet(body)]


def test_every_split_point_gives_the_same_frames() -> None:
    stream = b"+" + b"".join(GDB_PACKETS) + b"\x03" + b"-"
    expected = PacketReader().feed(stream)
    for cut in range(1, len(stream)):
        reader = PacketReader()
        assert reader.feed(stream[:cut]) + reader.feed(stream[cut:]) == expected
    reader = PacketReader()
    byte_by_byte = [frame for i in range(len(stream)) for frame in reader.feed(stream[i : i + 1])]
    assert byte_by_byte == expected
    assert reader.buffered == 0


def test_bad_checksum_is_reported_and_the_next_packet_still_decodes() -> None:
    frames = PacketReader().feed(b"$vCont?#48$vCont?#49")
    assert frames == [BadPacket(b"vCont?", BadPacketReason.CHECKSUM), Packet(b"vCont?")]


def test_non_hex_checksum_is_a_bad_packet() -> None:
    assert PacketReader().feed(b"$g#zz") == [BadPacket(b"g", BadPacketReason.MALFORMED_CHECKSUM)]


def test_line_noise_between_packets_is_skipped() -> None:
    assert PacketReader().feed(b"hello\r\n\xff#12$g#67junk") == [Packet(b"g")]


def test_a_dollar_inside_a_packet_restarts_it_like_gdb() -> None:
    assert PacketReader().feed(b"$garbage$vCont?#49") == [Packet(b"vCont?")]


def test_notifications_are_ignored() -> None:
    notification = encode_notification(b"Stop:T05")
    assert notification.startswith(b"%Stop:T05#")
    assert PacketReader().feed(notification + b"$g#67") == [Packet(b"g")]


def test_oversized_packet_is_dropped_with_bounded_memory_and_its_tail_skipped() -> None:
    reader = PacketReader(max_packet=100)
    frames = reader.feed(b"$" + b"a" * 150)
    assert len(frames) == 1 and isinstance(frames[0], BadPacket)
    assert frames[0].reason is BadPacketReason.OVERSIZED
    assert reader.buffered == 0
    # The rest of the oversized packet holds bytes that look like frames; none may come out.
    assert reader.feed(b"+-\x03" * 1000) == []
    assert reader.buffered == 0
    assert reader.feed(b"\x03+#00$g#67") == [Packet(b"g")]


def test_packet_of_exactly_the_limit_is_accepted() -> None:
    body = b"m" * 100
    wire = b"$%s#%02x" % (body, checksum(body))
    assert PacketReader(max_packet=100).feed(wire) == [Packet(body)]


def test_random_streams_never_raise() -> None:
    rng = random.Random(1234)
    alphabet = b"$#+-\x03}*%ab0f"
    for _ in range(300):
        reader = PacketReader(max_packet=64)
        for _ in range(5):
            chunk = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
            for frame in reader.feed(chunk):
                assert frame in (ACK, NACK, INTERRUPT) or isinstance(frame, (Packet, BadPacket))
            assert reader.buffered <= 64 + 3
        reader.feed(os.urandom(200))


# --- encoding ------------------------------------------------------------------------------------------

# Replies gdbserver 13.1 sent, byte for byte; ptstub must produce the same wire bytes for the same body.
GDBSERVER_REPLIES = [
    b"$OK#9a",
    b"$E01#a6",
    b"$F6#7c",
    b"$F-1,2#02",
    b"$F0;#b1",
    b"$W3;process:1c55#fc",
    b"$X1e;process:1cb7#8f",
    b"$E.Btrace not enabled.#4e",
    b'$1,5*"558046#1a',
    b'$T0506:0*,;07:10e8f*"7f0* ;10:704bfef7ff7f0* ;thread:pd06.d06;core:1;#49',
    b'$T05swbreak:;06:a80eddf7ff7f0* ;07:a80eddf7ff7f0* ;10:7f515*"550* ;thread:pd06.ff6;core:0;#a3',
    b'$T05watch:0* 5*"558084;06:00e7f*"7f0* ;07:f0e6f*"7f0* ;10:7a515*"550* ;thread:p1b4b.1b4b;core:1;#59',
    b'$l<threads>\n<thread id="pd06.d06" core="1" name="mt" handle="4027ddf7ff7f0* "/>\n'
    b'<thread id="pd06.ff6" core="0" name="mt" handle="c016ddf7ff7f0* "/>\n</threads>\n#f3',
    b"$T0;tnotrun:0;tframes:0;tcreated:0;tfree:50*!;tsize:50*!;circular:0;disconn:0;starttime:0;"
    b"stoptime:0;username:;notes::#30",
    b'$l\x05\x00*"\x00\x80\x00*}\x00*2#40',  # qXfer:siginfo:read: a run longer than 96 is split
]


@pytest.mark.parametrize("wire", GDBSERVER_REPLIES, ids=lambda w: w[:20].decode("latin-1"))
def test_encoding_matches_gdbserver_byte_for_byte(wire: bytes) -> None:
    body = expand_runs(_body(wire))
    assert encode_packet(body) == wire


def test_rle_example_from_the_manual() -> None:
    assert run_length_encode(b"0" * 4) == b"0* "
    assert run_length_encode(b"000") == b"000"
    assert expand_runs(b"0* ") == b"0000"


def _repeat_counts(encoded: bytes) -> list[int]:
    """The count characters of an RLE body (which may themselves be `*`), as GDB reads them."""
    counts = []
    pos = 0
    while pos < len(encoded):
        if encoded[pos] == 0x2A:
            counts.append(encoded[pos + 1])
            pos += 2
        else:
            pos += 1
    return counts


@pytest.mark.parametrize("char", [b"0", b"f", b"\x00", b" ", b"}"])
def test_rle_never_emits_forbidden_counts_and_round_trips(char: bytes) -> None:
    for length in range(1, 400):
        run = char * length
        for body in (run, b"x" + run + b"y", b"ab" * 150 + run):  # small and large (XOR) paths
            encoded = run_length_encode(body)
            assert len(encoded) <= len(body)
            for count in _repeat_counts(encoded):
                assert count not in b"#$+-" and 32 <= count <= 125
            assert expand_runs(encoded) == body


def test_rle_counts_that_would_be_frame_characters_are_split() -> None:
    # 7 identical chars = 6 repeats = '#', 8 = 7 repeats = '$', 15 -> '+', 17 -> '-'.
    assert run_length_encode(b"0" * 7) == b'0*"0'
    assert run_length_encode(b"0" * 8) == b'0*"00'
    assert run_length_encode(b"0" * 15) == b"0**0"
    assert run_length_encode(b"0" * 17) == b"0*,0"


def test_rle_agrees_with_the_regex_definition() -> None:
    # The encoder scans with an XOR of the body and itself; the definition is "every run of 4 or more".
    run = re.compile(rb"(.)\1{3,}", re.DOTALL)
    rng = random.Random(7)
    for _ in range(300):
        body = bytes(rng.choice(b"a0\x00") for _ in range(rng.randint(0, 700)))
        expected = run.sub(lambda m: framing._encode_run(m.group()), body)
        assert run_length_encode(body) == expected


def test_encode_packet_keeps_frames_intact_for_stray_special_bytes() -> None:
    wire = encode_packet(b"a#b$c*d")
    assert wire.count(b"#") == 1 and wire.count(b"$") == 1
    (frame,) = PacketReader().feed(wire)
    assert isinstance(frame, Packet)
    assert unescape_binary(expand_runs(frame.body)) == b"a#b$c*d"


def test_escape_binary_literal() -> None:
    assert escape_binary(b"}#$*") == b"}]}\x03}\x04}\x0a"
    assert escape_binary(b"plain") == b"plain"


def test_unescape_binary_literal_and_errors() -> None:
    assert unescape_binary(b"}]") == b"}"
    assert unescape_binary(b"}\x03x}\x04") == b"#x$"
    assert unescape_binary(b"}}") == b"\x5d"  # a `}` payload is legal even if GDB never sends it
    with pytest.raises(ProtocolError):
        unescape_binary(b"abc}")


def test_binary_round_trip_through_the_wire() -> None:
    data = bytes(range(256)) * 3 + b"}}}}####****$$$$" + b"\x00" * 300
    wire = encode_packet(escape_binary(data))
    (frame,) = PacketReader().feed(wire)
    assert isinstance(frame, Packet)
    assert unescape_binary(expand_runs(frame.body)) == data


def test_checksum_large_path_equals_plain_sum() -> None:
    for size in (0, 1, 255, 256, 257, 512, 513, 4096, 16385):
        data = os.urandom(size)
        assert checksum(data) == sum(data) & 0xFF


def test_expand_runs_rejects_a_dangling_marker() -> None:
    with pytest.raises(ProtocolError):
        expand_runs(b"*")
    with pytest.raises(ProtocolError):
        expand_runs(b"0*")


def test_requests_can_be_framed_without_run_length_encoding() -> None:
    # As a client (tests driving gdbserver), never RLE: gdbserver reads `m7f* 7fe...` as bad hex.
    assert encode_packet(b"m7ffff7fe4b70,40", run_length=False) == b"$m7ffff7fe4b70,40#cb"
    assert encode_packet(b"m7ffff7fe4b70,40") == b"$m7f* 7fe4b70,40#e3"


# --- the one-packet fast path and the reply memo (design-notes: "Speed with GDB in the loop") --------


def test_whole_packet_fast_path_matches_the_general_reader() -> None:
    """`feed` of exactly one `$body#cs` (GDB in no-ack mode) gives what the byte-wise reader gives."""
    samples = [
        b"$vCont;c:p1.-1#%02x" % (sum(b"vCont;c:p1.-1") & 0xFF),
        b"$OK#00",  # wrong checksum
        b"$OK#zz",  # malformed checksum
        b"$#00",  # empty body
        b"$a$b#%02x" % (sum(b"b") & 0xFF),  # a `$` inside restarts the packet
        b"$ab#c",  # unfinished: no frame yet
        b"$m0,1#%02x+" % (sum(b"m0,1") & 0xFF),  # trailing ack
    ]
    for data in samples:
        fast = PacketReader().feed(data)
        slow_reader = PacketReader()
        slow = [frame for byte in data for frame in slow_reader.feed(bytes((byte,)))]
        assert fast == slow, data


def test_fast_path_keeps_a_partial_packet_for_the_next_feed() -> None:
    reader = PacketReader()
    assert reader.feed(b"$ab") == []
    assert reader.feed(b"c#%02x" % (sum(b"abc") & 0xFF)) == [Packet(b"abc")]


def test_memoized_replies_are_framed_like_fresh_ones() -> None:
    bodies = [b"OK", b"", b"E01", b"T0506:0000000000000000;thread:p1.1;", b"a#b$c*d", b"x" * 300]
    for body in bodies:
        first = framing.encode_packet(body)
        framing._frame_memo.clear()
        assert framing.encode_packet(body) == first
        assert framing.encode_packet(body) == first  # from the memo this time
        assert framing.encode_packet(body, run_length=False) == b"$%s#%02x" % (
            framing._escape_framing(body),
            framing.checksum(framing._escape_framing(body)),
        )


def test_take_packet_only_takes_one_clean_packet() -> None:
    body = b"Z0,555555556410,1"
    wire = b"$%s#%02x" % (body, sum(body) & 0xFF)
    assert PacketReader().take_packet(wire) == body
    for other in (wire + b"+", b"+" + wire, wire[:-1], b"$a#00", b"$a$" + wire[1:], b"\x03", b""):
        assert PacketReader().take_packet(other) is None, other
    reader = PacketReader()
    assert reader.feed(b"$ab") == []
    assert reader.take_packet(wire) is None  # a packet is half read: the bytes belong to it

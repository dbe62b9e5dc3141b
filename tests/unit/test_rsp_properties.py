"""Property tests for the protocol layer (skipped when hypothesis is not installed)."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ptstub.rsp.commands import parse_command  # noqa: E402
from ptstub.rsp.errors import ProtocolError  # noqa: E402
from ptstub.rsp.framing import (  # noqa: E402
    ACK,
    INTERRUPT,
    NACK,
    BadPacket,
    Packet,
    PacketReader,
    encode_packet,
    escape_binary,
    expand_runs,
    run_length_encode,
    unescape_binary,
)
from ptstub.rsp.threadid import ThreadId, parse_thread_id  # noqa: E402

FAST = settings(max_examples=60, deadline=None)
wire_bytes = st.binary(max_size=300) | st.lists(st.sampled_from(list(b"$#+-\x03}*%0a")), max_size=300).map(bytes)


@FAST
@given(st.lists(wire_bytes, max_size=6))
def test_reader_never_raises_and_stays_bounded(chunks: list[bytes]) -> None:
    reader = PacketReader(max_packet=128)
    for chunk in chunks:
        for frame in reader.feed(chunk):
            assert frame in (ACK, NACK, INTERRUPT) or isinstance(frame, (Packet, BadPacket))
        assert reader.buffered <= 128 + 3


@FAST
@given(st.binary(max_size=2000), st.data())
def test_binary_payload_survives_the_wire_in_any_split(data: bytes, draw: st.DataObject) -> None:
    wire = encode_packet(escape_binary(data))
    cut = draw.draw(st.integers(min_value=0, max_value=len(wire)))
    reader = PacketReader()
    frames = reader.feed(wire[:cut]) + reader.feed(wire[cut:])
    assert len(frames) == 1 and isinstance(frames[0], Packet)
    assert unescape_binary(expand_runs(frames[0].body)) == data


@FAST
@given(st.binary(max_size=1500).filter(lambda b: b"*" not in b))
def test_run_length_encoding_round_trips_with_legal_counts(body: bytes) -> None:
    encoded = run_length_encode(body)
    assert expand_runs(encoded) == body
    assert len(encoded) <= len(body)
    pos = 0
    while pos < len(encoded):
        if encoded[pos] == 0x2A:
            assert encoded[pos + 1] not in b"#$+-" and 32 <= encoded[pos + 1] <= 125
            pos += 2
        else:
            pos += 1


@FAST
@given(st.binary(max_size=200) | st.from_regex(rb"\A[qQvmMXZzHTpPcCsSDk?!gG][ -~]{0,60}\Z"))
def test_parse_command_raises_only_protocol_error(body: bytes) -> None:
    try:
        parse_command(body)
    except ProtocolError:
        pass


ids = st.integers(min_value=-1, max_value=0xFFFFFFFF)


@FAST
@given(st.one_of(st.none(), ids), ids)
def test_thread_id_round_trip(pid: int | None, tid: int) -> None:
    if pid == -1:
        tid = -1  # `p-1.<tid>` with a specific tid is not a valid id
    thread = ThreadId(pid, tid)
    assert parse_thread_id(thread.format(True)) == thread

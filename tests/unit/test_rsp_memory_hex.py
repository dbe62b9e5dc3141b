"""`m` replies: hex with zero runs run-length encoded on the raw bytes, framed without re-encoding."""

from __future__ import annotations

import os

import pytest

from ptstub.rsp.framing import Encoded, encode_packet, expand_runs
from ptstub.rsp.replies import memory_hex

CASES = [bytes(65536), os.urandom(4096), b"\x01" + bytes(9) + b"\x02", bytes(100) + b"\x01" + bytes(8) + b"\x02"]
CASES += [bytes(n) for n in range(0, 320)]
CASES += [b"\x7f" + bytes(n) + b"\x10" for n in range(0, 250, 7)]


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_memory_hex_expands_to_the_plain_hex(data: bytes) -> None:
    body = memory_hex(data)
    assert isinstance(body, Encoded)
    assert expand_runs(bytes(body)) == data.hex().encode()
    for marker in range(len(body)):
        if body[marker : marker + 1] == b"*":
            assert body[marker + 1] not in b"#$+-*", body  # never a framing, ack or marker count


def test_encoded_body_is_framed_as_is() -> None:
    body = memory_hex(bytes(64))
    assert encode_packet(body) == b"$%s#%02x" % (body, sum(body) & 0xFF)
    assert len(body) < 16  # 128 '0's in a few bytes


def test_many_zero_runs_of_every_length_round_trip() -> None:
    """Runs around the thresholds (32-byte shortest run, 256-byte tail, 4 KiB blocks), back to back."""
    lengths = [0, 1, 31, 32, 33, 255, 256, 257, 511, 4095, 4096, 4097, 4352, 9000]
    data = b"".join(bytes(n) + b"\x01" + os.urandom(n % 7) for n in lengths) + bytes(8192)
    assert expand_runs(bytes(memory_hex(data))) == data.hex().encode()

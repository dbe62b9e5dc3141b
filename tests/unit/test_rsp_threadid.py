"""Thread ids: every form GDB 13.1 sends (`Hgp0.0`, `vCont;c:p1b4b.-1`, `Hc-1`, `T` ids)."""

from __future__ import annotations

import pytest

from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.threadid import ALL, ANY, ThreadId, parse_thread_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"p1b4b.1b4b", ThreadId(0x1B4B, 0x1B4B)),
        (b"p1b4b.-1", ThreadId(0x1B4B, ALL)),
        (b"p0.0", ThreadId(ANY, ANY)),
        (b"p-1", ThreadId(ALL, ALL)),
        (b"p-1.-1", ThreadId(ALL, ALL)),
        (b"p1db3", ThreadId(0x1DB3, ALL)),  # `p<pid>` alone means every thread of it
        (b"-1", ThreadId.ALL_THREADS),
        (b"0", ThreadId.ANY_THREAD),
        (b"12ae", ThreadId(None, 0x12AE)),
        (b"pD06.FF6", ThreadId(0xD06, 0xFF6)),
    ],
)
def test_parse(text: bytes, expected: ThreadId) -> None:
    assert parse_thread_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [b"", b"p", b"p.1", b"p1.", b"px.1", b"-2", b"p1.-2", b"0x10", b"1_0", b" 1", b"p-1.5", b"1" * 17, b"100000000"],
)
def test_malformed_ids_raise(text: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_thread_id(text)


def test_format_multiprocess_and_plain() -> None:
    assert ThreadId(0xD06, 0xFF6).format(True) == b"pd06.ff6"
    assert ThreadId(0xD06, ALL).format(True) == b"pd06.-1"
    assert ThreadId(ALL, ALL).format(True) == b"p-1.-1"
    assert ThreadId(0xD06, 0xFF6).format(False) == b"ff6"
    assert ThreadId.ALL_THREADS.format(True) == b"-1"
    assert ThreadId.ANY_THREAD.format(False) == b"0"
    assert str(ThreadId(0xD06, 0xFF6)) == "pd06.ff6"


def test_format_parse_round_trip() -> None:
    for thread in (ThreadId(1, 2), ThreadId(0x7FFF, ALL), ThreadId(ALL, ALL), ThreadId(None, 5), ThreadId(0, 0)):
        assert parse_thread_id(thread.format(True)) == thread


def test_matches_wildcards() -> None:
    assert ThreadId(0x10, ALL).matches(0x10, 0x11)
    assert not ThreadId(0x10, ALL).matches(0x20, 0x21)
    assert ThreadId(ALL, ALL).matches(0x20, 0x21)
    assert ThreadId(None, 0x11).matches(0x10, 0x11)
    assert not ThreadId(0x10, 0x12).matches(0x10, 0x11)
    assert ThreadId.ANY_THREAD.is_any and ThreadId.ALL_THREADS.is_all


def test_ids_are_hashable_values() -> None:
    assert len({ThreadId(1, 2), ThreadId(1, 2), parse_thread_id(b"p1.2")}) == 1

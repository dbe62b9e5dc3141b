"""The non-stop stop-reply queue: one `%Stop` notification in flight, `vStopped` walks the rest."""

from __future__ import annotations

from ptstub.rsp import commands as c
from ptstub.rsp.commands import parse_command
from ptstub.rsp.framing import encode_notification
from ptstub.rsp.notifications import StopQueue


def test_vstopped_parses() -> None:
    assert parse_command(b"vStopped") == c.NextStopNotification()
    assert parse_command(b"vStoppedX") == c.UnknownCommand(b"vStoppedX")


def test_first_stop_is_notified_once() -> None:
    q = StopQueue()
    assert q.take_notification() is None
    q.push(b"T05thread:p1.1;")
    assert q.take_notification() == b"Stop:T05thread:p1.1;"
    assert q.take_notification() is None  # in flight until vStopped


def test_stops_while_one_is_in_flight_are_fetched_by_vstopped() -> None:
    q = StopQueue()
    q.push(b"T05a")
    assert q.take_notification() == b"Stop:T05a"
    q.push(b"T00b")
    q.push(b"T00c")
    assert q.take_notification() is None  # no second notification while one is outstanding
    assert q.acknowledge() == b"T00b"
    assert q.acknowledge() == b"T00c"
    assert q.acknowledge() == b"OK"
    assert len(q) == 0
    q.push(b"T05d")  # a new exchange starts with a new notification
    assert q.take_notification() == b"Stop:T05d"


def test_vstopped_with_nothing_queued_is_ok() -> None:
    assert StopQueue().acknowledge() == b"OK"


def test_restart_for_query_stop_reason() -> None:
    q = StopQueue()
    q.push(b"T05old")
    assert q.restart([(1, b"T05x"), (2, b"T00y")]) == b"T05x"
    assert q.take_notification() is None  # `?` answered the first itself
    assert q.acknowledge() == b"T00y"
    assert q.acknowledge() == b"OK"
    assert StopQueue().restart([]) == b"OK"


def test_discard_keeps_the_head_gdb_was_sent() -> None:
    q = StopQueue()
    q.push(b"T05a")
    assert q.take_notification() is not None
    q.push(b"T05b")
    q.discard()
    assert q.acknowledge() == b"OK"  # the vStopped for `a` still gets its answer


def test_discard_of_unsent_replies_drops_them_all() -> None:
    q = StopQueue()
    q.push(b"T05a")
    q.discard()
    assert q.take_notification() is None
    assert len(q) == 0


def test_discard_selected() -> None:
    q = StopQueue()
    q.push(b"T05a")
    q.take_notification()
    q.push(b"W00;process:10")
    q.push(b"T05c")
    q.discard(lambda key, reply: reply.startswith(b"W"))
    assert q.acknowledge() == b"T05c"


def test_notification_framing() -> None:
    assert encode_notification(b"Stop:T05") == b"%Stop:T05#" + b"%02x" % (sum(b"Stop:T05") & 0xFF)


def test_holds_the_threads_gdb_has_not_pulled_yet() -> None:
    q = StopQueue()
    q.push(b"T05a", 11)
    q.take_notification()
    q.push(b"T05b", 12)
    assert q.holds(11) and q.holds(12) and not q.holds(13)
    assert q.acknowledge() == b"T05b"
    assert not q.holds(11) and q.holds(12)
    assert q.acknowledge() == b"OK"
    assert not q.holds(12)

"""The non-stop stop-reply queue: `%Stop` notifications and the `vStopped` exchange.

GDB manual, "Notification Packets" and "Remote Non-Stop": the stub sends `%Stop:<reply>` when a stop
happens and none is outstanding; GDB answers each one with `vStopped`, and every `vStopped` is
answered with the next queued stop reply, or `OK` once the queue is empty, which ends the exchange.
So at most one notification is in flight and the head of the queue is the reply GDB has been sent
and not yet acknowledged, as in gdbserver's notif.cc. No I/O here: the caller sends what it is told.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable

OK = b"OK"
STOP_PREFIX = b"Stop:"


class StopQueue:
    """Stop replies waiting for GDB, oldest first; the head is the one GDB was last sent.

    Each reply may carry a key (the thread it reports), so that the session can tell which threads
    GDB has not yet heard of as stopped.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[Hashable, bytes]] = deque()
        self._notify = False

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, reply: bytes, key: Hashable = None) -> None:
        """Queue a stop reply; it is announced with a notification if none is outstanding."""
        if not self._queue:
            self._notify = True
        self._queue.append((key, reply))

    def holds(self, key: Hashable, reply: bytes | None = None) -> bool:
        """Whether a reply for `key` (this very `reply`, if given) is queued (sent or not) and GDB
        has not acknowledged it yet."""
        return any(k == key and (reply is None or r is reply) for k, r in self._queue)

    def take_notification(self) -> bytes | None:
        """The `Stop:<reply>` notification body to send now, once per exchange; else None."""
        if not self._notify or not self._queue:
            return None
        self._notify = False
        return STOP_PREFIX + self._queue[0][1]

    def acknowledge(self) -> bytes:
        """Answer `vStopped`: drop the reply GDB now has, give the next one or `OK`."""
        if self._queue:
            self._queue.popleft()
        return self._queue[0][1] if self._queue else OK

    def restart(self, replies: Iterable[tuple[Hashable, bytes]]) -> bytes:
        """Answer `?` in non-stop: forget what was queued, queue `replies` ((key, reply) pairs) and give
        the first reply (or `OK`).

        GDB then fetches the rest with `vStopped`, as after a notification (gdbserver's handle_status).
        """
        self._queue = deque(replies)
        self._notify = False
        return self._queue[0][1] if self._queue else OK

    def discard(self, drop: Callable[[Hashable, bytes], bool] | None = None) -> None:
        """Drop queued replies (all, or those `drop(key, reply)` selects), e.g. on detach or kill.

        A head GDB was already sent stays: its `vStopped` is still to come, and dropping it would make
        that `vStopped` acknowledge a reply GDB never saw (gdbserver's discard_queued_stop_replies).
        """
        sent = bool(self._queue) and not self._notify
        kept = deque(
            entry
            for index, entry in enumerate(self._queue)
            if (index == 0 and sent) or (drop is not None and not drop(*entry))
        )
        if kept and not sent:
            self._notify = True
        self._queue = kept
        if not self._queue:
            self._notify = False

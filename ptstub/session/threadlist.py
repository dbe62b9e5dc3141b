"""The `qXfer:threads:read` document, kept from stop to stop and patched where threads changed.

GDB 13 reads the thread list at every all-stop stop (`update_thread_list()` in `normal_stop`), so with
thousands of threads the list is a large part of each stop (bench/bench_idle.py). Most threads do not
change between two stops: an idle thread keeps its tid, name and handle. Each thread's line is kept
with the `ThreadInfo` it was written from (the Inferior returns the same object while nothing about the
thread changed), and a stop's document is the kept lines joined, with only new or changed threads
written again; a stop whose thread list is the previous one's, object for object, gets the same bytes.

Names. GDB asks for the list by itself once after each stop (`normal_stop`); in a breakpoint loop that
is the only request, and it follows a resume of every thread. Any other request, a second one before
every thread runs again (a user's `info threads`, `thread find`, `-thread-info`, or a list after an
inferior call or a step that ran some threads only), re-reads every thread's name first
(`refresh_names()` of the process), so a name changed by a thread that ran but reported nothing, or
by an inferior call, shows as gdbserver shows it (it reads every comm at every request). The first
request after a resume of every thread reads only the names of new threads and of the thread that
stopped (see `Inferior.threads` and docs/design-notes.md, "Thread names").

Invariant: `invalidate()` is called whenever threads may have run or changed (the session's per-stop
caches are dropped): the next request is then the first of a stop.
"""

from __future__ import annotations

from collections.abc import Sequence

from ptstub.rsp import replies
from ptstub.rsp.threadid import ThreadId
from ptstub.target import Target, ThreadInfo, ThreadState

_Kept = tuple[ThreadInfo, bytes | None, bytes]  # the info a line was written from, its handle, the line


class ThreadListDocument:
    """The thread-list document of the processes a session serves, rebuilt only where it changed."""

    def __init__(self) -> None:
        self._document: bytes | None = None  # this stop's, once asked for
        self._listed_at: dict[int, int] = {}  # pid -> its world_resumes at the last request
        self._multiprocess: bool | None = None
        self._lines: dict[tuple[int, int], _Kept] = {}  # (pid, tid) -> what its line was written from
        self._threads: list[tuple[int, ThreadInfo]] = []  # the threads of the last document, in order
        self._last: bytes = b""
        self._prepared = False  # the document was built ahead of GDB's first request of this stop

    def invalidate(self) -> None:
        """Threads may have run or changed: the next request is the first of a stop."""
        self._document = None
        self._prepared = False

    def prepare(self, processes: Sequence[Target], multiprocess: bool) -> None:
        """Build the document GDB's first request of this stop will read, ahead of it (while GDB reads
        the stop reply); that request then takes it as it is, as its own."""
        if self._document is None:
            self.read(processes, multiprocess, 0, exact=False)
            self._prepared = True

    def read(self, processes: Sequence[Target], multiprocess: bool, offset: int, exact: bool) -> bytes:
        """The document for a request at `offset`: a continuation (offset > 0) reads the same bytes; a
        new request that is not the first since every thread of a process last ran, or any new request
        when `exact` (non-stop: threads run while GDB reads), re-reads every name first."""
        if offset > 0 and self._document is not None:
            return self._document
        if self._prepared and self._document is not None and not exact:
            self._prepared = False  # built for this request by prepare()
            return self._document
        for process in processes:
            resumes = process.world_resumes
            if exact or self._listed_at.get(process.pid) == resumes:
                process.refresh_names()
            self._listed_at[process.pid] = resumes
        self._document = self._build(processes, multiprocess)
        return self._document

    def _build(self, processes: Sequence[Target], multiprocess: bool) -> bytes:
        # A thread resumed past its exit (a leader that called pthread_exit stays a zombie until the
        # last thread ends) is left out, as in qfThreadInfo and as gdbserver deletes zombie leaders:
        # GDB then sees that it exited (gdb.threads/gcore-stale-thread.exp).
        threads = [(p.pid, t) for p in processes for t in p.threads() if t.state is not ThreadState.EXITING]
        if multiprocess is self._multiprocess and threads == self._threads:
            return self._last  # the same thread objects: nothing about any thread changed
        if multiprocess is not self._multiprocess:
            self._lines.clear()
            self._multiprocess = multiprocess
        kept, lines = self._lines, [b"<threads>\n"]
        live: dict[tuple[int, int], _Kept] = {}
        for (pid, t), handle in zip(threads, _thread_handles(threads), strict=True):
            key = (pid, t.tid)
            line = kept.get(key)
            if line is None or line[1] != handle or (line[0] is not t and line[0] != t):
                entry = replies.ThreadDescription(ThreadId(pid, t.tid), t.core if t.core >= 0 else None, t.name, handle)
                line = (t, handle, replies.thread_xml_line(entry, multiprocess))
            live[key] = line
            lines.append(line[2])
        lines.append(b"</threads>\n")
        self._lines, self._threads = live, threads
        self._last = b"".join(lines)
        return self._last


def _thread_handles(threads: list[tuple[int, ThreadInfo]]) -> list[bytes | None]:
    """Each thread's `handle` in the thread list: its `pthread_t` (its fs_base on x86-64), its 8 bytes in
    memory (little-endian) order, as gdbserver hex-encodes libthread_db's `thread_t`.

    None for a thread whose fs_base is still 0 (before TLS set-up gdbserver has no handle either, and
    GDB's `Thread.handle()` then says "Thread handle not found"), nor for a thread sharing its fs_base
    with one listed before it in the same process: a raw clone(2) without CLONE_SETTLS, which is no
    pthread of its own (libthread_db maps it to the other thread's tid and gdbserver drops it)."""
    handles: list[bytes | None] = []
    seen: set[tuple[int, int]] = set()
    for pid, t in threads:
        pointer = t.thread_pointer
        if pointer and (pid, pointer) not in seen:
            seen.add((pid, pointer))
            handles.append(pointer.to_bytes(8, "little"))
        else:
            handles.append(None)
    return handles

"""Packet transcripts against the fake target: send a packet, expect the replies (lldb-server style).

`Transcript.exchange(packet, *replies)` checks the replies of one packet; a resume that leaves the
session running also takes the stop reply `wait_for_stop` gives. Expected replies are exact bytes, or
a compiled pattern for replies that carry all the registers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from ptstub.arch import xsave
from ptstub.session import Session
from tests.session.fake import FakeProcess, FakeProcessGroup

Expected = bytes | re.Pattern[bytes]


@pytest.fixture(autouse=True)
def no_cpuid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The register layout from the xstate image alone, whatever CPU runs the tests."""
    monkeypatch.setattr(xsave, "cpuid", lambda leaf, subleaf=0: None)
    yield


class Transcript:
    """One session over fake processes, and the packets exchanged with it."""

    def __init__(self, session: Session, wake_fd: int) -> None:
        self.session = session
        self.wake_fd = wake_fd

    def replies(self, packet: bytes) -> list[bytes]:
        answer = self.session.handle_packet(packet)
        if not answer and self.session.running:
            stop = self.session.wait_for_stop(self.wake_fd)
            answer = [stop] if stop is not None else []
        return answer

    def exchange(self, packet: bytes, *expected: Expected) -> list[bytes]:
        answer = self.replies(packet)
        assert len(answer) == len(expected), (packet, answer)
        for got, want in zip(answer, expected, strict=True):
            if isinstance(want, re.Pattern):
                assert want.fullmatch(got), (packet, got, want.pattern)
            else:
                assert got == want, (packet, got, want)
        return answer

    def notification(self, expected: bytes | None) -> None:
        """Non-stop: the `Stop:` notification the session sends next (None: nothing to send)."""
        assert self.session.next_notification(self.wake_fd) == expected


@pytest.fixture
def wake_fd() -> Iterator[int]:
    """A pipe GDB never writes to: the session's 'did GDB send something' poll says no."""
    read_end, write_end = os.pipe()
    yield read_end
    os.close(read_end)
    os.close(write_end)


def make_session(
    target: FakeProcess | None,
    wake_fd: int,
    *,
    extended: bool = False,
    attached: bool = False,
    launch: dict[str, FakeProcess] | None = None,
    attach: dict[int, FakeProcess] | None = None,
) -> Transcript:
    launchable = launch or {}
    attachable = attach or {}

    def launcher(argv: list[str], settings: object) -> FakeProcess:
        from ptstub.errors import LaunchError

        if argv[0] not in launchable:
            raise LaunchError(f"{argv[0]}: No such file or directory")
        return launchable[argv[0]]

    def attacher(pid: int) -> FakeProcess:
        from ptstub.errors import AttachError

        if pid not in attachable:
            raise AttachError(f"Cannot attach to process {pid}: No such process (3)")
        return attachable[pid]

    session = Session(
        target,
        group=FakeProcessGroup(),
        launcher=launcher,
        attacher=attacher,
        extended=extended,
        attached=attached,
        announce=lambda line: None,
    )
    return Transcript(session, wake_fd)


GDB_FEATURES = b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386;vContSupported+;no-resumed+"


@pytest.fixture
def process() -> FakeProcess:
    """One process, pid 100, with a second thread 101."""
    return FakeProcess(100, [101])


def connect_all_stop(process: FakeProcess, wake_fd: int) -> Transcript:
    """A session over `process` after GDB's all-stop connection start: qSupported, no-ack mode."""
    transcript = make_session(process, wake_fd)
    transcript.exchange(GDB_FEATURES, re.compile(rb"PacketSize=20000;QPassSignals\+;.*"))
    transcript.exchange(b"QStartNoAckMode", b"OK")
    return transcript

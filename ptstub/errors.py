"""ptstub's error vocabulary.

Every failure a user can cause (bad program, bad pid, unmapped address, vanished thread) surfaces as a
`PtstubError` subclass with a one-line message; nothing deeper should escape the public API or the CLI.
"""

from __future__ import annotations

import errno as errno_mod
import os


class PtstubError(Exception):
    """Base of every error ptstub reports to its users; `str()` is a one-line explanation."""


class LaunchError(PtstubError):
    """The program could not be started (not found, not executable, not an x86-64 ELF, exec failed)."""


class AttachError(PtstubError):
    """A running process could not be attached to (no such pid, not permitted, already traced)."""


class TargetError(PtstubError):
    """An operation on the traced process failed with an errno; the RSP layer turns it into `E NN`."""

    def __init__(self, message: str, errno: int = errno_mod.EIO) -> None:
        super().__init__(message)
        self.errno = errno


class MemoryAccessError(TargetError):
    """A memory read or write touched an address that is not mapped (or not accessible)."""


class NoSuchThreadError(TargetError):
    """The thread id is not (or no longer) part of the traced process."""

    def __init__(self, tid: int) -> None:
        super().__init__(f"thread {tid} does not exist (it may have exited)", errno_mod.ESRCH)
        self.tid = tid


class ProcessGoneError(TargetError):
    """The traced process has exited or was killed; nothing more can be done with it."""

    def __init__(self, message: str = "the traced process has exited") -> None:
        super().__init__(message, errno_mod.ESRCH)


class PtraceError(TargetError):
    """A ptrace request failed: carries the request name, the thread and the errno."""

    def __init__(self, op: str, tid: int, errno: int) -> None:
        super().__init__(f"ptrace {op} on thread {tid} failed: {os.strerror(errno)}", errno)
        self.op = op
        self.tid = tid


class StopTimeout(PtstubError):
    """Nothing was reported within the time the caller allowed (`Inferior.cont(timeout=...)`)."""

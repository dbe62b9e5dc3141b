"""Several traced processes of one session (a fork child GDB keeps, a second `run` or `attach`).

Each process has its own engine (`Inferior`); the engines of one session form one group, so a
wait status one engine's `waitpid(-1)` collects for another's thread is handled by its owner. The
first two functions give GDB's all-stop contract across processes: nothing runs while an event is
pending anywhere it may be reported, and before a stop is reported every process is stopped. The
third is non-stop's wait: one thread's event from any process, every other thread left as it is.
Design: docs/design-notes.md, "Several processes"; GDB manual, "Forks" and "Inferiors".
"""

from __future__ import annotations

import errno
import random
from collections.abc import Mapping, Sequence

from ptstub.errors import TargetError
from ptstub.events import StopEvent
from ptstub.linux.inferior import NOTHING_RUNNING, PEER
from ptstub.target import ResumeAction

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Any

_rng = random.Random()


def resume_processes(plans: Sequence[tuple[Any, Mapping[int, ResumeAction]]]) -> list[Any]:
    """Resume each process with its actions; the processes to wait for.

    A process whose resume finds an event already pending runs nothing and is reported first (the
    engine's rule for one process, extended to all): the ones started before it are stopped again.
    """
    for process, _ in plans:
        process.clear_peer_event()
    started: list[Any] = []
    for process, actions in plans:
        process.resume(actions)
        if process.ready:
            for other in started:
                other.hold()
            return [process]
        started.append(process)
    return started


def wait_processes(running: list[Any], served: Sequence[Any], wake_fd: int | None) -> tuple[Any, StopEvent] | None:
    """Block until one of `running` reports, with every one of them stopped; None when `wake_fd` is
    readable first (the processes run on). A held process of `served` that ended (SIGKILL from
    outside) reports too. Raises TargetError(ECHILD) when none can report."""
    while running:
        waiter = running[0]
        outcome = waiter.wait_in_group(wake_fd)
        if outcome is None:
            return None
        if outcome == NOTHING_RUNNING:
            running.remove(waiter)  # its resumed threads are gone; the others may still report
            continue
        if isinstance(outcome, StopEvent):
            for other in running[1:]:
                other.hold()  # what they caught meanwhile stays pending for their next resume
            _clear(running)
            return waiter, outcome
        assert outcome == PEER  # some process of the group has an event: stop them all, pick one fairly
        candidates = [process for process in running if process.hold()]
        candidates += [process for process in served if process not in running and process.ended]
        _clear(running)
        if candidates:
            # An ended process first: its exit came before what it caused in another (a vfork
            # parent's VFORK_DONE, a waitpid returning), as GDB sees it from gdbserver.
            ended = [process for process in candidates if process.ended]
            chosen = _rng.choice(ended or candidates)
            return chosen, chosen.take_event()
        # The event went away (its thread died while stopping): run them all again.
        for process in running:
            process.resume_again()
    raise TargetError("no thread is running", errno.ECHILD)


def _clear(processes: list[Any]) -> None:
    for process in processes:
        process.clear_peer_event()


def next_event_non_stop(processes: Sequence[Any], wake_fd: int, first: int = 0) -> tuple[Any, StopEvent] | None:
    """Non-stop over several processes (live ones and ones ended but not yet reported): the next event
    of any thread of `processes`, the others left running or stopped as they are.

    Pending events are looked at from `processes[first]` on, so that a caller rotating `first` serves
    the processes fairly. None when `wake_fd` is readable first or when no thread runs anywhere and
    nothing is pending."""
    count = len(processes)
    while True:
        for process in processes:
            process.clear_peer_event()
        for index in range(count):
            process = processes[(first + index) % count]
            if process.ended:  # its exit status came to another engine's waitpid
                return process, process.take_event()
            outcome = process.next_event_in_group(None)
            if isinstance(outcome, StopEvent):
                return process, outcome
        # Wait in the first process that can report (one with a running thread, or an exit status
        # due): the others answer NOTHING_RUNNING at once. None of them: nothing can happen.
        for waiter in processes:
            if waiter.ended:  # ended while the ones before it were looked at
                return waiter, waiter.take_event()
            outcome = waiter.next_event_in_group(wake_fd)
            if outcome != NOTHING_RUNNING:
                break
        else:
            return None
        if outcome is None:
            return None
        if isinstance(outcome, StopEvent):
            return waiter, outcome
        # PEER: a status collected here was another process's event. Look at every process again.

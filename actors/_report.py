"""What a supervisor reports: child status, per-child reports, dead letters."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class ChildStatus(enum.Enum):
    """Where a child is in its life."""

    #: Its actor function is about to run (or has not reported `started`).
    STARTING = "starting"
    #: Running, and started (see `ChildSpec.waits_for_started`).
    RUNNING = "running"
    #: Exited, waiting out its backoff before the next start.
    RESTARTING = "restarting"
    #: Finished for good without a failure: returned and not to be
    #: restarted, stopped on request, or cancelled with its supervisor.
    STOPPED = "stopped"
    #: Finished for good after a crash: a TEMPORARY child that raised, or
    #: the child whose restarts exceeded the supervisor's intensity limit.
    FAILED = "failed"


@attrs.frozen
class DeadLetter:
    """A message that was being handled when its actor crashed; never redelivered.

    ``message`` is the message, or the list of messages when the actor had
    taken a batch (`Mailbox.drain_nowait`). ``time`` is `trio.current_time`.
    ``traceback_summary`` is the formatted traceback; once the actor is
    restarted, ``exception`` (with its causes and contexts) keeps no
    ``__traceback__``, so that a long run's dead letters pin no frames and no
    locals of the code that crashed.
    """

    child: str
    message: Any
    exception: BaseException
    traceback_summary: str
    time: float


@attrs.frozen
class ChildReport:
    """A snapshot of one child, as `Supervisor.report` returns it."""

    name: str
    status: ChildStatus
    restarts: int
    last_error: str | None
    depth: int
    high_water: int
    dropped: int
    received_total: int
    dead_letters: tuple[DeadLetter, ...]

"""What a supervisor keeps for each child across its restarts."""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs
import trio

from ._mailbox import Mailbox
from ._report import ChildReport, ChildStatus, DeadLetter
from ._spec import ChildSpec


@attrs.define(eq=False)
class _Kept:
    """Children's specs, mailboxes and states kept across runs of a supervisor
    (a nested supervisor restarted by its parent gets its children back)."""

    specs: dict[str, ChildSpec] = attrs.Factory(dict)
    slots: dict[str, tuple[Mailbox[Any], Any]] = attrs.Factory(dict)


@attrs.define(eq=False)
class _Child:
    """Everything the supervisor holds for one child, across its restarts."""

    spec: ChildSpec
    mailbox: Mailbox[Any]
    state: Any
    window: deque[tuple[float, str]]
    dead_letters: deque[DeadLetter]
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    #: The current run's scope (None between runs) and, once `Supervisor.kill` was
    #: called on it, the reason it gave.
    run_scope: trio.CancelScope | None = None
    kill_reason: str | None = None
    status: ChildStatus = ChildStatus.STARTING
    restarts: int = 0
    last_error: str | None = None
    stopping: bool = False
    ever_started: bool = False
    started_event: trio.Event = attrs.Factory(trio.Event)
    stop_requested: trio.Event = attrs.Factory(trio.Event)
    done: trio.Event = attrs.Factory(trio.Event)

    def mark_started(self) -> None:
        if self.status is ChildStatus.STARTING:
            self.status = ChildStatus.RUNNING
        self.ever_started = True
        self.started_event.set()

    def report(self) -> ChildReport:
        mailbox = self.mailbox
        return ChildReport(
            name=self.spec.name,
            status=self.status,
            restarts=self.restarts,
            last_error=self.last_error,
            depth=len(mailbox),
            high_water=mailbox.high_water,
            dropped=mailbox.dropped,
            received_total=mailbox.received_total,
            dead_letters=tuple(self.dead_letters),
        )

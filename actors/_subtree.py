"""Nested supervisors: a supervisor that runs as a child of another one."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import trio

from ._backoff import DEFAULT_BACKOFF, Backoff
from ._child import _Kept
from ._context import ActorContext
from ._errors import DuplicateChild
from ._groups import raise_single
from ._mailbox import Mailbox
from ._spec import ChildSpec, FailureHook, Restart
from ._supervisor import Supervisor


class Subtree:
    """The state of a `supervisor_spec` child; it outlives restarts of the subtree.

    ``supervisor`` is the inner `Supervisor` of the current run (None before
    the first start). The children's specs, mailboxes and states are kept
    here, so when the parent restarts the subtree, every child (including
    those added at run time) comes back with its mailbox and state.
    """

    def __init__(self, children: Iterable[ChildSpec]) -> None:
        self.supervisor: Supervisor | None = None
        self._kept = _Kept(specs={spec.name: spec for spec in children})

    def __repr__(self) -> str:
        return f"<Subtree {list(self._kept.specs)} supervisor={self.supervisor!r}>"


def supervisor_spec(
    name: str,
    children: Iterable[ChildSpec],
    *,
    max_restarts: int = 3,
    period: float = 5.0,
    rng: random.Random | None = None,
    dead_letter_limit: int = 1000,
    restart: Restart = Restart.PERMANENT,
    backoff: Backoff = DEFAULT_BACKOFF,
    shutdown_timeout: float = 5.0,
    on_failed: FailureHook | None = None,
) -> ChildSpec:
    """A `ChildSpec` that runs a nested `Supervisor` over ``children``.

    The inner supervisor applies its own ``max_restarts`` / ``period`` to
    its children; when it gives up, its `RestartIntensityExceeded` is this
    child's crash, and the parent restarts the whole subtree (per
    ``restart`` and ``backoff``) or gives up in turn. The child counts as
    started once all inner children have started. Stopping it (closing its
    mailbox) stops the inner supervisor gracefully within
    ``shutdown_timeout``. Nothing should be sent to its mailbox: messages
    go to the inner children, through ``child_state(name).supervisor``.

    With ``restart=Restart.TEMPORARY`` the subtree is quarantined when it gives
    up: the parent does not restart it and carries on, and ``on_failed(report,
    error)`` (see `ChildSpec`) is told, ``error`` being the inner
    `RestartIntensityExceeded`.
    """
    specs = tuple(children)
    names = [spec.name for spec in specs]
    for duplicate in {n for n in names if names.count(n) > 1}:
        raise DuplicateChild(name, duplicate)

    async def run_subtree(mailbox: Mailbox[Any], state: Subtree, ctx: ActorContext) -> None:
        inner = Supervisor(
            name,
            max_restarts=max_restarts,
            period=period,
            rng=rng,
            dead_letter_limit=dead_letter_limit,
        )
        inner._kept = state._kept
        state.supervisor = inner
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(inner.run)
                ctx.started()
                async for _ in mailbox:  # closing it is the stop request
                    pass
                await inner.stop(shutdown_timeout)
        except BaseExceptionGroup as group:
            raise_single(group)

    return ChildSpec(
        name=name,
        actor=run_subtree,
        state_factory=lambda: Subtree(specs),
        mailbox_bound=1,
        restart=restart,
        backoff=backoff,
        shutdown_timeout=shutdown_timeout,
        waits_for_started=True,
        on_failed=on_failed,
    )

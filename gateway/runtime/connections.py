"""The gateway's WebSocket connections as supervised children of ``connections``.

Each `Connection` is the state of one child: its streams, refusals, counters and pace
survive a restart. Losing the exchange is not a crash: `Connection.run` reconnects by
itself and raises `ConnectionFailed` only once its attempts run out, which ends the
child for good (``on_failed`` decides what follows). A bug in the connection's code
(`InternalError`) is a crash: the supervisor runs it again, alone, while the other
connections and every symbol stream on; one that keeps crashing past the restart
intensity ends the gateway with `RestartIntensityExceeded`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from actors import ActorContext, Backoff, ChildSpec, Mailbox, Restart, Supervisor
from gateway.errors import ConnectionFailed
from gateway.runtime.connection import Connection

__all__ = ["connection_spec", "connections_supervisor"]


class _Started:
    """`Connection.run`'s task status, told to its supervisor as the child's start."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: ActorContext) -> None:
        self._ctx = ctx

    def started(self, value: object = None) -> None:
        self._ctx.started()


def connection_spec(
    name: str, conn: Connection, on_failed: Callable[[ConnectionFailed], None]
) -> ChildSpec:
    """A transient child running ``conn`` (the same object on every restart).

    ``on_failed(error)`` is called when a connection that had been live gives up on the
    exchange; one that gives up before its first session fails its start instead
    (`Supervisor.start_child` raises, and ``conn.failure`` says why).
    """

    async def actor(_mailbox: Mailbox[Any], conn: Connection, ctx: ActorContext) -> None:
        if conn.ever_live:  # a restart after a bug: it was started long ago
            ctx.started()
        try:
            await conn.run(_Started(ctx))
        except ConnectionFailed as exc:
            conn.failure = exc
            if conn.ever_live:
                on_failed(exc)

    return ChildSpec(
        name=name, actor=actor, state_factory=lambda: conn, mailbox_bound=1,
        restart=Restart.TRANSIENT, waits_for_started=True,
        backoff=Backoff(initial=0.5, factor=2.0, cap=10.0),
    )  # fmt: skip


def connections_supervisor(
    max_restarts: int, period: float, rng: random.Random | None = None
) -> Supervisor:
    """The supervisor of the gateway's connections (its own restart intensity)."""
    return Supervisor("connections", max_restarts=max_restarts, period=period, rng=rng)

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

import contextlib
import itertools
import random
from collections.abc import Callable
from typing import Any

from actors import ActorContext, Backoff, ChildSpec, Mailbox, NotRunning, Restart, Supervisor
from gateway.errors import ConnectionFailed
from gateway.runtime.connection import Connection

__all__ = ["Connections"]


class _Started:
    """`Connection.run`'s task status, told to its supervisor as the child's start."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: ActorContext) -> None:
        self._ctx = ctx

    def started(self, value: object = None) -> None:
        self._ctx.started()


def _connection_spec(
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


class Connections:
    """The gateway's connections, in opening order (``all``), and the supervisor that runs
    them (``supervisor``: run it in the gateway's nursery before the first `start`)."""

    def __init__(
        self, max_restarts: int, period: float, rng: random.Random | None,
        on_failed: Callable[[ConnectionFailed], None],
    ) -> None:  # fmt: skip
        self.supervisor = Supervisor("connections", max_restarts=max_restarts, period=period,
                                     rng=rng)  # fmt: skip
        self.all: list[Connection] = []
        self._on_failed = on_failed
        self._names: dict[Connection, str] = {}  # connection -> its child's name
        self._ids = itertools.count(1)

    async def start(self, conn: Connection) -> None:
        """Run ``conn`` as a child of the supervisor; returns once it is live (or was
        stopped first). Raises `ConnectionFailed` if it gave up before that."""
        name = f"{conn.conn_id}#{next(self._ids)}"
        self._names[conn] = name
        try:
            await self.supervisor.start_child(_connection_spec(name, conn, self._on_failed))
            return
        except NotRunning as exc:
            ended: Exception = exc
        await self.forget(conn)
        failure, conn.failure = conn.failure, None
        if failure is not None:
            raise failure from failure.__cause__
        gave_up = self.supervisor.failure  # the supervisor gave up: its run raises it too
        raise ended if gave_up is None else gave_up  # (one error, see `leaves`)

    async def stop(self, conn: Connection) -> None:
        """Close ``conn`` gracefully, drop it from ``all`` and forget its child."""
        await conn.stop()
        self.all.remove(conn)
        await self.forget(conn)

    async def forget(self, conn: Connection) -> None:
        """Remove ``conn``'s child (finished by now) from the supervisor."""
        name = self._names.pop(conn, None)
        if name is not None:
            with contextlib.suppress(KeyError):
                await self.supervisor.stop_child(name)

    def restarts(self, conn: Connection) -> int:
        """How often ``conn`` was run again after a bug."""
        report = self.supervisor.report().get(self._names.get(conn, ""))
        return report.restarts if report is not None else 0

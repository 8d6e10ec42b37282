"""A worker's part in the cluster's positions (`gateway.cluster.positions`): it arms the
positions of its symbols in its gateway, fires them through the atomic script, and
closes what fired, its own or what a dead worker left triggered."""

from __future__ import annotations

import logging
import os
import random
import signal
import time
from collections.abc import Sequence
from typing import Any

import trio

from gateway.cluster.positions import CloseAction, RedisPositions, announcements_key
from gateway.cluster.redis_client import REDIS_ERRORS, redis_client
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import StopTriggered
from gateway.errors import GatewayError, PositionError

__all__ = ["FAULTS", "PositionKeeper"]

log = logging.getLogger(__name__)

#: Faults a worker can be started with (the parent passes them to a first life only).
FAULTS = ("die-before-close",)
_SWEEP = 5.0  # s between looks for closes whose closer died


async def _record_only(position: dict[str, str]) -> None:
    """The default close action: nothing to send (the position is marked closed)."""


class PositionKeeper:
    """Arms, fires and closes the positions of ``symbols`` for worker ``owner``."""

    def __init__(
        self, redis_url: str, prefix: str, owner: str, symbols: Sequence[str], *,
        close_action: CloseAction | None = None, faults: Sequence[str] = (),
    ) -> None:  # fmt: skip
        if unknown := [f for f in faults if f not in FAULTS]:
            raise ValueError(f"unknown faults {unknown}; known: {FAULTS}")
        self.redis_url = redis_url
        self.prefix = prefix
        self.owner = owner
        self.symbols = frozenset(s.upper() for s in symbols)
        self.close_action = close_action or _record_only
        self.faults = tuple(faults)
        self.positions: RedisPositions | None = None
        self.armed = 0
        self.fired = 0
        self.already_fired = 0  # stops that another worker had fired first
        self.closed = 0

    async def close_hook(self, event: StopTriggered) -> None:
        """The gateway's close hook: fire ``event`` in Redis; the winner closes it."""
        positions = self.positions
        if positions is None:
            raise GatewayError("positions: Redis is not reachable; the stop stays in-process")
        won = await positions.trigger(event, self.owner, time.time_ns())
        if won == 0:  # fired already: by another worker, or by this call before a lost
            self.already_fired += 1  # reply; the close claim below is atomic either way
        else:
            self.fired += 1
        if won != -1:
            if won == 1 and "die-before-close" in self.faults:  # the fault the tests inject
                os.kill(os.getpid(), signal.SIGKILL)
            await self._close(positions, event.position_id)

    async def _close(self, positions: RedisPositions, position_id: str) -> None:
        if await positions.claim_close(position_id, f"{self.owner}:{os.getpid()}"):
            await self.close_action(await positions.get(position_id))
            await positions.mark_closed(position_id, {"by": self.owner})
            self.closed += 1

    async def run(
        self, gw: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Arm what is open, close what was left fired, then follow new positions; started
        once the first load is done (or failed: the worker does not wait for Redis)."""
        policy = ReconnectPolicy(initial=0.1, cap=2.0, max_attempts=None)
        rng = random.Random()
        started = False
        attempt = 0
        while True:
            try:
                async with redis_client(self.redis_url) as client:
                    positions = self.positions = RedisPositions(client, self.prefix)
                    key = announcements_key(self.prefix)
                    top = await client.xrevrange(key, count=1)
                    last = top[0].identifier if top else "0"
                    for symbol in sorted(self.symbols):
                        for p in await positions.of_symbol(symbol):
                            await self._take(gw, positions, p)
                    if not started:
                        started = True
                        task_status.started()
                    attempt = 0
                    sweep_at = trio.current_time() + _SWEEP
                    while True:
                        if trio.current_time() >= sweep_at:  # closes left by dead closers
                            sweep_at = trio.current_time() + _SWEEP
                            await self._sweep(gw, positions)
                        reply = await client.xread({key: last}, count=100, block=1000)
                        for entries in (reply or {}).values():
                            for entry in entries:
                                last = entry.identifier
                                if entry.field_values.get("symbol") in self.symbols:
                                    p = await positions.get(entry.field_values["id"])
                                    await self._take(gw, positions, p)
            except* REDIS_ERRORS as group:
                self.positions = None
                log.warning("positions: Redis at %s: %r; retrying", self.redis_url,
                            group.exceptions[0])  # fmt: skip
            if not started:
                started = True
                task_status.started()
            await trio.sleep(policy.delay(attempt, rng))
            attempt += 1

    async def _sweep(self, gw: Any, positions: RedisPositions) -> None:
        """Close what fired and is not closed (a closer's lease may have run out)."""
        for symbol in sorted(self.symbols):
            for p in await positions.of_symbol(symbol):
                if p.get("state") in ("triggered", "closing"):
                    await self._take(gw, positions, p)

    async def _take(self, gw: Any, positions: RedisPositions, p: dict[str, str]) -> None:
        state = p.get("state")
        if state == "armed":
            try:
                gw.open_position(p["symbol"], p["side"], float(p["entry_price"]),
                                 quantity=float(p["quantity"]),
                                 stop_price=float(p["stop_price"]), id=p["id"])  # fmt: skip
            except PositionError as exc:
                if "already" not in str(exc):  # armed already: a reload
                    log.warning("positions: %s not armed: %s", p.get("id"), exc)
                return
            self.armed += 1
        elif state in ("triggered", "closing"):  # fired by a worker that died before closing
            await self._close(positions, p["id"])

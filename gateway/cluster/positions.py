"""Positions and their stop-losses when clustered: kept in Redis, fired exactly once.

A position is the hash ``<prefix>:position:<id>`` (symbol, side, entry price, quantity,
stop price, ``state``), listed in the set ``<prefix>:positions:<SYMBOL>``; every open is
also announced on the stream ``<prefix>:cluster:positions``, which the workers read to
arm the positions of their symbols as they arrive. A worker arms what it owns when it
starts, and its gateway checks the stops on every trade as always.

The one transition that matters, ``armed -> triggered``, is a Lua script that also adds
the `StopTriggered` entry to the symbol's ``stop`` stream: atomic, so when two workers
fire the same stop (both own the symbol for a moment during a handover, or a restarted
worker sees the crossing again) exactly one wins and one stop event exists. The winner
then claims the close (``triggered -> closing`` with a lease, atomic too), runs it and
marks the position ``closed``; a worker that finds a position ``triggered`` (its owner
died between trigger and close) claims and runs the close for it, without firing it
again. A close whose closer died while closing is claimed again once its lease (30 s)
has run out, so the close action may run twice: it must be idempotent, as an exchange
order with a client order id is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from gateway.cluster.wire import encode, stream_key
from gateway.core.events import StopTriggered
from gateway.errors import PositionError

__all__ = ["CloseAction", "RedisPositions", "announcements_key", "position_key"]

#: What runs after a stop fired, before the position is marked closed (in the worker:
#: the default only records the close; a real deployment sends its order here).
CloseAction = Callable[[dict[str, str]], Awaitable[None]]

# KEYS: the position hash, the symbol's stop stream. ARGV: owner, trigger price, trade
# time, the StopTriggered entry's type, data, E, rns, pns. Returns 1 if this call fired
# it (and added the stop entry), 0 if it had fired already, -1 if there is no such
# position (not one of the cluster's: the entry is added, as for any event).
_TRIGGER = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == false then
  redis.call('XADD', KEYS[2], '*', 'v', '1', 'type', ARGV[4], 'data', ARGV[5], 'E', ARGV[6],
    'rns', ARGV[7], 'pns', ARGV[8])
  return -1
end
if state ~= 'armed' then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'triggered', 'owner', ARGV[1], 'trigger_price', ARGV[2],
  'trade_time', ARGV[3])
redis.call('XADD', KEYS[2], '*', 'v', '1', 'type', ARGV[4], 'data', ARGV[5], 'E', ARGV[6],
  'rns', ARGV[7], 'pns', ARGV[8])
return 1
"""


# KEYS: the position hash. ARGV: the closer (worker name and pid), now and the lease (ms).
# ``triggered -> closing`` (this closer runs the close, for at most the lease) returns 1;
# ``closing`` whose lease ran out (its closer died while closing) is claimed again, 1;
# anything else 0 (two processes of one worker name during a handover never both close).
_CLAIM_CLOSE = """
local state = redis.call('HGET', KEYS[1], 'state')
local now = tonumber(ARGV[2])
if state == 'triggered' or (state == 'closing' and
    tonumber(redis.call('HGET', KEYS[1], 'closing_until') or '0') < now) then
  redis.call('HSET', KEYS[1], 'state', 'closing', 'closer', ARGV[1],
    'closing_until', tostring(now + tonumber(ARGV[3])))
  return 1
end
return 0
"""

#: How long a claimed close may run before another worker may claim it again (ms): above
#: the gateway's close-hook timeout (10 s by default).
CLOSE_LEASE_MS = 30_000


def position_key(prefix: str, position_id: str) -> str:
    """The hash of position ``position_id``."""
    return f"{prefix}:position:{position_id}"


def announcements_key(prefix: str) -> str:
    """The stream on which every newly opened position is announced to the workers."""
    return f"{prefix}:cluster:positions"


class RedisPositions:
    """The cluster's positions in the Redis of ``client`` (a `coredis.Redis`, text)."""

    def __init__(self, client: Any, prefix: str = "gateway") -> None:
        self.client = client
        self.prefix = prefix
        self._trigger = client.register_script(_TRIGGER)
        self._claim = client.register_script(_CLAIM_CLOSE)

    async def claim_close(self, position_id: str, closer: str,
                          lease_ms: int = CLOSE_LEASE_MS) -> bool:  # fmt: skip
        """True if ``closer`` is to run this fired position's close (one does at a time;
        a claim not marked closed within ``lease_ms`` may be claimed again)."""
        now = str(int(time.time() * 1000))
        return bool(await self._claim([position_key(self.prefix, position_id)],
                                      [closer, now, str(lease_ms)]))  # fmt: skip

    async def open(self, symbol: str, side: str, entry_price: float, *, stop_price: float,
                   quantity: float = 0.0, position_id: str | None = None) -> str:  # fmt: skip
        """Open a position with an armed stop (from any process); returns its id. The
        worker that owns ``symbol`` arms it when it reads the announcement."""
        side = side.upper()
        if side not in ("LONG", "SHORT"):
            raise PositionError(f"side must be LONG or SHORT, got {side!r}")
        if not stop_price > 0 or not entry_price > 0:
            raise PositionError("entry_price and stop_price must be > 0")
        pid = position_id or uuid.uuid4().hex[:16]
        key = position_key(self.prefix, pid)
        fields = {"id": pid, "symbol": symbol.upper(), "side": side,
                  "entry_price": repr(entry_price), "stop_price": repr(stop_price),
                  "quantity": repr(quantity), "state": "armed"}  # fmt: skip
        if not await self.client.hsetnx(key, "id", pid):
            raise PositionError(f"position id {pid!r} is already used")
        await self.client.hset(key, fields)
        await self.client.sadd(f"{self.prefix}:positions:{symbol.upper()}", [pid])
        announcement = {"id": pid, "symbol": symbol.upper()}
        await self.client.xadd(announcements_key(self.prefix), announcement)
        return pid

    async def get(self, position_id: str) -> dict[str, str]:
        """The position's fields (empty if there is none)."""
        return dict(await self.client.hgetall(position_key(self.prefix, position_id)))

    async def of_symbol(self, symbol: str) -> list[dict[str, str]]:
        """Every position of ``symbol``, whatever its state."""
        ids = await self.client.smembers(f"{self.prefix}:positions:{symbol.upper()}")
        out = [await self.get(pid) for pid in sorted(ids)]
        return [p for p in out if p]

    async def trigger(self, event: StopTriggered, owner: str, pns: int) -> int:
        """``armed -> triggered`` with the stop entry, atomically (see `_TRIGGER`)."""
        f = encode(event)
        return int(await self._trigger(
            [position_key(self.prefix, event.position_id),
             stream_key(self.prefix, event.symbol, "stop")],
            [owner, repr(event.trigger_price), str(event.trade_time or 0), f["type"],
             f["data"], f["E"], f["rns"], str(pns)],
        ))  # fmt: skip

    async def mark_closed(self, position_id: str, how: dict[str, Any] | None = None) -> None:
        """The close ran: ``state`` becomes ``closed`` (``how``: what the close said)."""
        await self.client.hset(position_key(self.prefix, position_id), {
            "state": "closed", "close": orjson.dumps(how or {}).decode()})  # fmt: skip

"""A worker's publisher: every event its gateway publishes, batched into Redis Streams.

One Lua script call per batch (one round trip, many XADDs, approximate MAXLEN trimming):
the batch is whatever queued while the last one was in flight, so the batches grow with
the rate and latency stays one round trip when the feed is quiet. An entry Redis already
holds (same id: a retry after a lost reply) is refused by Redis and counted as a
duplicate, not stored twice (ids: `gateway.cluster.wire`).

A trade or aggTrade stream is joined in order: the first entry this publisher adds to
one must follow the stream's last trade id, or be older than it (a duplicate). When the
stream is behind (another worker, handing the symbol over, has not added those trades
yet), the publisher waits for it, up to ``join_grace`` s; past that nobody will (the
worker before died) and it joins with the gap, which consumers see and count. So a
symbol that moves between workers make-before-break loses nothing and doubles nothing.

When Redis is unreachable the gateway's in-process job goes on untouched: the batch in
hand is kept and retried with backoff, the subscription keeps queueing within its bound
and drops its oldest beyond it (counted as ``dropped``), and the publisher logs the
outage and its end with what was lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import attrs
import trio

from gateway.cluster.redis_client import REDIS_ERRORS, redis_client
from gateway.cluster.wire import encode, entry_id, stream_key, stream_kind
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import AggTrade, Trade

__all__ = ["PublisherStats", "RedisPublisher"]

log = logging.getLogger(__name__)

#: Kinds whose entry ids carry the exchange's consecutive ids: a publisher joins their
#: streams only where the ids before its first one are already there (`_PUBLISH`).
_SEQUENCED = (Trade, AggTrade)
_JOIN_POLL = 0.02  # s between tries of a stream that waits to join

# KEYS[i]: the stream of entry i. ARGV[1]: MAXLEN (0: no cap); then seven values an
# entry: id, check, type, data, E, rns, pns. ``check`` "1" (a trade stream this publisher
# has not joined yet): add only if the stream is empty or its last trade id (the id's
# sequence part) is this one's - 1, or this one is older (a duplicate); else wait ("w":
# another publisher is still adding the ones before it). Later entries of a waiting
# stream wait too, keeping the order. Returns {one status letter an entry: a(dded),
# d(uplicate), w(ait), f(ailed); the last error}.
_PUBLISH = """
local maxlen = tonumber(ARGV[1])
local status, err, waiting = {}, '', {}
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 7
  local key, id = KEYS[i], ARGV[a]
  local code = nil
  if waiting[key] then
    code = 'w'
  elseif ARGV[a + 1] == '1' then
    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #top > 0 then
      local last = tonumber(string.match(top[1][1], '-(%d+)$'))
      local this = tonumber(string.match(id, '-(%d+)$'))
      if last < this - 1 then
        code = 'w'
        waiting[key] = true
      end
    end
  end
  if code == nil then
    local r
    if maxlen > 0 then
      r = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id, 'v', '1', 'type', ARGV[a + 2],
        'data', ARGV[a + 3], 'E', ARGV[a + 4], 'rns', ARGV[a + 5], 'pns', ARGV[a + 6])
    else
      r = redis.pcall('XADD', key, id, 'v', '1', 'type', ARGV[a + 2], 'data', ARGV[a + 3],
        'E', ARGV[a + 4], 'rns', ARGV[a + 5], 'pns', ARGV[a + 6])
    end
    if type(r) == 'table' and r.err then
      if string.find(r.err, 'equal or smaller', 1, true) then
        code = 'd'
      else
        code = 'f'
        err = r.err
      end
    else
      code = 'a'
    end
  end
  status[i] = code
end
return {table.concat(status), err}
"""


@attrs.define
class PublisherStats:
    """What a publisher did: entries added, refused as duplicates, failed (Redis refused
    them for another reason), trade streams joined with a gap before their first entry
    (``forced_joins``), batches sent, outages, and its state and last error."""

    published: int = 0
    duplicates: int = 0
    failed: int = 0
    forced_joins: int = 0
    batches: int = 0
    outages: int = 0
    state: str = "connecting"
    last_error: str | None = None


class RedisPublisher:
    """Publishes the events of one subscription to Redis Streams at ``url``.

    ``prefix``: the first part of every key. ``maxlen``: each stream's approximate cap
    (0: none). ``batch``: the most entries in one script call.
    """

    def __init__(
        self, url: str, *, prefix: str = "gateway", maxlen: int = 100_000, batch: int = 512,
        policy: ReconnectPolicy | None = None, rng: random.Random | None = None,
        join_grace: float = 2.0,
    ) -> None:  # fmt: skip
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if maxlen < 0:
            raise ValueError(f"maxlen must be >= 0 (0: no cap), got {maxlen}")
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self.batch = batch
        self.policy = policy or ReconnectPolicy(initial=0.1, cap=2.0, max_attempts=None)
        self._rng = rng or random.Random()
        self.stats = PublisherStats()
        #: The subscription being published (set by `run`; its ``dropped`` is the loss).
        self.events: Any = None
        self._down_since: float | None = None
        self._dropped_at_down = 0
        self._changed = trio.Event()
        self.join_grace = join_grace
        self._joined: set[str] = set()  # trade streams this publisher adds to in order
        self._joining: dict[str, float] = {}  # the others: until when they wait

    async def wait_state(self, state: str) -> None:
        """Return once ``stats.state`` is ``state`` ("up", "down"): for supervisors and
        tests that must not poll."""
        while self.stats.state != state:
            changed = self._changed
            await changed.wait()

    def _set_state(self, state: str) -> None:
        if state != self.stats.state:
            self.stats.state = state
            self._changed.set()
            self._changed = trio.Event()

    async def run(
        self, events: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Publish ``events`` (a `Subscription`) until cancelled; never raises for Redis."""
        self.events = events
        pending: list[Any] = []
        attempt = 0
        started = False
        while True:
            try:
                async with redis_client(self.url) as client:
                    script = client.register_script(_PUBLISH)
                    await client.ping()
                    self._up(events)
                    attempt = 0
                    if not started:
                        started = True
                        task_status.started()
                    while True:
                        if not pending:
                            pending = await events.receive_batch(self.batch)
                        else:  # a trade stream waits to join: poll it, with what queued
                            await trio.sleep(_JOIN_POLL)
                            room = 4 * self.batch - len(pending)
                            if room > 0 and len(events):
                                pending += events.drain_nowait(room)
                        pending = await self._send(script, pending)
            except* REDIS_ERRORS as group:
                self._down(group.exceptions[0], events)
            if not started:  # the worker's job does not wait for Redis
                started = True
                task_status.started()
            await trio.sleep(self.policy.delay(attempt, self._rng))
            attempt += 1

    async def _send(self, script: Any, batch: Sequence[Any]) -> list[Any]:
        """Publish ``batch``; returns the events that must wait (trade streams not joined
        yet, whose earlier trades another publisher is still adding), in order."""
        keys: list[str] = []
        args: list[str] = [str(self.maxlen)]
        checked: list[bool] = []
        pns = str(time.time_ns())
        prefix, joined, joining = self.prefix, self._joined, self._joining
        now = time.monotonic()
        for event in batch:
            key = stream_key(prefix, event.symbol, stream_kind(event))
            check = False
            if type(event) in _SEQUENCED and key not in joined:
                deadline = joining.setdefault(key, now + self.join_grace)
                if now < deadline:
                    check = True
                else:  # nobody filled the ids before this one: a gap, which consumers see
                    self.stats.forced_joins += 1
                    joined.add(key)
                    log.warning("%s: joined with a gap before %s (nobody added the ids "
                                "before it in %.1f s)", key, entry_id(event),
                                self.join_grace)  # fmt: skip
            keys.append(key)
            checked.append(check)
            f = encode(event)
            args += (entry_id(event), "1" if check else "0", f["type"], f["data"], f["E"],
                     f["rns"], pns)  # fmt: skip
        codes, err = await script(keys, args)
        s = self.stats
        s.batches += 1
        waiting: list[Any] = []
        for event, key, check, code in zip(batch, keys, checked, codes, strict=True):
            if code == "w":
                waiting.append(event)
                continue
            if check:
                joined.add(key)
                joining.pop(key, None)
            if code == "a":
                s.published += 1
            elif code == "d":
                s.duplicates += 1
            else:
                s.failed += 1
        if "f" in codes:
            s.last_error = str(err)
            log.warning("Redis refused %d entries (counted): %s", codes.count("f"), err)
        return waiting

    def _up(self, events: Any) -> None:
        if self._down_since is not None:
            lost = events.dropped - self._dropped_at_down
            log.warning("Redis at %s is back after %.1f s; %d events were dropped meanwhile",
                        self.url, time.monotonic() - self._down_since, lost)  # fmt: skip
            self._down_since = None
        self._set_state("up")

    def _down(self, exc: BaseException, events: Any) -> None:
        s = self.stats
        s.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._down_since is None:
            s.outages += 1
            self._down_since = time.monotonic()
            self._dropped_at_down = events.dropped
            log.warning("Redis at %s is unreachable (%s); publishing paused, the gateway "
                        "goes on", self.url, s.last_error)  # fmt: skip
        self._set_state("down")

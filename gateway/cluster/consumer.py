"""Reading a cluster's events from Redis Streams, from trio code on any machine.

`open_remote_feed` yields the same event types the in-process API does (`Trade`,
`CandleClosed`, `StopTriggered`, ...) for the symbols and kinds asked for. A reader task
owns the Redis client; it remembers the last id of every stream it handed over, so that
after any disconnect it reads on from there: no gap, no duplicate (unless the stream was
trimmed past that id meanwhile: trade and aggTrade ids are checked and a jump is counted
as a gap). With ``group`` it reads as one consumer of a consumer group, so that several
consumers share the entries; an entry is acknowledged once the next one is asked for
(at least once: what a consumer took but did not finish is delivered again to it).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import attrs
import coredis.exceptions
import trio

from gateway.cluster.redis_client import REDIS_ERRORS, redis_client
from gateway.cluster.wire import RemoteDecodeError, decode_entry, stream_key
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import AggTrade, BookTicker, StopTriggered, Ticker, Trade
from gateway.errors import ConfigError
from gateway.runtime.publish import STREAK

__all__ = ["RemoteFeed", "RemoteFeedStats", "open_remote_feed"]

log = logging.getLogger(__name__)

_KIND_OF_TYPE: dict[type, str] = {
    Trade: "trade", AggTrade: "aggTrade", Ticker: "ticker", BookTicker: "bookTicker",
    StopTriggered: "stop",
}  # fmt: skip
_PLAIN_KINDS = frozenset(_KIND_OF_TYPE.values())


def _kind_name(kind: str | type) -> str:
    if isinstance(kind, type):
        if kind not in _KIND_OF_TYPE:
            raise ConfigError(f"kinds: {kind.__name__} is not published (candles: name them "
                              f"as 'kline_1m' and so on)")  # fmt: skip
        return _KIND_OF_TYPE[kind]
    if kind in _PLAIN_KINDS or (kind.startswith("kline_") and len(kind) > 6):
        return kind
    raise ConfigError(f"kinds: {kind!r} is not one of {sorted(_PLAIN_KINDS)} or kline_<interval>")


@attrs.define
class RemoteFeedStats:
    """What a feed read: entries per stream key, reconnects, unreadable entries (counted,
    skipped), and the duplicates and id gaps it saw on trade and aggTrade streams."""

    received: dict[str, int] = attrs.field(factory=dict)
    reconnects: int = 0
    undecodable: int = 0
    duplicates: int = 0
    gaps: int = 0
    last_error: str | None = None


class RemoteFeed:
    """An async iterator of events from Redis Streams; see `open_remote_feed`."""

    def __init__(self, receive: trio.MemoryReceiveChannel[list[tuple[str, str, Any]]],
                 acks: list[tuple[str, str]] | None,
                 last_ids: dict[str, str], stats: RemoteFeedStats) -> None:  # fmt: skip
        self._receive = receive
        self._pending: deque[tuple[str, str, Any]] = deque()
        self._streak = 0
        self._acks = acks
        self._unacked: tuple[str, str] | None = None
        #: The id of the last entry this feed returned, per stream key (a new feed given
        #: these as ``last_ids`` goes on right after them).
        self.last_ids = dict(last_ids)
        self.stats = stats

    def __aiter__(self) -> RemoteFeed:
        return self

    async def __anext__(self) -> Any:
        return (await self.receive_entry())[2]

    async def receive_entry(self) -> tuple[str, str, Any]:
        """The next (stream key, entry id, event); acknowledges the one before (groups).

        The reader hands over what one read returned at once; its entries are taken
        with a checkpoint every `STREAK` of them, not each (as `Subscription` does).
        """
        if self._unacked is not None and self._acks is not None:
            self._acks.append(self._unacked)  # the reader sends them before its next read
            self._unacked = None
        if not self._pending:
            try:
                self._pending.extend(await self._receive.receive())
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            self._streak = STREAK
        elif not self._streak:
            await trio.lowlevel.checkpoint()
            self._streak = STREAK
        self._streak -= 1
        key, entry, event = self._pending.popleft()
        if self._acks is not None:
            self._unacked = (key, entry)
        self.last_ids[key] = entry
        return key, entry, event


def open_remote_feed(
    url: str, symbols: Iterable[str], kinds: Iterable[str | type], *,
    prefix: str = "gateway", start: str = "$", last_ids: dict[str, str] | None = None,
    group: str | None = None, consumer: str | None = None, batch: int = 256,
    block_ms: int = 1000, policy: ReconnectPolicy | None = None,
) -> AbstractAsyncContextManager[RemoteFeed]:  # fmt: skip
    """A `RemoteFeed` of ``symbols`` x ``kinds`` read from the Redis at ``url``.

    ``start``: where each stream is read from without ``last_ids`` ("$": only what is
    added from now, "0": from the first entry kept). ``last_ids`` (per stream key, e.g. a
    previous feed's ``last_ids``) resumes exactly after those entries. ``group`` (with a
    ``consumer`` name): read as one consumer of that consumer group, created at ``start``
    when missing; the feed first takes what the group delivered to this consumer and it
    never acknowledged.
    """
    names = sorted({_kind_name(k) for k in kinds})
    keys = [stream_key(prefix, s, k) for s in dict.fromkeys(s.upper() for s in symbols)
            for k in names]  # fmt: skip
    if not keys:
        raise ConfigError("open_remote_feed: no symbols or no kinds")
    if group is not None and not consumer:
        raise ConfigError("open_remote_feed: a group needs a consumer name")
    ids = {k: (last_ids or {}).get(k, start) for k in keys}
    policy = policy or ReconnectPolicy(initial=0.1, cap=2.0, max_attempts=None)
    return _open_feed(_Reader(url, ids, RemoteFeedStats(), group, consumer, batch, block_ms,
                              policy))  # fmt: skip


@asynccontextmanager
async def _open_feed(reader: _Reader) -> AsyncIterator[RemoteFeed]:
    """Run ``reader`` for the duration of the block; the feed it fills."""
    send, receive = trio.open_memory_channel[list[tuple[str, str, Any]]](2)  # whole reads
    group, stats = reader.group, reader.stats
    feed = RemoteFeed(receive, reader.acks if group else None, reader.handed, stats)
    reader.user_ids = feed.last_ids
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run, send)
        try:
            yield feed
        finally:
            nursery.cancel_scope.cancel()


class _Reader:
    """The task that owns the Redis client: reads, decodes, hands over, reconnects."""

    def __init__(self, url: str, ids: dict[str, str], stats: RemoteFeedStats,
                 group: str | None, consumer: str | None, batch: int, block_ms: int,
                 policy: ReconnectPolicy) -> None:  # fmt: skip
        self.url = url
        self.handed = dict(ids)  # what the user has been given, per key
        self.stats = stats
        self.group = group
        self.consumer = consumer or ""
        self.batch = batch
        self.block_ms = block_ms
        self.policy = policy
        self._rng = random.Random()
        self._last_seq: dict[str, int] = {}
        self._pending_first = group is not None  # a group: this consumer's own backlog first
        #: (key, id) of entries the user finished, to acknowledge (a group only).
        self.acks: list[tuple[str, str]] = []
        #: The feed's ``last_ids`` (a "$" there becomes the id it stood for).
        self.user_ids: dict[str, str] = {}

    async def run(self, send: trio.MemorySendChannel[list[tuple[str, str, Any]]],
                  ) -> None:  # fmt: skip
        attempt = 0
        connected_once = False
        reply_limit = self.block_ms / 1000 + 10  # a blocked read answers within block_ms
        while True:
            try:
                async with redis_client(self.url, stream_timeout=reply_limit) as client:
                    if connected_once:
                        self.stats.reconnects += 1
                    connected_once = True
                    if self.group is not None:
                        await self._create_group(client)
                    else:
                        await self._resolve_now(client)
                    attempt = 0
                    while True:
                        await self._ack(client)
                        await self._read_once(client, send)
            except* REDIS_ERRORS as group:
                exc = group.exceptions[0]
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("remote feed: Redis at %s: %s; reading on from the last ids "
                            "after a pause", self.url, self.stats.last_error)  # fmt: skip
            await trio.sleep(self.policy.delay(attempt, self._rng))
            attempt += 1

    async def _resolve_now(self, client: Any) -> None:
        """Turn each "$" (from now) into the stream's last id, once: a "$" sent again on
        a later read would skip what was added between two reads, or while away."""
        for key, last in self.handed.items():
            if last == "$":
                top = await client.xrevrange(key, count=1)
                self.handed[key] = top[0].identifier if top else "0-0"
                if self.user_ids.get(key) == "$":
                    self.user_ids[key] = self.handed[key]

    async def _create_group(self, client: Any) -> None:
        for key, start in self.handed.items():
            with suppress(coredis.exceptions.StreamDuplicateConsumerGroupError):
                await client.xgroup_create(key, self.group, identifier=start, mkstream=True)
        # A group's ids are the group's: this consumer reads its own backlog, then new
        # (again after every reconnect: a reply lost with the connection is in it).
        self._read_ids = dict.fromkeys(self.handed, "0")
        self._pending_first = True

    async def _ack(self, client: Any) -> None:
        """Acknowledge what the user finished (a group). The list is bounded: the user
        takes at most the channel's and one read's worth between two of these."""
        if self.group is None or not self.acks:
            return
        done = list(self.acks)
        by_key: dict[str, list[str]] = {}
        for key, entry in done:
            by_key.setdefault(key, []).append(entry)
        for key, entries in by_key.items():
            await client.xack(key, self.group, entries)
        del self.acks[: len(done)]  # only once Redis has them (a retry acks them again)

    async def _read_once(
        self, client: Any, send: trio.MemorySendChannel[list[tuple[str, str, Any]]]
    ) -> None:
        if self.group is None:
            reply = await client.xread(self.handed, count=self.batch, block=self.block_ms)
        else:
            backlog = self._pending_first
            ids = self._read_ids if backlog else dict.fromkeys(self.handed, ">")
            block = None if backlog else self.block_ms
            try:
                reply = await client.xreadgroup(self.group, self.consumer, ids,
                                                count=self.batch, block=block)  # fmt: skip
            except TypeError:  # coredis 6.9 on pending entries the stream trimmed away
                if not backlog:
                    raise
                log.warning("remote feed: this consumer's pending entries were trimmed from "
                            "the streams; going on with new ones")  # fmt: skip
                self._pending_first = False
                return
            if self._pending_first and not any(reply.values() if reply else ()):
                self._pending_first = False  # the backlog is done: now new entries
                return
        if not reply:
            return
        batch: list[tuple[str, str, Any]] = []
        last: dict[str, str] = {}
        for key, entries in reply.items():
            for entry in entries:
                self._take(key, entry, batch)
                last[key] = entry.identifier
        if batch:
            await send.send(batch)
        self.handed.update(last)  # what the feed now holds: a reconnect reads on from here
        if self._pending_first:
            self._read_ids.update(last)

    def _take(self, key: str, entry: Any, batch: list[tuple[str, str, Any]]) -> None:
        """Decode ``entry`` of ``key`` into ``batch`` (an unreadable one: counted, skipped)."""
        stats = self.stats
        stats.received[key] = stats.received.get(key, 0) + 1
        try:
            event = decode_entry(entry.field_values)
        except RemoteDecodeError as exc:
            stats.undecodable += 1
            log.warning("remote feed: skipping entry %s of %s (counted): %s", entry.identifier,
                        key, exc)  # fmt: skip
            return
        if self.group is None:  # a group's consumer sees a share of each stream
            self._check_sequence(key, event)
        batch.append((key, entry.identifier, event))

    def _check_sequence(self, key: str, event: Any) -> None:
        kind = type(event)
        if kind is Trade:
            seq = event.trade_id
        elif kind is AggTrade:
            seq = event.agg_trade_id
        else:
            return
        last = self._last_seq.get(key)
        if last is not None:
            if seq <= last:
                self.stats.duplicates += 1
            elif seq != last + 1:
                self.stats.gaps += 1
        self._last_seq[key] = max(seq, last if last is not None else seq)

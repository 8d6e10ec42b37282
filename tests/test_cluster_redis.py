"""Issue 17, Redis side: the versioned entry encoding, a worker publishing its gateway's
events to a real private ``redis-server``, and remote consumers reading them: every event
once and in order per symbol, resumed by id after a disconnect, shared by a consumer
group, and a Redis outage that the in-process gateway never notices.

The exchange is the embedded one, paced by hand; Redis is real (the ``private_redis``
fixture of tests/conftest.py). Redis runs on real time, so these tests bound every wait
with ``fail_after`` instead of a virtual clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import coredis
import pytest
import trio
from coredis.tokens import PureToken

from gateway import Gateway
from gateway.cluster.consumer import RemoteFeed, open_remote_feed
from gateway.cluster.publisher import RedisPublisher
from gateway.cluster.redis_server import PrivateRedis
from gateway.cluster.wire import (
    RemoteDecodeError,
    decode_entry,
    encode,
    entry_id,
    stream_key,
    stream_kind,
)  # fmt: skip
from gateway.cluster.worker import run_worker
from gateway.core.events import BookTicker, CandleClosed, Kline, StopTriggered, Ticker, Trade
from gateway.errors import ConfigError
from gateway.simulator import Simulator
from tests._loopback import SYMBOLS, exchange

# --- The encoding ---------------------------------------------------------------------

_KLINE = Kline("BTCUSDT", "1m", 60_000, 119_999, 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 4.0, 6.0,
               7, 100, 106, True, 120_000, 5, False)  # fmt: skip
_EVENTS: list[Any] = [
    Trade("BTCUSDT", 42, 97123.45, 0.0012, 1_700_000_000_123, True, 1_700_000_000_124, 9),
    CandleClosed("BTCUSDT", _KLINE, 11),
    BookTicker("ETHUSDT", 7, 3000.1, 2.0, 3000.2, 1.5, None, 3),
    StopTriggered("BNBUSDT", "p-1", "LONG", 500.0, 499.5, 1_700_000_000_000, 1, 2, 3.5),
]


@pytest.mark.parametrize("event", _EVENTS, ids=lambda e: type(e).__name__)
def test_every_published_type_survives_its_entry(event: Any) -> None:
    fields = encode(event)
    assert fields["v"] == "1" and fields["type"] == type(event).__name__
    assert decode_entry({k.encode(): v.encode() for k, v in fields.items()}) == event
    assert decode_entry(fields) == event


def test_entry_ids_follow_the_exchanges_order_and_keys_name_symbol_and_kind() -> None:
    trade, candle, book, stop = _EVENTS
    assert entry_id(trade) == "1700000000123-42"
    assert entry_id(candle) == "60000-1"
    assert entry_id(book) == "7-1"
    assert entry_id(stop) == "*"
    assert stream_key("gw", "btcusdt", stream_kind(candle)) == "gw:BTCUSDT:kline_1m"
    assert entry_id(Trade("X", 0, 1.0, 1.0, 0, False, 0)) == "0-1"  # 0-0 is not an id


@pytest.mark.parametrize(("fields", "match"), [
    ({"v": "2", "type": "Trade", "data": "{}"}, "version '2'"),
    ({"v": "1", "type": "Order", "data": "{}"}, "type 'Order'"),
    ({"v": "1", "type": "Trade", "data": '{"symbol": "X"}'}, "not readable"),
    ({"v": "1", "type": "Trade", "data": "not json"}, "not readable"),
])  # fmt: skip
def test_an_unreadable_entry_is_a_typed_error(fields: dict[str, str], match: str) -> None:
    with pytest.raises(RemoteDecodeError, match=match):
        decode_entry(fields)


def test_a_consumer_names_only_published_kinds() -> None:
    with pytest.raises(ConfigError, match="'depth'"):
        open_remote_feed("redis://127.0.0.1:1/0", ["BTCUSDT"], ["depth"])
    with pytest.raises(ConfigError, match="Kline is not published"):
        open_remote_feed("redis://127.0.0.1:1/0", ["BTCUSDT"], [Kline])


# --- A worker and remote consumers ------------------------------------------------------


@asynccontextmanager
async def worker(
    sim: Simulator, redis: PrivateRedis, **options: Any
) -> AsyncIterator[tuple[Gateway, RedisPublisher]]:
    """`run_worker` for every symbol of ``sim``, publishing to ``redis``."""
    async with trio.open_nursery() as nursery:
        gw, publisher, _keeper = await nursery.start(partial_worker(sim, redis, options))
        yield gw, publisher
        nursery.cancel_scope.cancel()


def partial_worker(sim: Simulator, redis: PrivateRedis, options: dict[str, Any]) -> Any:
    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await run_worker(redis_url=redis.url, symbols=SYMBOLS, url=sim.ws_url,
                         rest_url=sim.rest_url, streams=("trade",), task_status=task_status,
                         **options)  # fmt: skip
    return run


async def take(feed: RemoteFeed, count: int) -> list[Any]:
    out: list[Any] = []
    with trio.fail_after(30):
        while len(out) < count:
            out.append(await feed.__anext__())
    return out


def by_symbol(events: list[Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for e in events:
        out[e.symbol].append(e.trade_id)
    return dict(out)


async def test_every_trade_reaches_a_remote_consumer_once_and_in_order(
    private_redis: PrivateRedis,
) -> None:
    async with exchange() as sim, worker(sim, private_redis) as (gw, publisher):
        with gw.subscribe(kinds=Trade) as local:
            async with open_remote_feed(private_redis.url, SYMBOLS, ["trade"],
                                        start="0") as feed:  # fmt: skip
                n = sim.control.generate(600)
                remote = await take(feed, n)
                assert remote == [e for e in remote if isinstance(e, Trade)]
                here = [await local.receive() for _ in range(n)]
        assert by_symbol(remote) == by_symbol(here)  # the same trades, in order per symbol
        for ids in by_symbol(remote).values():
            assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert feed.stats.duplicates == feed.stats.gaps == feed.stats.undecodable == 0
        assert publisher.stats.published == n and publisher.stats.state == "up"


async def test_a_feed_resumes_after_its_last_id_with_no_gap_and_no_duplicate(
    private_redis: PrivateRedis,
) -> None:
    async with exchange() as sim, worker(sim, private_redis):
        n = sim.control.generate(300)
        async with open_remote_feed(private_redis.url, SYMBOLS, ["trade"], start="0") as feed:
            first = await take(feed, 100)
            resume = dict(feed.last_ids)
        async with open_remote_feed(private_redis.url, SYMBOLS, ["trade"],
                                    last_ids=resume) as again:  # fmt: skip
            rest = await take(again, n - 100)
    everything = by_symbol(first + rest)
    for ids in everything.values():
        assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert sum(map(len, everything.values())) == n


async def test_a_consumer_group_shares_the_entries_between_its_consumers(
    private_redis: PrivateRedis,
) -> None:
    async with exchange() as sim, worker(sim, private_redis):
        opts: dict[str, Any] = {"start": "0", "group": "strategies", "batch": 16}
        async with open_remote_feed(private_redis.url, SYMBOLS, ["trade"], consumer="a",
                                    **opts) as a, open_remote_feed(
                private_redis.url, SYMBOLS, ["trade"], consumer="b", **opts) as b:  # fmt: skip
            n = sim.control.generate(400)
            got: dict[str, list[tuple[str, int]]] = {"a": [], "b": []}
            done = trio.Event()

            async def read(name: str, feed: RemoteFeed) -> None:
                while True:
                    event = await feed.__anext__()
                    got[name].append((event.symbol, event.trade_id))
                    if len(got["a"]) + len(got["b"]) >= n:
                        done.set()

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read, "a", a)
                    nursery.start_soon(read, "b", b)
                    await done.wait()
                    nursery.cancel_scope.cancel()
    assert len(got["a"]) + len(got["b"]) == n
    assert not set(got["a"]) & set(got["b"])  # each entry went to one consumer
    assert got["a"] and got["b"]


async def test_redis_down_for_a_while_the_gateway_never_notices_and_publishing_resumes(
    private_redis: PrivateRedis,
) -> None:
    async with exchange() as sim, worker(sim, private_redis) as (gw, publisher):
        with gw.subscribe(kinds=Trade) as local:
            before = sim.control.generate(100)
            async with open_remote_feed(private_redis.url, SYMBOLS, ["trade"],
                                        start="0") as feed:  # fmt: skip
                await take(feed, before)
                await private_redis.stop()
                during = sim.control.generate(200)
                here = [await local.receive() for _ in range(before + during)]
                assert len(here) == before + during  # the in-process job went on
                with trio.fail_after(10):
                    await publisher.wait_state("down")  # it finds out on its own
                await private_redis.start()  # the same port
                after = sim.control.generate(100)
                rest = await take(feed, during + after)
        assert publisher.stats.outages == 1 and publisher.stats.state == "up"
        assert feed.stats.reconnects >= 1
        ids = by_symbol(rest)
        for got in ids.values():
            assert got == list(range(got[0], got[0] + len(got)))
        assert feed.stats.gaps == feed.stats.duplicates == 0


async def test_a_batch_published_twice_is_stored_once(private_redis: PrivateRedis) -> None:
    events = [Trade("BTCUSDT", i, 1.0, 1.0, 1_000 + i, False, 1_000 + i, 5) for i in range(1, 51)]
    publisher = RedisPublisher(private_redis.url, prefix="dup")
    async with coredis.Redis.from_url(private_redis.url, decode_responses=True) as client:
        script = client.register_script(_publish_script())
        assert await publisher._send(script, events) == []
        assert await publisher._send(script, events[20:]) == []  # a retry after a lost reply
        assert await client.xlen("dup:BTCUSDT:trade") == 50
    assert publisher.stats.published == 50 and publisher.stats.duplicates == 30


def _trades(first: int, last: int) -> list[Trade]:
    return [Trade("BTCUSDT", i, 1.0, 1.0, 1_000 + i, False, 1_000 + i, 5)
            for i in range(first, last + 1)]  # fmt: skip


async def test_a_publisher_joins_a_trade_stream_only_where_the_ids_before_it_are(
    private_redis: PrivateRedis,
) -> None:
    # A symbol handed over make-before-break: the new owner (``late``) sees trades 30-60
    # while the old one (``early``) has published only 1-20. It waits for 21-29 instead of
    # leaving them out; a publisher that nobody will catch up with joins with the gap.
    early = RedisPublisher(private_redis.url, prefix="join")
    late = RedisPublisher(private_redis.url, prefix="join")
    alone = RedisPublisher(private_redis.url, prefix="join", join_grace=0.0)
    async with coredis.Redis.from_url(private_redis.url, decode_responses=True) as client:
        script = client.register_script(_publish_script())
        assert await early._send(script, _trades(1, 20)) == []
        assert await late._send(script, _trades(30, 60)) == _trades(30, 60)  # all wait
        assert await early._send(script, _trades(21, 40)) == []
        assert await late._send(script, _trades(30, 60)) == []  # 30-40 doubled, 41-60 new
        ids = [int(e.identifier.split("-")[1]) for e in await client.xrange("join:BTCUSDT:trade")]
        assert ids == list(range(1, 61))
        assert await alone._send(script, _trades(70, 71)) == []
        assert alone.stats.forced_joins == 1
    assert late.stats.published == 20 and late.stats.duplicates == 11


def _publish_script() -> str:
    from gateway.cluster import publisher

    return publisher._PUBLISH


def test_only_published_kinds_have_a_stream() -> None:
    with pytest.raises(TypeError, match="Ticker"):
        stream_kind(object.__new__(type("Ticker", (), {})))
    assert stream_kind(object.__new__(Ticker)) == "ticker"


async def test_a_feed_from_now_misses_nothing_added_while_it_was_disconnected(
    private_redis: PrivateRedis,
) -> None:
    # "$" (from now) is resolved to each stream's last id on the first connect: a quiet
    # stream (ETHUSDT, nothing in it yet) keeps what is added while the feed's connection
    # is down, and Redis keeps its data (only the connections are killed).
    publisher = RedisPublisher(private_redis.url, prefix="now")
    btc = _trades(1, 3)
    eth = [Trade("ETHUSDT", i, 1.0, 1.0, 1_000 + i, False, 1_000 + i, 5) for i in range(1, 6)]
    async with coredis.Redis.from_url(private_redis.url, decode_responses=True) as client:
        script = client.register_script(_publish_script())
        async with open_remote_feed(private_redis.url, ["BTCUSDT", "ETHUSDT"], ["trade"],
                                    prefix="now") as feed:  # fmt: skip
            await publisher._send(script, btc[:1])
            first = await take(feed, 1)  # connected, and both streams' "$" resolved
            assert feed.last_ids["now:ETHUSDT:trade"] == "0-0"  # empty when resolved
            killed = await client.client_kill(type_=PureToken.NORMAL, skipme=True)
            await publisher._send(script, eth + btc[1:])
            rest = await take(feed, 7)
    assert killed == 1  # the feed's connection (coredis may reconnect it within its pool)
    assert by_symbol(first + rest) == {"BTCUSDT": [1, 2, 3], "ETHUSDT": [1, 2, 3, 4, 5]}
    assert feed.stats.gaps == feed.stats.duplicates == 0

"""The router: market events reach their symbol, the rest goes back to the connection;
bad input is counted and skipped, and its counters stay bounded."""

from __future__ import annotations

import trio
import trio.testing
from trio.testing import MockClock

from gateway import StopTriggered, Trade
from gateway.core.stop_loss import Position, Side
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router
from gateway.runtime.symbol import SymbolRuntime
from tests._loopback import drain, exchange_and_gateway

# Prices a stop-loss fired on before the codec checked them (issue 11): below a long
# stop at 95 (True is 1.0, 50 a JSON number), or above a short stop at 105 ("inf").
BAD_PRICES = ["true", "false", "50", "50.0", '"-5"', '"0"', '"-0"', '"inf"', '"1e999"',
              '"nan"', "null", '" 94"', '"+94"', '""']  # fmt: skip


def trade_frame(kind: str, trade_id: int, price: str) -> str:
    """A combined trade or aggTrade frame for BTCUSDT with ``price`` as its raw JSON."""
    ids = f'"t":{trade_id}' if kind == "trade" else f'"a":{trade_id},"f":1,"l":1'
    return (
        f'{{"stream":"btcusdt@{kind}","data":{{"e":"{kind}","E":1,"s":"BTCUSDT",{ids},'
        f'"p":{price},"q":"1.00000000","T":1,"m":false,"M":true}}}}'
    )


def test_router_counts_unknown_kinds_without_growing_without_bound() -> None:
    router = Router()
    for i in range(500):
        router.route(f'{{"e":"invented{i}","E":1}}', 1)
    router.route("not json", 1)
    assert (router.unknown, router.malformed) == (500, 1)
    assert len(router.unknown_kinds) == 101 and router.unknown_kinds["(other)"] == 400


async def test_a_bad_trade_price_is_malformed_and_no_stop_is_checked_against_it() -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher)
    state.live = True  # the actor is up: the router calls its handler directly
    state.machine.stops.open(Position("long", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    state.machine.stops.open(Position("short", "BTCUSDT", Side.SHORT, 100.0, 1.0, stop_price=105.0))
    router = Router()
    router.attach(state)
    with publisher.subscribe(kinds=[StopTriggered]) as fired:
        next_id = 1
        for kind in ("trade", "aggTrade"):
            for price in BAD_PRICES:
                router.route(trade_frame(kind, next_id, price), 1)
                next_id += 1
        assert router.malformed == 2 * len(BAD_PRICES)
        m = state.machine
        assert (m.handled, m.last_price, m.stops.fired) == (0, None, 0)
        router.route(trade_frame("trade", next_id, '"100.00000000"'), 1)
        router.route(trade_frame("aggTrade", next_id, '"94.00000000"'), 1)
        assert (m.handled, m.last_price) == (2, 94.0)  # real prices still go through
        assert [ev.position_id for ev in fired.drain_nowait(10)] == ["long"]
    assert router.malformed == 2 * len(BAD_PRICES) and state.machine.stops.armed_count == 1


async def test_the_gateway_keeps_streaming_past_bad_prices_from_the_exchange(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}) as (sim, gw):
        gw.on_stop_loss(fired.append)
        long_id = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        gw.open_position("BTCUSDT", "SHORT", 100.0, stop_price=105.0)
        with gw.subscribe("BTCUSDT", Trade) as sub:
            for i, price in enumerate(BAD_PRICES):
                sim.control.send_raw(trade_frame("trade", 10**9 + i, price))
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)  # a marker: frames keep order
            assert [t.price for t in await drain(sub, 1)] == [100.0]
            await trio.testing.wait_all_tasks_blocked()
            assert gw.stats().router.malformed == len(BAD_PRICES)
            assert fired == []
            sim.control.inject_trade("BTCUSDT", 94.0, 1.0)  # and the stops still work
            assert [t.price for t in await drain(sub, 1)] == [94.0]
        await trio.testing.wait_all_tasks_blocked()
        assert [f.position_id for f in fired] == [long_id]


async def test_market_events_reach_their_symbol_and_the_rest_goes_back_to_the_connection(
) -> None:
    """What `Router.route` delivers (to the live symbol, or its mailbox while it is down),
    and what it hands back to the connection that read the frame."""
    from actors import Mailbox, Overflow
    from gateway.core.frames import ControlError, ControlReply, ServerShutdown
    from gateway.runtime.router import NOT_MARKET

    publisher = Publisher()
    btc, eth = SymbolRuntime("BTCUSDT", publisher), SymbolRuntime("ETHUSDT", publisher)
    btc.live = True  # its actor is up: handled in the call
    eth.mailbox = Mailbox(10, Overflow.DROP_NEWEST)  # down: queued for its actor
    router = Router()
    router.attach(btc)
    router.attach(eth)
    with publisher.subscribe(kinds=[Trade]) as trades:
        assert router.route(trade_frame("trade", 7, '"100.5"'), 11) is None
        eth_frame = trade_frame("trade", 8, '"2000.25"').replace("btcusdt", "ethusdt")
        assert router.route(eth_frame.replace('"BTCUSDT"', '"ETHUSDT"'), 12) is None
        [got] = trades.drain_nowait(10)
    assert (got.symbol, got.trade_id, got.price, got.receive_ns) == ("BTCUSDT", 7, 100.5, 11)
    [queued] = eth.mailbox.drain_nowait(10)
    assert (queued.symbol, queued.trade_id, queued.receive_ns) == ("ETHUSDT", 8, 12)
    reply = router.route('{"result":null,"id":3}', 1)
    assert isinstance(reply, ControlReply) and reply.id == 3
    error = router.route('{"error":{"code":2,"msg":"Invalid request"},"id":4}', 1)
    assert isinstance(error, ControlError) and error.id == 4
    assert isinstance(router.route('{"e":"serverShutdown","E":1}', 1), ServerShutdown)
    unrouted = trade_frame("trade", 9, '"1"').replace("btcusdt", "xrpusdt").replace(
        '"BTCUSDT"', '"XRPUSDT"')  # fmt: skip
    assert router.route(unrouted, 1) is NOT_MARKET and router.unrouted == 1
    assert router.route("not json", 1) is NOT_MARKET
    assert router.route('{"e":"futureEvent","E":1,"s":"BTCUSDT"}', 1) is NOT_MARKET
    assert (router.frames, router.malformed, router.unknown) == (8, 1, 1)

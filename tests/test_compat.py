"""The older layer's test areas, through the compatibility facade, on the embedded exchange.

Connection handling, subscriptions, parsing of kline / trade / ticker, sync and async
callbacks, reconnection and multi-symbol support, as its 15 tests covered them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import ConnectionFailed, Kline, Ticker, Trade, WebSocketLayer
from gateway.config import TESTNET_URL, GatewayConfig, ReconnectConfig
from gateway.simulator import Simulator, open_simulator


@asynccontextmanager
async def running(
    layer: WebSocketLayer,
) -> AsyncIterator[trio.Nursery]:
    """Run ``layer`` in the background for the block; close it afterwards."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(layer.run)
        with trio.fail_after(30):
            await layer.wait_ready()
        yield nursery
        await layer.close()


@asynccontextmanager
async def exchange(**options: Any) -> AsyncIterator[Simulator]:
    opts = {"symbols": ("BTCUSDT", "ETHUSDT"), "clock": "virtual", "pacing": "manual"}
    opts.update(options)
    async with open_simulator(**opts) as sim:
        yield sim


class Seen(list[Any]):
    """A callback that keeps what it is given and says when ``expected`` items came."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.enough = trio.Event()

    def __call__(self, item: Any) -> None:
        self.append(item)
        if len(self) >= self.expected:
            self.enough.set()

    async def wait(self) -> None:
        with trio.fail_after(30):
            await self.enough.wait()
        await trio.testing.wait_all_tasks_blocked()  # anything beyond would show now


def subscribed(sim: Simulator) -> list[str]:
    return sorted(n for names in sim.control.stats().subscriptions.values() for n in names)


# --- connection handling ---------------------------------------------------------------


async def test_connects_to_the_given_url(autojump_clock: MockClock) -> None:
    async with exchange() as sim:
        layer = WebSocketLayer(api_key="", api_secret="", url=sim.ws_url)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            assert layer.is_running
            assert sim.control.stats().connections_open == 1
        assert not layer.is_running and layer.gateway is None


def test_testnet_selects_the_test_network() -> None:
    layer = WebSocketLayer(testnet=True)
    assert layer.testnet and layer.url == TESTNET_URL
    assert WebSocketLayer().url.startswith("wss://stream.binance.com")


async def test_run_without_subscriptions_is_refused(autojump_clock: MockClock) -> None:
    with pytest.raises(RuntimeError, match="subscribe to at least one stream"):
        await WebSocketLayer(url="ws://127.0.0.1:1").run()


# --- subscriptions -----------------------------------------------------------------------


async def test_subscribe_trades_kline_and_ticker_open_their_streams(
    autojump_clock: MockClock,
) -> None:
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_trades("BTCUSDT")
        await layer.subscribe_kline("BTCUSDT", "5m")
        await layer.subscribe_ticker("btcusdt")
        async with running(layer):
            assert subscribed(sim) == ["btcusdt@kline_5m", "btcusdt@ticker", "btcusdt@trade"]


async def test_subscribing_while_running_is_applied_live(autojump_clock: MockClock) -> None:
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            await layer.subscribe_trades("ETHUSDT")
            assert subscribed(sim) == ["btcusdt@trade", "ethusdt@trade"]


# --- parsing -----------------------------------------------------------------------------


async def test_trade_events_carry_the_old_fields(autojump_clock: MockClock) -> None:
    trades = Seen(1)
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_trades("BTCUSDT")
        layer.register_trade_callback(trades)
        async with running(layer):
            sim.control.inject_trade("BTCUSDT", 101.25, 0.5)
            await trades.wait()
    (t,) = trades
    assert (t.symbol, t.price, t.quantity) == ("BTCUSDT", 101.25, 0.5)
    assert isinstance(t.timestamp, int) and t.timestamp > 0
    assert isinstance(t.is_buyer_maker, bool)


async def test_kline_events_carry_the_old_fields(autojump_clock: MockClock) -> None:
    klines: list[Kline] = []
    final = trio.Event()

    def on_kline(k: Kline) -> None:
        klines.append(k)
        if k.is_final:
            final.set()

    async with exchange(pacing="rate", rate=10.0) as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_kline("BTCUSDT", "1s")
        layer.register_kline_callback(on_kline)
        async with running(layer):
            with trio.fail_after(30):
                await final.wait()
    finals = [k for k in klines if k.is_final]
    assert finals and all(k.timeframe == "1s" and k.symbol == "BTCUSDT" for k in klines)
    k = finals[0]
    assert k.low <= min(k.open, k.close) <= max(k.open, k.close) <= k.high
    assert k.volume > 0 and k.ts_close == k.close_time and k.ts_close % 1000 == 999


async def test_ticker_events_carry_the_old_fields(autojump_clock: MockClock) -> None:
    tickers: list[Ticker] = []
    got = trio.Event()

    def on_ticker(t: Ticker) -> None:
        tickers.append(t)
        got.set()

    async with exchange(pacing="rate", rate=10.0) as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_ticker("BTCUSDT")
        layer.register_ticker_callback(on_ticker)
        async with running(layer):
            with trio.fail_after(30):
                await got.wait()
    assert tickers
    t = tickers[-1]
    assert t.symbol == "BTCUSDT" and t.price > 0 and t.volume > 0 and t.quote_volume > 0
    assert t.price_change == pytest.approx(t.last_price - t.open_price, abs=1e-6)
    assert isinstance(t.price_change_pct, float)


# --- callbacks -----------------------------------------------------------------------------


async def test_sync_callbacks_are_called(autojump_clock: MockClock) -> None:
    seen = Seen(3)
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        layer.register_trade_callback(lambda t: seen(t.price))
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            for p in (100.0, 100.5, 101.0):
                sim.control.inject_trade("BTCUSDT", p, 1.0)
            await seen.wait()
    assert seen == [100.0, 100.5, 101.0]


async def test_async_callbacks_are_awaited(autojump_clock: MockClock) -> None:
    seen = Seen(2)

    async def on_trade(t: Trade) -> None:
        await trio.sleep(0.01)  # really async: the dispatcher awaits it
        seen(t.price)

    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        layer.register_trade_callback(on_trade)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            for p in (100.0, 99.0):
                sim.control.inject_trade("BTCUSDT", p, 1.0)
            await seen.wait()
    assert seen == [100.0, 99.0]


async def test_raising_callback_reaches_error_callback_and_stream_goes_on(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    good = Seen(2)

    def bad(t: Trade) -> None:
        raise ValueError("strategy bug")

    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        layer.register_trade_callback(bad)
        layer.register_trade_callback(lambda t: good(t.price))
        layer.register_error_callback(errors.append)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            sim.control.inject_trade("BTCUSDT", 100.1, 1.0)
            await good.wait()
    assert good == [100.0, 100.1]
    assert [str(e) for e in errors] == ["strategy bug", "strategy bug"]


# --- reconnection ----------------------------------------------------------------------------


async def test_reconnects_and_resubscribes_after_a_drop(autojump_clock: MockClock) -> None:
    prices = Seen(1)
    errors: list[BaseException] = []
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        layer.register_trade_callback(lambda t: prices(t.price))
        layer.register_error_callback(errors.append)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            sim.control.close_connections(code=1001, reason="going away")
            with trio.fail_after(30):
                await sim.control.wait_for(lambda st: st.connections_total == 2)
                assert layer.gateway is not None
                await layer.gateway._connections[0].wait_live()
            assert subscribed(sim) == ["btcusdt@trade"]
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            await prices.wait()
    assert prices == [100.0] and len(errors) == 1  # the drop was reported


async def test_gives_up_after_max_attempts_and_raises(autojump_clock: MockClock) -> None:
    errors: list[BaseException] = []
    config = GatewayConfig(reconnect=ReconnectConfig(initial=0.05, max_attempts=10))
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url, config=config)
        layer.register_error_callback(errors.append)
        await layer.subscribe_trades("BTCUSDT")
        expected = pytest.RaisesExc(ConnectionFailed, match="after 10 attempts")
        with pytest.RaisesGroup(expected, flatten_subgroups=True):
            async with running(layer):
                sim.control.refuse_connections(3600)
                sim.control.close_connections(abrupt=True)
                await trio.sleep(3600)
    assert isinstance(errors[-1], ConnectionFailed) and len(errors) == 11


# --- multi-symbol -------------------------------------------------------------------------------


async def test_many_symbols_share_one_connection(autojump_clock: MockClock) -> None:
    by_symbol: dict[str, list[float]] = {}
    trades = Seen(3)
    async with exchange(symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT")) as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        layer.register_trade_callback(trades)
        for sym in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
            await layer.subscribe_trades(sym)
            await layer.subscribe_kline(sym, "5m")
        async with running(layer):
            assert sim.control.stats().connections_open == 1
            for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT")):
                sim.control.inject_trade(sym, 100.0 + i, 1.0)
            await trades.wait()
    for t in trades:
        by_symbol.setdefault(t.symbol, []).append(t.price)
    assert by_symbol == {"BTCUSDT": [100.0], "ETHUSDT": [101.0], "BNBUSDT": [102.0]}


async def test_close_stops_run_and_can_be_called_twice(autojump_clock: MockClock) -> None:
    async with exchange() as sim:
        layer = WebSocketLayer(url=sim.ws_url)
        await layer.subscribe_trades("BTCUSDT")
        async with running(layer):
            pass
        await layer.close()
        assert not layer.is_running
        with trio.fail_after(5):
            await sim.control.wait_for(lambda st: st.connections_open == 0)

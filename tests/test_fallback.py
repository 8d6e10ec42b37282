"""Stops protected during outages: the REST price fallback fires a stop once, and only for
symbols with armed stops, against the embedded exchange on loopback."""

from __future__ import annotations

import logging

import pytest
import trio
from trio.testing import MockClock

from gateway import AggTrade, ConfigError, GapFilled, StopTriggered
from gateway.config import GatewayConfig
from tests._loopback import drain, exchange_and_gateway

_TWO = {"symbols": ("BTCUSDT", "ETHUSDT")}
_OPTS = {"streams": ("aggTrade",), "fallback_after": 5.0, "fallback_interval": 1.0}


async def test_a_stall_crossing_a_stop_fires_it_once_from_rest_and_never_again_live(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.runtime.fallback")
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(_TWO, **_OPTS) as (sim, gw):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", StopTriggered, buffer=10) as stops,
            gw.subscribe("BTCUSDT", [AggTrade, GapFilled], buffer=100) as live,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(live, 1)
            sim.control.stall()
            start = trio.current_time()
            sim.control.inject_trade("BTCUSDT", 94.0, 1.0)  # the market moves; no frame
            (trigger,) = await drain(stops, 1)
            elapsed = trio.current_time() - start
            # Detected within fallback_after + one check interval, polled in the next one.
            assert elapsed <= 5.0 + 2 * 1.0 + 0.5
            assert (trigger.position_id, trigger.trigger_price) == (pid, 94.0)
            assert gw.stats().symbols["BTCUSDT"].fallback_active is True
            await trio.sleep(3)  # more polls at the same crossing price: no new trigger
            sim.control.resume()
            sim.control.inject_trade("BTCUSDT", 93.0, 1.0)  # live, below the stop again
            got = await drain(live, 3)  # in id order: the backfilled 94.0, the gap's end,
            await trio.sleep(3)  # then the live 93.0 that was held until the gap was filled
        assert [type(e).__name__ for e in got] == ["AggTrade", "GapFilled", "AggTrade"]
        assert [(e.price, e.backfilled) for e in (got[0], got[2])] == [(94.0, True), (93.0, False)]
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        stats = gw.stats().symbols
        assert stats["BTCUSDT"].stops_fired == 1
        assert stats["BTCUSDT"].fallback_polls >= 1
        assert stats["BTCUSDT"].fallback_active is False  # no armed stops any more
        assert (stats["ETHUSDT"].fallback_polls, stats["ETHUSDT"].fallback_active) == (
            0, False,
        )  # fmt: skip
        polls = sim.control.rest_requests("ticker/price")
        assert len(polls) == stats["BTCUSDT"].fallback_polls
    starts = [r for r in caplog.records if "checking them against the REST price" in r.message]
    ends = [r for r in caplog.records if "fallback ended" in r.message]
    assert len(starts) == 1 and len(ends) == 1


async def test_the_fallback_ends_when_a_live_trade_arrives_and_stops_stay_armed(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_TWO, **_OPTS) as (sim, gw):
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=90.0)
        with gw.subscribe("BTCUSDT", AggTrade, buffer=100) as live:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(live, 1)
            sim.control.stall()
            await trio.sleep(10)  # no crossing: the fallback polls, nothing fires
            btc = gw.stats().symbols["BTCUSDT"]
            assert btc.fallback_active is True and btc.fallback_polls >= 3
            sim.control.resume()
            sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
            await drain(live, 1)  # nothing traded during the stall: no gap
            await trio.sleep(2)
            polls = gw.stats().symbols["BTCUSDT"].fallback_polls
            assert gw.stats().symbols["BTCUSDT"].fallback_active is False
            await trio.sleep(2)  # a live trade every now and then keeps it off
            sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
            await drain(live, 1)
            await trio.sleep(2)
            assert gw.stats().symbols["BTCUSDT"].fallback_polls == polls
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 0
        assert gw.stats().symbols["ETHUSDT"].fallback_polls == 0


async def test_while_reconnecting_the_rest_price_fires_the_stop_once(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    many = {"max_attempts": 30}  # 20 s of refusals never exhaust the jittered attempts
    async with exchange_and_gateway(_TWO, reconnect=many, **_OPTS) as (sim, gw):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "SHORT", 100.0, stop_price=105.0)
        with gw.subscribe("BTCUSDT", [AggTrade, GapFilled], buffer=100) as live:
            sim.control.inject_trade("BTCUSDT", 101.0, 1.0)
            await drain(live, 1)
            sim.control.refuse_connections(20.0)
            sim.control.close_connections(abrupt=True)  # the stream is down, reconnecting
            sim.control.inject_trade("BTCUSDT", 106.0, 1.0)
            await trio.sleep(9)
            assert gw._connections[0].snapshot().state in ("reconnecting", "connecting")
            assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 106.0)]
            await trio.sleep(90)  # reconnected by now (backoff with jitter, up to 30 s)
            sim.control.inject_trade("BTCUSDT", 107.0, 1.0)
            got = await drain(live, 3)  # the gap's 106.0, the live 107.0, the gap's end
            await trio.sleep(2)
        assert sorted(e.price for e in got if isinstance(e, AggTrade)) == [106.0, 107.0]
        assert [f.position_id for f in fired] == [pid]


async def test_on_a_zombie_connection_the_rest_price_fires_the_stop_once(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(_TWO, **_OPTS) as (sim, gw):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with gw.subscribe("BTCUSDT", StopTriggered, buffer=10) as stops:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await trio.sleep(1)
            assert sim.control.zombie() == 1  # pings answered, no market frame
            start = trio.current_time()
            sim.control.inject_trade("BTCUSDT", 94.0, 1.0)
            (trigger,) = await drain(stops, 1)
            assert trio.current_time() - start <= 5.0 + 2 * 1.0 + 0.5
            assert (trigger.position_id, trigger.trigger_price) == (pid, 94.0)
            sim.control.inject_trade("BTCUSDT", 93.0, 1.0)  # lower still, seen by REST only
            await trio.sleep(10)
        assert [f.position_id for f in fired] == [pid]


async def test_symbols_without_armed_stops_never_poll(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(_TWO, **_OPTS) as (sim, gw):
        sim.control.stall()
        await trio.sleep(30)
        assert sim.control.rest_requests("ticker/price") == []
        assert {s.fallback_polls for s in gw.stats().symbols.values()} == {0}


async def test_fallback_after_zero_disables_it(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(_TWO, streams=("aggTrade",), fallback_after=0) as (sim, gw):
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        sim.control.stall()
        sim.control.inject_trade("BTCUSDT", 94.0, 1.0)
        await trio.sleep(30)
        assert gw._fallback is None and sim.control.rest_requests("ticker/price") == []
        btc = gw.stats().symbols["BTCUSDT"]
        assert (btc.stops_fired, btc.fallback_polls, btc.fallback_active) == (0, 0, False)


async def test_polls_stay_inside_the_rest_weight_budget(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(_TWO, rest_weight_per_minute=10, **_OPTS) as (sim, gw):
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=90.0)
        sim.control.stall()
        await trio.sleep(125)
        times = [r.time for r in sim.control.rest_requests("ticker/price")]
        assert times  # it polls, weight 2 each: at most 5 a minute, not one a second
        for t in times:
            assert len([u for u in times if t <= u < t + 60]) <= 5
        assert gw.stats().rest.throttled > 0


async def test_failed_polls_are_reported_once_per_fallback(autojump_clock: MockClock) -> None:
    errors: list[BaseException] = []
    async with exchange_and_gateway(_TWO, rest_retries=0, **_OPTS) as (sim, gw):
        gw.on_error(errors.append)
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        sim.control.rest_down()
        sim.control.stall()
        await trio.sleep(20)
        rest_errors = [e for e in errors if "ticker/price" in str(e)]
        assert len(rest_errors) == 1
        assert len(sim.control.rest_requests("ticker/price")) >= 5  # it kept trying
        sim.control.rest_up()
        sim.control.inject_trade("BTCUSDT", 94.0, 1.0)  # during the stall: REST only
        await trio.sleep(3)
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 1


def test_fallback_settings_are_validated() -> None:
    cfg = GatewayConfig()
    assert (cfg.fallback_after, cfg.fallback_interval) == (5.0, 1.0)
    with pytest.raises(ConfigError, match="fallback_after"):
        GatewayConfig(symbols=("BTCUSDT",), fallback_after=-1.0)
    with pytest.raises(ConfigError, match="fallback_interval"):
        GatewayConfig(symbols=("BTCUSDT",), fallback_interval=0.0)

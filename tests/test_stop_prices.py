"""The specification of gateway/runtime/stop_prices.py: prices for the stop-loss book of
plain trades ``historicalTrades`` did not serve, from the aggregate trades that cover
them (``aggTrades`` by the gap's time window, then by ``fromId``); never published, and a
REST failure there is added to the result's error, never raised.

End to end through plain-trade gaps with a stop inside first, then plain calls on
`with_stop_prices` against the embedded exchange's REST port.
"""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing
from trio.testing import MockClock

from gateway import (
    GapDetected,
    GapFilled,
    GapUnfilled,
    Gateway,
    GatewayError,
    StopTriggered,
    Trade,
)
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.backoff import ReconnectPolicy
from gateway.runtime.backfill import Backfiller
from gateway.runtime.rest_client import RestGetter
from gateway.runtime.rest_weight import WeightBudget
from gateway.runtime.stop_prices import with_stop_prices
from gateway.simulator import Simulator
from tests._gaps import streams_on
from tests._loopback import drain, exchange, exchange_and_gateway, queued

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


# --- a plain-trade gap historicalTrades did not serve -------------------------------------


async def _plain_gap_with_a_dip(
    sim: Simulator, gw: Gateway, count: int, dip_at: int
) -> tuple[int, list[StopTriggered]]:
    """Arm a LONG stop at 95, trade at 99 live, drop ``count`` plain trades (99.0, but
    94.0 at offset ``dip_at``), then one live trade at 98: returns the first dropped id."""
    fired: list[StopTriggered] = []
    gw.on_stop_loss(fired.append)
    with gw.subscribe("BTCUSDT", Trade, buffer=10) as seen:
        sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
        await drain(seen, 1)
    ids = sim.control.drop_trades("BTCUSDT", count)
    for offset in range(count):
        await trio.sleep(0.0003)  # trade times inside milliseconds: the window's edges
        sim.control.inject_trade("BTCUSDT", 94.0 if offset == dip_at else 99.0, 1.0)
    await trio.sleep(0.0003)
    sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
    return ids[0], fired


async def test_a_plain_trade_gap_historical_trades_cannot_serve_still_fires_a_stop_once(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("trade",), rest_retries=2) as (sim, gw):
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        sim.control.fail_rest(500, count=3, path="historicalTrades")  # every attempt
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=100) as trades,
        ):
            first, fired = await _plain_gap_with_a_dip(sim, gw, 5, dip_at=2)
            detected, unfilled = await drain(gaps, 2)
            _marker_trade, live = await drain(trades, 2)
            await trio.sleep(1)
            assert queued(trades) == [] and queued(gaps) == []
        assert detected == GapDetected("BTCUSDT", "trade", first, first + 4, True)
        assert isinstance(unfilled, GapUnfilled)
        assert (unfilled.stream, unfilled.first, unfilled.last) == ("trade", first, first + 4)
        assert "HTTP 500" in unfilled.reason
        assert unfilled.reason.endswith("stops checked against 5 aggregate trades")
        assert (live.trade_id, live.price, live.backfilled) == (first + 5, 98.0, False)
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert [r.status for r in sim.control.rest_requests("historicalTrades")] == [500] * 3
        assert {r.status for r in sim.control.rest_requests("aggTrades")} == {200}
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 1


async def test_the_unserved_tail_of_a_plain_trade_gap_is_priced_from_agg_trades(
    autojump_clock: MockClock,
) -> None:
    options: dict[str, Any] = {"streams": ("trade",), "backfill_max_ids": 1000}
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=2000) as trades,
        ):
            first, fired = await _plain_gap_with_a_dip(sim, gw, 1500, dip_at=1200)
            _detected, unfilled = await drain(gaps, 2)
            got = (await drain(trades, 1002))[1:]  # after the marker
        assert unfilled == GapUnfilled(
            "BTCUSDT", "trade", first + 1000, first + 1499,
            "backfill_max_ids is 1000; stops checked against 500 aggregate trades",
        )  # fmt: skip
        assert [t.trade_id for t in got] == [*range(first, first + 1000), first + 1500]
        assert 94.0 not in {t.price for t in got}  # the dip is in the tail: never published
        await trio.sleep(1)
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]


async def test_a_plain_trade_gap_both_rest_endpoints_fail_ends_unfilled_and_fires_later(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    options: dict[str, Any] = {"streams": ("trade",), "rest_retries": 2,
                               "on_error": errors.append}  # fmt: skip
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        fired_once = trio.Event()
        gw.on_stop_loss(lambda _stop: fired_once.set())
        sim.control.fail_rest(500, count=3, path="historicalTrades")
        sim.control.fail_rest(503, count=3, path="aggTrades")
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            first, fired = await _plain_gap_with_a_dip(sim, gw, 5, dip_at=2)
            _detected, unfilled = await drain(gaps, 2)
        assert isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (first, first + 4)
        assert "HTTP 500" in unfilled.reason and "aggTrades: REST" in unfilled.reason
        assert "HTTP 503" in unfilled.reason and "stops checked" not in unfilled.reason
        assert [r.status for r in sim.control.rest_requests("aggTrades")][:3] == [503] * 3
        await streams_on(sim, gw, Trade)  # the gateway is up and streaming
        # the armed stop is not given up: the gap's prices are asked for again, and once
        # aggTrades answers (its three failures are used up) the stop fires, once
        with trio.fail_after(600):
            await fired_once.wait()
        await trio.testing.wait_all_tasks_blocked()  # the other callback has run too
        assert [f.trigger_price for f in fired] == [94.0]
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 1
    assert not [e for e in errors if not isinstance(e, GatewayError)]


async def test_agg_trade_prices_come_from_hour_windows_then_from_id_pages(
    autojump_clock: MockClock,
) -> None:
    send, receive = trio.open_memory_channel[BackfillResult](10)
    async with exchange(_ONE) as sim:
        sim.control.generate(trades=3000, symbol="BTCUSDT")
        sym = sim.market.symbol("BTCUSDT")
        now_ms = sym.last_trade_time // 1000
        last = sym.next_trade_id - 10
        first = last - 2400  # about 1600 aggregate trades: two fromId pages after the first
        covering = [a for a in sym.aggs if a[4] >= first and a[3] <= last]
        past = next(i for i, a in enumerate(sym.aggs) if a[3] > last)  # where paging stops
        sim.control.fail_rest(500, count=10, path="historicalTrades")
        backfiller = Backfiller(sim.rest_url, lambda _symbol, result: send.send_nowait(result),
                                retry=ReconnectPolicy(0.5, 2.0, 30.0, 0))  # fmt: skip
        request = BackfillRequest("BTCUSDT", "trade", first, last,
                                  after_time=now_ms - 7_200_000, before_time=now_ms)  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(backfiller.run)
            assert backfiller.request(request)
            with trio.fail_after(60):
                result = await receive.receive()
            nursery.cancel_scope.cancel()
        pages = sim.control.rest_requests("aggTrades")
    assert (result.missing_from, result.stop_rows) == (first, len(covering))
    prices = [a[1] / 100_000_000 for a in covering]
    assert result.stop_prices == (min(prices), max(prices))
    assert result.error == f"REST {sim.rest_url}/api/v3/historicalTrades: HTTP 500 after 1 attempts"
    # two empty hour windows, the one holding every trade, then fromId pages to `past`
    assert len(pages) == 2 + past // 1000 + 1 and {p.status for p in pages} == {200}


# --- a gap that ended unfilled under a gap storm ---------------------------------------


# Under a gap storm the weight budget is the limit: a gap that already ended unfilled is
# not worth historicalTrades pages (25 each) any more.
_STARVED: dict[str, Any] = {"streams": ("trade",), "rest_weight_per_minute": 60,
                            "hold_max_seconds": 1.0}  # fmt: skip


async def test_a_trade_gap_that_ended_unfilled_is_not_fetched_on_when_no_stop_needs_it(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, **_STARVED) as (sim, gw):
        with gw.subscribe("BTCUSDT", [*_GAPS, Trade], buffer=5000) as seen:
            first, _fired = await _plain_gap_with_a_dip(sim, gw, 3000, dip_at=2500)
            await trio.sleep(300)  # five minutes' budget: the old way sent all 3 pages
            got = queued(seen)
        detected, unfilled = (e for e in got if type(e) in _GAPS)
        assert (detected.first, detected.last) == (first, first + 2999)
        assert isinstance(unfilled, GapUnfilled) and "held past its bound" in unfilled.reason
        # The first page came in time and went out as a part (its last row stays with
        # the final result, which came after the gap ended): the rest is reported.
        assert (unfilled.first, unfilled.last) == (first + 999, first + 2999)
        assert [t.trade_id for t in got if isinstance(t, Trade)] == [
            first - 1, *range(first, first + 999), first + 3000]  # fmt: skip
        assert len(sim.control.rest_requests("historicalTrades")) == 1  # 2 of 3 pages shed
        assert sim.control.rest_requests("aggTrades") == []  # no stop: no pricing either
        rest = gw.stats().rest
        assert rest.shed >= 1 and rest.failed == 0


async def test_a_trade_gap_that_ended_unfilled_is_priced_from_agg_trades_for_an_armed_stop(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, **_STARVED) as (sim, gw):
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        at: list[float] = []
        gw.on_stop_loss(lambda _event: at.append(trio.current_time()))
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            start = trio.current_time()
            first, fired = await _plain_gap_with_a_dip(sim, gw, 3000, dip_at=2500)
            _detected, unfilled = await drain(gaps, 2)
            await trio.sleep(300)
        assert isinstance(unfilled, GapUnfilled) and unfilled.first == first + 999
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert at[0] - start < 90  # in the second minute, not after the third page
        assert len(sim.control.rest_requests("historicalTrades")) == 1
        assert {r.status for r in sim.control.rest_requests("aggTrades")} == {200}
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 1


# --- plain calls on with_stop_prices --------------------------------------------------


def _getter(url: str) -> RestGetter:
    return RestGetter(url, timeout=2.0, budget=WeightBudget(6000),
                      retry=ReconnectPolicy(0.5, 2.0, 30.0, 0), rng=random.Random(7))  # fmt: skip


async def test_a_result_with_nothing_unserved_or_no_time_window_is_left_as_it_is(
    autojump_clock: MockClock,
) -> None:
    rest = _getter("http://127.0.0.1:9")  # never asked
    served = BackfillResult(BackfillRequest("BTCUSDT", "trade", 1, 5, after_time=1_000,
                                            before_time=2_000), ())  # fmt: skip
    windowless = BackfillResult(BackfillRequest("BTCUSDT", "trade", 1, 5), (),
                                error="HTTP 500 after 1 attempts", missing_from=1)  # fmt: skip
    async with rest.open() as client:
        assert await with_stop_prices(rest, client, served, 1000) is served
        assert await with_stop_prices(rest, client, windowless, 1000) is windowless
    assert rest.requests_sent == 0


async def test_a_gap_window_with_no_aggregate_trade_says_so_and_prices_nothing(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        sim.control.generate(trades=10)
        rest = _getter(str(sim.rest_url))
        # Two hours of 1970: long before any trade of the exchange.
        request = BackfillRequest("BTCUSDT", "trade", 1, 5, after_time=1_000,
                                  before_time=1_000 + 7_200_000 - 1)  # fmt: skip
        result = BackfillResult(request, (), error="HTTP 500 after 1 attempts", missing_from=1)
        async with rest.open() as client:
            priced = await with_stop_prices(rest, client, result, 1000)
        pages = sim.control.rest_requests("aggTrades")
    assert (priced.stop_prices, priced.stop_rows, priced.rest_failed) == (None, 0, False)
    assert priced.error == (
        "HTTP 500 after 1 attempts; aggTrades: no aggregate trade in the gap's time window"
    )
    assert len(pages) == 2  # one request per hour of the window


async def test_a_rest_failure_while_pricing_is_added_to_the_error_never_raised(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        sim.control.rest_down()
        rest = _getter(str(sim.rest_url))
        request = BackfillRequest("BTCUSDT", "trade", 1, 5, after_time=1_000, before_time=2_000)
        result = BackfillResult(request, (), error="HTTP 503 after 1 attempts", missing_from=1)
        async with rest.open() as client:
            priced = await with_stop_prices(rest, client, result, 1000)
    assert (priced.stop_prices, priced.rest_failed) == (None, True)
    assert priced.error == (
        f"HTTP 503 after 1 attempts; aggTrades: REST {sim.rest_url}/api/v3/aggTrades: "
        "HTTP 503 after 1 attempts"
    )

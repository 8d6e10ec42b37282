"""Every gap ends in `GapFilled` or `GapUnfilled`: REST backfill against the embedded
exchange on loopback (retries, budgets, weights, depth snapshot backoff)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from actors import Mailbox, Overflow
from gateway import (
    AggTrade,
    ConfigError,
    GapDetected,
    GapFilled,
    GapUnfilled,
    Gateway,
    GatewayError,
    StopTriggered,
    Trade,
    open_gateway,
)
from gateway.config import GatewayConfig, config_from_dict
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.backoff import ReconnectPolicy
from gateway.core.candles import kline_from_rest
from gateway.core.orderbook import SyncState
from gateway.runtime.backfill import Backfiller
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime
from gateway.simulator import Simulator
from gateway.stats import HoldStats
from tests._loopback import dead_port, drain, exchange, exchange_and_gateway, flow, queued

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


async def _gap_of(sim: Simulator, count: int, price: float = 99.0) -> range:
    """Drop the next ``count`` trades of BTCUSDT (one aggTrade each), then a live marker;
    returns the aggTrade ids dropped."""
    sim.control.drop_trades("BTCUSDT", count)
    first = sim.market.symbol("BTCUSDT").next_agg_id
    ids = range(first, first + count)
    for _ in range(count):
        sim.control.inject_trade("BTCUSDT", price, 1.0)
    sim.control.inject_trade("BTCUSDT", price, 1.0)
    return ids


async def _marker(sim: Simulator, gw: Gateway) -> None:
    """One trade at 99.0, waited for until the gateway handled it: the ids before a gap."""
    with gw.subscribe("BTCUSDT", [Trade, AggTrade], buffer=10) as seen:
        sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
        await drain(seen, 1)


async def test_a_25000_id_gap_is_filled_completely_and_a_stop_inside_it_fires_once(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(_ONE, streams=("aggTrade",)) as (sim, gw):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", AggTrade, buffer=30_000) as aggs,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(aggs, 1))[0].agg_trade_id
            sim.control.drop_trades("BTCUSDT", 25_000)
            for offset in range(25_000):  # the crossing trade hides at offset 24,500
                sim.control.inject_trade("BTCUSDT", 94.0 if offset == 24_500 else 99.0, 1.0)
            sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
            detected, filled = await drain(gaps, 2)
            got = await drain(aggs, 25_001)
        assert detected == GapDetected("BTCUSDT", "aggTrade", first + 1, first + 25_000, True)
        assert filled == GapFilled("BTCUSDT", "aggTrade", first + 1, first + 25_000, 25_000)
        backfilled, live = got[:-1], got[-1]  # the live one was held behind the gap
        assert not live.backfilled and all(a.backfilled for a in backfilled)
        assert [a.agg_trade_id for a in got] == list(range(first + 1, first + 25_002))
        assert backfilled[24_500].price == 94.0
        await trio.sleep(1)
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert gw.stats().symbols["BTCUSDT"].backfilled == 25_000
        pages = sim.control.rest_requests("aggTrades")
        assert len(pages) == 25 and {r.status for r in pages} == {200}


@pytest.mark.parametrize("fault", ["500", "503", "timeout", "429"])
async def test_a_failed_first_request_is_retried_and_the_gap_filled(
    autojump_clock: MockClock, fault: str
) -> None:
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), rest_timeout=2.0) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            if fault == "500":
                sim.control.fail_rest(500, count=1, path="/api/v3/aggTrades")
            elif fault == "timeout":
                sim.control.hang_rest(count=1, path="aggTrades")
            elif fault == "429":
                sim.control.fail_rest(429, count=1, path="aggTrades", retry_after=7)
            else:
                sim.control.fail_rest(503, count=1)  # any path
            ids = await _gap_of(sim, 3)
            detected, filled = await drain(gaps, 2)
        assert detected.backfilling
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 3)
        first, second = sim.control.rest_requests("aggTrades")
        assert (first.status, second.status) == (
            {"500": 500, "503": 503, "timeout": 0, "429": 429}[fault], 200,
        )  # fmt: skip
        if fault == "429":
            assert second.time - first.time >= 7.0  # Retry-After was honoured
        if fault == "timeout":
            assert second.time - first.time >= 2.0  # the client's timeout, then backoff


async def test_rest_down_ends_the_gap_in_gap_unfilled_with_its_exact_range(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), rest_retries=2) as (sim, gw):
        with gw.subscribe("BTCUSDT", [*_GAPS, AggTrade], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            sim.control.rest_down()
            ids = await _gap_of(sim, 3)
            events = await drain(sub, 3)  # the gap, the live marker, its end
        detected, unfilled = (e for e in events if not isinstance(e, AggTrade))
        assert (detected.first, detected.last, detected.backfilling) == (ids[0], ids[-1], True)
        assert isinstance(unfilled, GapUnfilled)
        assert (unfilled.stream, unfilled.first, unfilled.last) == ("aggTrade", ids[0], ids[-1])
        assert "503" in unfilled.reason
        assert [r.status for r in sim.control.rest_requests("aggTrades")] == [503] * 3
        rest = gw.stats().rest
        assert (rest.requests, rest.retries, rest.failed) == (3, 2, 1)


@pytest.mark.parametrize(("streams", "path"), [(("aggTrade",), "aggTrades"),
                                                (("trade",), "historicalTrades")])
async def test_a_malformed_rest_answer_ends_the_gap_in_gap_unfilled_and_nothing_escapes(
    autojump_clock: MockClock, streams: tuple[str, ...], path: str
) -> None:
    errors: list[BaseException] = []
    async with exchange_and_gateway(_ONE, streams=streams, on_error=errors.append) as (sim, gw):
        kind = AggTrade if streams == ("aggTrade",) else Trade
        with gw.subscribe("BTCUSDT", [*_GAPS, kind], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            sim.control.corrupt_rest(count=10, path=path)  # 200s the client cannot read
            ids = await _gap_of(sim, 3)
            events = await drain(sub, 3)  # the gap, the live marker, its end
        unfilled = events[-1] if isinstance(events[-1], GapUnfilled) else events[1]
        assert isinstance(unfilled, GapUnfilled) and unfilled.last - unfilled.first + 1 == len(ids)
        await streams_on(sim, gw, kind)  # the gateway is up and streaming
    assert not [e for e in errors if not isinstance(e, GatewayError)]


async def streams_on(sim: Simulator, gw: Gateway, kind: type) -> None:
    """A trade injected now reaches a subscriber."""
    with gw.subscribe("BTCUSDT", kind, buffer=10) as sub:
        sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
        assert (await drain(sub, 1))[0].price == 98.0


async def test_a_refused_rest_port_ends_the_gap_in_gap_unfilled(autojump_clock: MockClock) -> None:
    async with (
        exchange(_ONE) as sim,
        open_gateway(
            url=sim.ws_url, rest_url=f"http://127.0.0.1:{dead_port()}", symbols=("BTCUSDT",),
            streams=("aggTrade",), rest_retries=1,
        ) as gw,  # fmt: skip
    ):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            ids = await _gap_of(sim, 2)
            detected, unfilled = await drain(gaps, 2)
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (ids[0], ids[-1])
        assert "ConnectError" in unfilled.reason
        rest = gw.stats().rest
        assert (rest.requests, rest.retries, rest.failed) == (2, 1, 1)  # retried once


async def test_a_gap_beyond_the_budget_is_filled_up_to_it_and_the_rest_reported(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), backfill_max_ids=1500) as (
        sim,
        gw,
    ):
        with gw.subscribe("BTCUSDT", [*_GAPS, AggTrade], buffer=5000) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(sub, 1))[0].agg_trade_id
            await _gap_of(sim, 2000)
            events = await drain(sub, 1 + 1500 + 1 + 1)  # the live one held behind the gap
        kinds = [type(e) for e in events]
        assert kinds.count(GapDetected) == 1 and kinds.count(GapFilled) == 0
        assert events[-2] == GapUnfilled(
            "BTCUSDT", "aggTrade", first + 1501, first + 2000, "backfill_max_ids is 1500"
        )
        assert events[-1].agg_trade_id == first + 2001 and not events[-1].backfilled
        filled = [e.agg_trade_id for e in events if isinstance(e, AggTrade)][:-1]
        assert filled == list(range(first + 1, first + 1501))


async def test_a_500_trade_gap_is_filled_from_historical_trades_and_a_stop_inside_fires_once(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(_ONE, streams=("trade",)) as (sim, gw):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=1000) as trades,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(trades, 1))[0].trade_id
            ids = sim.control.drop_trades("BTCUSDT", 500)
            for offset in range(500):  # the crossing trade hides at offset 250
                sim.control.inject_trade("BTCUSDT", 94.0 if offset == 250 else 99.0, 1.0)
            sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
            detected, filled = await drain(gaps, 2)
            got = await drain(trades, 501)
        assert ids == range(first + 1, first + 501)
        assert detected == GapDetected("BTCUSDT", "trade", first + 1, first + 500, True)
        assert filled == GapFilled("BTCUSDT", "trade", first + 1, first + 500, 500)
        live = [t for t in got if not t.backfilled]
        backfilled = [t for t in got if t.backfilled]
        assert [(t.trade_id, t.price) for t in live] == [(first + 501, 98.0)]
        assert live[0].receive_ns > 0
        assert [t.trade_id for t in backfilled] == list(ids)
        assert backfilled[250].price == 94.0 and {t.receive_ns for t in backfilled} == {0}
        await trio.sleep(1)
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert gw.stats().symbols["BTCUSDT"].backfilled == 500
        (page,) = sim.control.rest_requests("historicalTrades")
        assert page.status == 200
        assert gw.stats().rest.used_weight >= 25
        assert not sim.control.rest_requests("aggTrades")


async def test_a_plain_trade_gap_is_paged_by_1000_ids(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(_ONE, streams=("trade",)) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            ids = sim.control.drop_trades("BTCUSDT", 2500)
            for _ in range(2501):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            _detected, filled = await drain(gaps, 2)
        assert filled == GapFilled("BTCUSDT", "trade", ids[0], ids[-1], 2500)
        pages = sim.control.rest_requests("historicalTrades")
        assert len(pages) == 3 and {r.status for r in pages} == {200}


async def test_a_plain_trade_gap_older_than_the_exchange_history_is_reported_unfilled(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(
        {**_ONE, "trade_history": 1000}, streams=("trade",)
    ) as (sim, gw):  # fmt: skip
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            ids = sim.control.drop_trades("BTCUSDT", 1500)
            for _ in range(1501):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            detected, unfilled = await drain(gaps, 2)
        assert isinstance(detected, GapDetected) and detected.backfilling
        assert unfilled == GapUnfilled(
            "BTCUSDT", "trade", ids[0], ids[-1], f"the exchange does not serve trade id "
            f"{ids[0]}; stops checked against 1500 aggregate trades",  # aggTrades still has them
        )  # fmt: skip


async def test_a_plain_trade_gap_without_a_rest_url_is_reported_unfilled_at_once(
    autojump_clock: MockClock,
) -> None:
    async with (
        exchange(_ONE) as sim,
        open_gateway(url=sim.ws_url, rest_url="", symbols=("BTCUSDT",), streams=("trade",)) as gw,
    ):
        with gw.subscribe("BTCUSDT", [*_GAPS, Trade], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            first = sim.market.symbol("BTCUSDT").next_trade_id
            await _gap_of(sim, 2)
            detected, unfilled, _live = await drain(sub, 3)
        assert detected == GapDetected("BTCUSDT", "trade", first, first + 1, False)
        assert unfilled == GapUnfilled(
            "BTCUSDT", "trade", first, first + 1, "no REST endpoint (rest_url is empty)"
        )
        assert not sim.control.rest_requests()


async def test_a_subscriber_sees_strictly_increasing_trade_ids_across_a_gap(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("trade",)) as (sim, gw):
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=1000) as trades,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(trades, 1))[0].trade_id
            sim.control.drop_trades("BTCUSDT", 500)
            for _ in range(500 + 20):  # 20 live trades after the gap
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            _detected, filled = await drain(gaps, 2)
            got = await drain(trades, 520)
        assert filled == GapFilled("BTCUSDT", "trade", first + 1, first + 500, 500)
        assert [t.trade_id for t in got] == list(range(first + 1, first + 521))
        assert [t.backfilled for t in got] == [True] * 500 + [False] * 20
        symbol = gw.stats().symbols["BTCUSDT"]
        assert (symbol.held, symbol.hold_overflows) == (0, 0)


async def test_a_stop_crossed_by_a_held_live_trade_fires_before_the_gap_is_filled(
    autojump_clock: MockClock,
) -> None:
    fired = trio.Event()
    async with exchange_and_gateway(_ONE, streams=("trade",), rest_timeout=5.0) as (sim, gw):
        gw.on_stop_loss(lambda _trigger: fired.set())
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=1000) as trades,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(trades, 1))[0].trade_id
            sim.control.hang_rest(count=1, path="historicalTrades")  # the fill takes 5 s+
            sim.control.drop_trades("BTCUSDT", 100)
            for _ in range(100):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            sim.control.inject_trade("BTCUSDT", 94.0, 1.0)  # live, held, and crosses
            start = trio.current_time()
            with trio.fail_after(60):
                await fired.wait()
            assert trio.current_time() - start < 5.0  # the stop did not wait for REST
            assert [type(e) for e in queued(gaps)] == [GapDetected]
            assert queued(trades) == []  # the live trade is held behind the gap
            (_filled,) = await drain(gaps, 1)
            got = await drain(trades, 101)
        assert [t.trade_id for t in got] == list(range(first + 1, first + 102))
        assert got[-1].price == 94.0 and not got[-1].backfilled


@pytest.mark.parametrize("bound", ["count", "time"])
async def test_a_hold_past_its_bound_releases_the_live_trades_and_counts_it(
    autojump_clock: MockClock, bound: str
) -> None:
    options: dict[str, Any] = {"streams": ("trade",), "rest_timeout": 30.0,
                               "hold_overflow": "late"}  # fmt: skip
    options.update({"hold_max_events": 3} if bound == "count" else {"hold_max_seconds": 1.0})
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with (
            gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=1000) as trades,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(trades, 1))[0].trade_id
            sim.control.hang_rest(count=1, path="historicalTrades")  # the fill takes 30 s+
            sim.control.drop_trades("BTCUSDT", 10)
            for _ in range(10 + 5):  # 5 live trades after the gap
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            start = trio.current_time()
            live = await drain(trades, 5)
            waited = trio.current_time() - start
            assert [type(e) for e in queued(gaps)] == [GapDetected]
            (_filled,) = await drain(gaps, 1)
            late = await drain(trades, 10)
        assert [t.trade_id for t in live] == list(range(first + 11, first + 16))
        assert [t.trade_id for t in late] == list(range(first + 1, first + 11))
        assert all(t.backfilled for t in late) and not any(t.backfilled for t in live)
        assert 1.0 <= waited < 30.0 if bound == "time" else waited < 1.0
        assert gw.stats().symbols["BTCUSDT"].hold_overflows == 1


@pytest.mark.parametrize("bound", ["count", "time"])
async def test_by_default_a_hold_past_its_bound_ends_its_gap_unfilled_and_ids_never_go_back(
    autojump_clock: MockClock, bound: str
) -> None:
    options: dict[str, Any] = {"streams": ("trade",), "rest_timeout": 30.0}
    options.update({"hold_max_events": 3} if bound == "count" else {"hold_max_seconds": 1.0})
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        gw.open_position("BTCUSDT", "long", entry_price=100.0, quantity=1.0, stop_price=95.0)
        with (
            gw.subscribe("BTCUSDT", [*_GAPS, StopTriggered], buffer=100) as gaps,
            gw.subscribe("BTCUSDT", Trade, buffer=1000) as trades,
        ):
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(trades, 1))[0].trade_id
            sim.control.hang_rest(count=1, path="historicalTrades")  # the fill takes 30 s+
            sim.control.drop_trades("BTCUSDT", 10)
            for i in range(10 + 5):  # a crossing price inside the gap; 5 live trades after
                sim.control.inject_trade("BTCUSDT", 90.0 if i == 4 else 99.0, 1.0)
            live = await drain(trades, 5)
            detected, unfilled = await drain(gaps, 2)
            fired = await drain(gaps, 1)  # from the rows, once REST answers at last
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            (after,) = await drain(trades, 1)
            leftover = queued(trades)
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (first + 1, first + 10)
        assert "held past its bound" in unfilled.reason
        assert [t.trade_id for t in live] == list(range(first + 11, first + 16))
        assert after.trade_id == first + 16 and not leftover  # the rows: never published
        assert isinstance(fired[0], StopTriggered) and fired[0].trigger_price == 90.0
        assert gw.stats().symbols["BTCUSDT"].hold_overflows == 1


async def test_two_gaps_in_one_hold_ending_out_of_order_still_publish_increasing_ids(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = SymbolRuntime(
        "BTCUSDT", publisher, request_backfill=lambda _req: True, hold_max_events=100
    )

    def trade(i: int, backfilled: bool = False) -> Trade:
        return Trade("BTCUSDT", i, 99.0, 1.0, 0, False, 0, 0 if backfilled else 1, backfilled)

    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 5, 6, 9, 10):  # 2..4 and 7..8 missing
            state.handle(trade(i))
        state.on_backfill(BackfillResult(BackfillRequest("BTCUSDT", "trade", 7, 8),
                                         (trade(7, True), trade(8, True))))  # fmt: skip
        state.on_backfill(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4),
                                         tuple(trade(i, True) for i in (2, 3, 4))))  # fmt: skip
        events = sub.drain_nowait(100)
    assert [e.trade_id for e in events if isinstance(e, Trade)] == list(range(1, 11))
    seen = [e.trade_id if isinstance(e, Trade) else (type(e).__name__, e.first) for e in events]
    # Each gap's ending comes after its own rows, even when its REST answer came first.
    assert seen == [1, ("GapDetected", 2), ("GapDetected", 7), 2, 3, 4, ("GapFilled", 2),
                    5, 6, 7, 8, ("GapFilled", 7), 9, 10]  # fmt: skip
    assert state.snapshot().held == 0 and state.machine.holds.deadline() is None


async def test_holding_can_be_turned_off() -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True)
    with publisher.subscribe(kinds=[Trade]) as sub:
        state.handle(Trade("BTCUSDT", 1, 99.0, 1.0, 0, False, 0))
        state.handle(Trade("BTCUSDT", 5, 99.0, 1.0, 0, False, 0))  # 2..4 missing
        assert [t.trade_id for t in sub.drain_nowait(10)] == [1, 5]  # hold_max_events 0


async def test_backfilled_agg_trades_and_candles_are_marked_and_live_ones_not(
    autojump_clock: MockClock,
) -> None:
    send, receive = trio.open_memory_channel[BackfillResult](10)
    async with exchange(_ONE) as sim:
        for _ in range(10):
            sim.control.generate(trades=3)
        backfiller = Backfiller(sim.rest_url, lambda _symbol, result: send.send_nowait(result))
        first = sim.market.symbol("BTCUSDT").next_agg_id - 10
        async with trio.open_nursery() as nursery:
            await nursery.start(backfiller.run)
            assert backfiller.request(BackfillRequest("BTCUSDT", "aggTrade", first, first + 9))
            with trio.fail_after(60):
                aggs = await receive.receive()
            nursery.cancel_scope.cancel()
    assert aggs.error is None and len(aggs.events) == 10
    assert all(isinstance(e, AggTrade) and e.backfilled for e in aggs.events)
    assert AggTrade("BTCUSDT", 1, 1.0, 1.0, 1, 1, 0, False, 0, 5).backfilled is False
    assert Trade("BTCUSDT", 1, 1.0, 1.0, 0, False, 0, 5).backfilled is False
    row = [0, "1", "2", "0.5", "1.5", "10", 999, "15", 3, "4", "6", "0"]
    assert kline_from_rest("BTCUSDT", "1s", row, 5000, backfilled=True).backfilled
    assert not kline_from_rest("BTCUSDT", "1s", row, 5000).backfilled


async def test_the_weight_budget_spreads_pages_over_minutes_without_a_429(
    autojump_clock: MockClock,
) -> None:
    options: dict[str, Any] = {"streams": ("aggTrade",), "rest_weight_per_minute": 40,
                               "hold_max_seconds": 600.0}  # fmt: skip
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            ids = await _gap_of(sim, 20_000)  # 20 pages of weight 4: two minutes' budget
            with trio.fail_after(600):
                _detected, filled = await gaps.receive(), await gaps.receive()
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 20_000)
        pages = sim.control.rest_requests("aggTrades")
        assert len(pages) == 20 and {r.status for r in pages} == {200}
        for i, page in enumerate(pages):  # never more than 10 pages in any 60 s
            assert sum(1 for p in pages[i:] if p.time < page.time + 60) <= 10
        assert pages[-1].time - pages[0].time >= 60


async def test_a_failing_depth_snapshot_is_retried_with_backoff_not_once_per_diff(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("depth@100ms",)) as (sim, gw):
        sim.control.fail_rest(500, count=8, path="depth")
        for _ in range(300):  # 30 s of diffs, one every 100 ms
            sim.control.generate(trades=5)
            await trio.sleep(0.1)
            sim.control.tick()
        await trio.sleep(1)
        snaps = sim.control.rest_requests("depth")
        assert [r.status for r in snaps] == [500] * 8 + [200]  # one at a time, then synced
        diffs = gw.stats().symbols["BTCUSDT"].events["DepthUpdate"]
        assert diffs >= 250 and len(snaps) * 25 < diffs
        gaps = [b.time - a.time for a, b in itertools.pairwise(snaps)]
        assert gaps[4] >= 1.0  # five tries failed for good: the symbol waits before a sixth
        book = gw.order_book("BTCUSDT")
        assert book is not None and book.state is SyncState.SYNCED


async def test_a_depth_snapshot_that_keeps_failing_is_asked_for_far_less_than_per_diff(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("depth@100ms",)) as (sim, gw):
        sim.control.fail_rest(500, count=10_000, path="depth")
        for _ in range(300):  # 30 s of diffs, one every 100 ms
            sim.control.generate(trades=5)
            await trio.sleep(0.1)
            sim.control.tick()
        snaps = sim.control.rest_requests("depth")
        symbol = gw.stats().symbols["BTCUSDT"]
        assert symbol.events["DepthUpdate"] >= 250
        assert 5 <= len(snaps) <= 30 and {r.status for r in snaps} == {500}
        assert symbol.snapshot_failures >= 2 and symbol.order_book != "synced"


async def test_a_gap_older_than_the_exchange_history_is_reported_unfilled_whole(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(
        {**_ONE, "agg_history": 1000}, streams=("aggTrade",)
    ) as (sim, gw):  # fmt: skip
        with gw.subscribe("BTCUSDT", [*_GAPS, AggTrade], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            ids = await _gap_of(sim, 1500)  # REST keeps the last 1000: the start is gone
            events = await drain(sub, 3)
        detected, unfilled = (e for e in events if not isinstance(e, AggTrade))
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (ids[0], ids[-1])
        assert unfilled.reason == f"the exchange does not serve aggTrade id {ids[0]}"


async def test_the_used_weight_header_holds_pages_back_until_the_next_minute(
    autojump_clock: MockClock,
) -> None:
    import httpx

    options: dict[str, Any] = {"streams": ("aggTrade",), "hold_max_seconds": 600.0}
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await _marker(sim, gw)
            async with httpx.AsyncClient(base_url=sim.rest_url) as client:
                for _ in range(23):  # another client on our IP spends 5750 of the 6000
                    await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
            assert sim.control.rest_used_weight >= 5750
            ids = await _gap_of(sim, 3000)
            with trio.fail_after(300):
                _detected, filled = await gaps.receive(), await gaps.receive()
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 3000)
        pages = sim.control.rest_requests("aggTrades")
        assert [p.status for p in pages] == [200] * 3  # never a 429
        assert int(pages[1].time // 60) > int(pages[0].time // 60)  # waited for a new minute
        rest = gw.stats().rest
        assert rest.requests == 3 and rest.throttled >= 1 and rest.retries == 0


@pytest.mark.parametrize(
    ("key", "value"),
    [("backfill_max_ids", 0), ("rest_weight_per_minute", 0), ("rest_timeout", 0.0),
     ("rest_retries", -1), ("rest_retries", 1.5), ("backfill_max_ids", 2.0),
     ("hold_max_events", -1), ("hold_max_seconds", 0.0), ("hold_overflow", "drop")],
)  # fmt: skip
def test_backfill_settings_are_validated_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        GatewayConfig(**{key: value})
    with pytest.raises(ConfigError, match=key):
        config_from_dict({key: value})


def test_backfill_settings_defaults() -> None:
    c = GatewayConfig()
    assert (c.backfill_max_ids, c.rest_weight_per_minute, c.rest_timeout, c.rest_retries) == (
        100_000, 5000, 10.0, 4,
    )  # fmt: skip


async def test_a_result_a_full_mailbox_refuses_still_ends_its_gap() -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher)
    state.mailbox = Mailbox(1, Overflow.DROP_NEWEST)
    state.mailbox.put_nowait("busy")
    with publisher.subscribe(kinds=[GapUnfilled]) as sub:
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "aggTrade", 5, 9), ()))
        (unfilled,) = sub.drain_nowait(10)
    assert (unfilled.first, unfilled.last) == (5, 9) and "mailbox was full" in unfilled.reason



async def test_a_candle_gap_is_filled_over_rest_and_ends_in_gap_filled(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("kline_1s",)) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await flow(sim, 3)
            sim.control.stall(3)  # the candles that close meanwhile never reach us
            await flow(sim, 3)
            await flow(sim, 3)
            detected, filled = await drain(gaps, 2)
        assert isinstance(detected, GapDetected) and detected.backfilling
        assert isinstance(filled, GapFilled)
        assert (filled.stream, filled.first, filled.last) == (
            "kline_1s", detected.first, detected.last,
        )  # fmt: skip
        assert filled.count == (detected.last + 1 - detected.first) // 1000


@pytest.mark.parametrize("kind", ["aggTrade", "trade", "kline", "depth"])
async def test_a_malformed_rest_body_is_a_failed_result_for_every_kind(
    autojump_clock: MockClock, kind: str
) -> None:
    send, receive = trio.open_memory_channel[BackfillResult](10)
    async with exchange(_ONE) as sim:
        sim.control.generate(trades=3)
        path = {"aggTrade": "aggTrades", "trade": "historicalTrades"}.get(kind, kind + "s")
        sim.control.corrupt_rest(count=10, path=path.replace("depths", "depth"))  # HTTP 200
        backfiller = Backfiller(sim.rest_url, lambda _symbol, result: send.send_nowait(result))
        now_ms = sim.market.symbol("BTCUSDT").last_trade_time // 1000
        request = BackfillRequest("BTCUSDT", kind, 1, 3) if kind != "kline" else BackfillRequest(
            "BTCUSDT", "kline", now_ms - 180_000, now_ms, interval="1m")  # fmt: skip
        async with trio.open_nursery() as nursery:
            await nursery.start(backfiller.run)
            assert backfiller.request(request)
            with trio.fail_after(60):
                result = await receive.receive()  # a result, not an exception in the nursery
            nursery.cancel_scope.cancel()
    assert result.error is not None and result.events == ()


async def test_the_backfill_queue_is_a_real_bound_while_rest_hangs(
    autojump_clock: MockClock,
) -> None:
    results: list[BackfillResult] = []
    async with exchange(_ONE) as sim:
        sim.control.generate(trades=3)
        sim.control.hang_rest(count=100)  # nothing is ever answered within the timeout
        backfiller = Backfiller(
            sim.rest_url, lambda _symbol, result: results.append(result), concurrency=2,
            queue_size=3, timeout=30.0,
        )  # fmt: skip
        accepted = []
        async with trio.open_nursery() as nursery:
            await nursery.start(backfiller.run)
            for i in range(1, 11):
                accepted.append(backfiller.request(BackfillRequest("BTCUSDT", "aggTrade", i, i)))
                await trio.testing.wait_all_tasks_blocked()
            assert results == []  # nothing answered yet
            nursery.cancel_scope.cancel()
    # 2 in flight, 1 taken off the queue waiting for a slot, 3 queued: the rest refused
    assert accepted == [True] * 6 + [False] * 4


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


async def test_a_stop_crossed_in_a_gap_rest_could_not_serve_fires_once_rest_is_back(
    autojump_clock: MockClock,
) -> None:
    """REST down longer than the retries: the gap ends unfilled at once (subscribers go
    on), but an armed stop crossed inside it is not given up: its prices are asked for
    again, later and later, and the stop fires once REST answers; nothing more is
    published."""
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), rest_retries=1) as (sim, gw):
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        fired: list[StopTriggered] = []
        first_fire = trio.Event()

        def on_stop(stop: StopTriggered) -> None:
            fired.append(stop)
            first_fire.set()

        gw.on_stop_loss(on_stop)
        with gw.subscribe("BTCUSDT", [*_GAPS, AggTrade], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            sim.control.rest_down()
            sim.control.drop_trades("BTCUSDT", 3)
            for price in (99.0, 94.0, 99.0, 98.0):  # the dip is the gap's second id
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            events = await drain(sub, 3)  # GapDetected, GapUnfilled, then the live 98
            unfilled = [e for e in events if isinstance(e, GapUnfilled)]
            assert len(unfilled) == 1 and "503" in unfilled[0].reason, events
            await trio.sleep(30)  # REST still down: asked again, still nothing
            assert fired == [] and queued(sub) == []
            asked = len(sim.control.rest_requests("aggTrades"))
            assert asked > 2  # the first request and its retry, then the stop's re-asks
            sim.control.rest_up()
            with trio.fail_after(600):
                await first_fire.wait()
            await trio.sleep(120)  # nothing more comes: fired once, no row published
            assert queued(sub) == []
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert gw.stats().symbols["BTCUSDT"].stops_fired == 1


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


async def test_one_bound_on_events_held_by_all_symbols_together(
    autojump_clock: MockClock,
) -> None:
    options: dict[str, Any] = {"streams": ("trade",), "rest_timeout": 30.0,
                               "hold_max_total": 5}  # fmt: skip
    two = {"symbols": ("BTCUSDT", "ETHUSDT")}
    async with exchange_and_gateway(two, **options) as (sim, gw):
        with (
            gw.subscribe(None, _GAPS, buffer=100) as gaps,
            gw.subscribe(None, Trade, buffer=1000) as trades,
        ):
            for sym in two["symbols"]:
                sim.control.inject_trade(sym, 99.0, 1.0)
            await drain(trades, 2)
            sim.control.hang_rest(count=2, path="historicalTrades")  # fills take 30 s+
            for sym in two["symbols"]:  # BTCUSDT holds 3 live trades, ETHUSDT passes 5
                sim.control.drop_trades(sym, 2)
                for _ in range(2 + 3):
                    sim.control.inject_trade(sym, 99.0, 1.0)
            released = await drain(trades, 3)
            detected = await drain(gaps, 3)
            holds = gw.stats().holds
        assert [t.symbol for t in released] == ["ETHUSDT"] * 3
        unfilled = [e for e in detected if isinstance(e, GapUnfilled)]
        assert [e.symbol for e in unfilled] == ["ETHUSDT"]
        assert "5 events held by all symbols" in unfilled[0].reason
        assert holds == HoldStats(held=3, peak=6, limit=5, overflows=1)

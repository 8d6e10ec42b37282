"""Every gap ends in `GapFilled` or `GapUnfilled`: REST backfill against the embedded
exchange on loopback (budgets, holds, depth snapshot backoff). The REST GET's retries are
specified in test_rest_client.py, the weight budget in test_rest_weight.py, the stop
prices of plain trades REST did not serve in test_stop_prices.py."""

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
    GatewayError,
    StopTriggered,
    Trade,
    open_gateway,
)
from gateway.config import GatewayConfig, config_from_dict
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.candles import kline_from_rest
from gateway.core.orderbook import SyncState
from gateway.runtime.backfill import Backfiller
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime
from gateway.stats import HoldStats
from tests._gaps import gap_of, marker, streams_on
from tests._loopback import drain, exchange, exchange_and_gateway, flow, queued

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


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
            ids = await gap_of(sim, 3)
            events = await drain(sub, 3)  # the gap, the live marker, its end
        unfilled = events[-1] if isinstance(events[-1], GapUnfilled) else events[1]
        assert isinstance(unfilled, GapUnfilled) and unfilled.last - unfilled.first + 1 == len(ids)
        await streams_on(sim, gw, kind)  # the gateway is up and streaming
    assert not [e for e in errors if not isinstance(e, GatewayError)]


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
            await gap_of(sim, 2000)
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
            await marker(sim, gw)
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
            await marker(sim, gw)
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
            await gap_of(sim, 2)
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
            ids = await gap_of(sim, 1500)  # REST keeps the last 1000: the start is gone
            events = await drain(sub, 3)
        detected, unfilled = (e for e in events if not isinstance(e, AggTrade))
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (ids[0], ids[-1])
        assert unfilled.reason == f"the exchange does not serve aggTrade id {ids[0]}"


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

"""The gateway end to end, against the embedded exchange on loopback."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import (
    Kline,
    StopState,
    StopTriggered,
    Ticker,
    Trade,
)
from tests._faults import crash_after_triggers
from tests._loopback import SYMBOLS, drain, exchange_and_gateway, queued


async def test_three_symbols_three_streams_every_event_to_its_symbol_in_order(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(streams=("trade", "kline_1m", "ticker")) as (sim, gw):
        assert len(gw._connections) == 1  # one connection carries all nine streams
        subs = {s: gw.subscribe(s, Trade, buffer=10_000) for s in SYMBOLS}
        firsts = {s: sim.market.symbol(s).next_trade_id for s in SYMBOLS}
        for _ in range(20):
            sim.control.generate(trades=30)
            await trio.sleep(0.5)
            sim.control.tick()
        made = {s: sim.market.symbol(s).next_trade_id - firsts[s] for s in SYMBOLS}
        for symbol, sub in subs.items():
            trades = await drain(sub, made[symbol])
            assert {t.symbol for t in trades} == {symbol}
            ids = [t.trade_id for t in trades]
            assert ids == list(range(firsts[symbol], firsts[symbol] + made[symbol]))
        stats = gw.stats()
        for symbol in SYMBOLS:
            events = stats.symbols[symbol].events
            assert events["Trade"] == made[symbol]
            assert events.get("Kline", 0) > 0 and events.get("Ticker", 0) > 0
        assert stats.router.malformed == 0 and stats.router.unrouted == 0


async def test_candle_buffer_holds_exactly_the_closed_candles_bounded(
    autojump_clock: MockClock,
) -> None:
    closed_seen: list[Kline] = []
    async with exchange_and_gateway(
        {"symbols": ("BTCUSDT",), "pacing": "rate", "rate": 20.0},
        streams=("kline_1s",),
        candle_buffer=5,
    ) as (_, gw):
        gw.on_candle_closed(lambda ev: closed_seen.append(ev.candle))
        with gw.subscribe("BTCUSDT", Kline, buffer=10_000) as sub:
            finals: list[Kline] = []
            with trio.fail_after(60):
                while len(finals) < 12:
                    ev = await sub.receive()
                    if ev.is_closed:
                        finals.append(ev)
            # No checkpoint between these two lines: the buffer and the events queued
            # for us describe the same moment (handling and publishing are synchronous).
            buffered = gw.candles("BTCUSDT", "1s")
            finals += [k for k in queued(sub) if k.is_closed]
        assert buffered == finals[-5:]  # exactly the last closed candles, bounded at 5
        await trio.testing.wait_all_tasks_blocked()
        assert [k.open_time for k in closed_seen[: len(finals)]] == [
            k.open_time for k in finals
        ]  # fmt: skip
        assert len({k.open_time for k in closed_seen}) == len(closed_seen)  # once per candle


async def test_long_and_short_stops_fire_exactly_once_at_the_right_trade(
    autojump_clock: MockClock,
) -> None:
    hooked: list[StopTriggered] = []
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(
        {"symbols": ("BTCUSDT", "ETHUSDT")}, close_hook=hooked.append
    ) as (sim, gw):
        gw.on_stop_loss(fired.append)
        long_id = gw.open_position("BTCUSDT", "LONG", 100.0, stop_pct=0.05)  # stop 95
        short_id = gw.open_position("ETHUSDT", "SHORT", 100.0, stop_price=104.0)
        with gw.subscribe(kinds=[Trade]) as trades:
            for price in (97.0, 96.0, 95.01, 95.0, 94.0, 93.0):
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            for price in (101.0, 103.99, 104.0, 105.0):
                sim.control.inject_trade("ETHUSDT", price, 1.0)
            await drain(trades, 10)  # every trade handled: every stop check made
        await trio.testing.wait_all_tasks_blocked()  # callbacks and close hooks ran
        assert sorted((f.position_id, f.trigger_price) for f in fired) == sorted(
            [(long_id, 95.0), (short_id, 104.0)]
        )
        assert sorted(h.position_id for h in hooked) == sorted([long_id, short_id])
        states = {p.position.id: p.state for p in gw.positions()}
        assert states == {long_id: StopState.CLOSED, short_id: StopState.CLOSED}


async def test_a_trade_the_handler_crashed_on_is_reported_unfilled_and_its_stop_still_fires(
    autojump_clock: MockClock,
) -> None:
    from gateway import GapDetected, GapUnfilled, Trade

    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("trade",)) as (sim, gw):
        state = gw._state("BTCUSDT")
        crash_after_triggers(state)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=90.0)
        with gw.subscribe("BTCUSDT", [Trade, GapDetected, GapUnfilled], buffer=100) as sub:
            ids = [sim.control.inject_trade("BTCUSDT", p, 1.0) for p in (95.0, 89.0, 96.0)]
            got = await drain(sub, 4)
        poison = ids[1]
        assert [getattr(e, "trade_id", None) for e in got] == [ids[0], None, None, ids[2]]
        detected, unfilled = got[1], got[2]
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (detected.first, detected.last, unfilled.first, unfilled.last) == (poison,) * 4
        assert "dead letter" in unfilled.reason
        assert state.machine.stops.fired == 1 and gw.positions("BTCUSDT")[0].position.id == pid


async def test_stop_fires_once_when_the_actor_crashes_between_trigger_and_hook(
    autojump_clock: MockClock,
) -> None:
    hooked: list[StopTriggered] = []
    fired: list[StopTriggered] = []
    called = trio.Event()

    def hook(stop: StopTriggered) -> None:
        hooked.append(stop)
        called.set()

    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, close_hook=hook) as (
        sim,
        gw,
    ):
        gw.on_stop_loss(fired.append)
        state = gw._state("BTCUSDT")
        crashes = crash_after_triggers(state)  # between the trigger and the close hook
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=90.0)
        with gw.subscribe("BTCUSDT", Trade, buffer=10) as trades:
            for price in (95.0, 90.0, 89.0, 88.0):
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            got = await drain(trades, 3)  # the trade it crashed on is a dead letter
            assert [t.price for t in got] == [95.0, 89.0, 88.0]
        with trio.fail_after(30):
            await called.wait()
        await trio.testing.wait_all_tasks_blocked()  # the hook's result reaches the actor
        report = gw.actor_report("BTCUSDT")
        assert report is not None and report.restarts == 1
        assert len(report.dead_letters) == 1  # the trade it was handling
        assert crashes == [90.0]
        assert [f.position_id for f in fired] == [pid]
        assert [h.position_id for h in hooked] == [pid]
        assert gw.positions("BTCUSDT")[0].state is StopState.CLOSED
        assert state.machine.last_price == 88.0  # the trades after the crash were not lost


async def test_close_hook_that_fails_twice_is_retried_until_it_succeeds(
    autojump_clock: MockClock,
) -> None:
    calls: list[float] = []
    third_call = trio.Event()

    async def flaky_close(ev: StopTriggered) -> None:
        calls.append(trio.current_time())
        if len(calls) <= 2:
            raise ConnectionError("exchange busy")
        third_call.set()

    errors: list[BaseException] = []
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, close_hook=flaky_close) as (
        sim,
        gw,
    ):
        gw.on_error(errors.append)
        pid = gw.open_position("BTCUSDT", "SHORT", 100.0, stop_pct=0.01)
        sim.control.inject_trade("BTCUSDT", 101.0, 1.0)
        with trio.fail_after(30):
            await third_call.wait()
        await trio.testing.wait_all_tasks_blocked()
        status = gw.positions("BTCUSDT")[0]
        assert status.position.id == pid
        assert (status.attempts, status.failures) == (3, 2)
        assert len(calls) == 3 and calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.1
        assert sum(isinstance(e, ConnectionError) for e in errors) == 2


async def test_malformed_and_unknown_frames_are_counted_and_skipped(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade) as sub:
            sim.control.send_malformed()
            sim.control.send_unknown_event("BTCUSDT")
            sim.control.send_unknown_event("BTCUSDT")
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            assert (await drain(sub, 1))[0].price == 100.0
        router = gw.stats().router
        assert (router.malformed, router.unknown) == (1, 2)


async def test_ticker_subscription_conflates_for_a_slow_subscriber(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("ticker",)) as (sim, gw):
        with (
            gw.subscribe("BTCUSDT", Ticker, buffer=10) as slow,
            gw.subscribe("BTCUSDT", Ticker, buffer=100) as seen_all,
        ):
            every: list[Ticker] = []
            for _ in range(5):  # the slow one never reads; the other one reads each
                sim.control.generate(trades=5)
                await trio.sleep(1.0)
                sim.control.tick()
                every += queued(seen_all)
            await trio.sleep(0.1)
            every += queued(seen_all)
            got = queued(slow)
        assert len(every) >= 4
        assert got == every[-1:]  # latest value only, and it is the newest one
        assert slow.dropped == len(every) - 1


async def test_live_add_and_remove_symbols(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT", "ETHUSDT")}, symbols=("BTCUSDT",)) as (
        sim,
        gw,
    ):
        await gw.add_symbols(["ETHUSDT"])
        with gw.subscribe("ETHUSDT", Trade) as sub:
            sim.control.inject_trade("ETHUSDT", 100.0, 1.0)
            assert (await drain(sub, 1))[0].symbol == "ETHUSDT"
        assert sorted(await gw._connections[0].list_subscriptions()) == [
            "btcusdt@trade", "ethusdt@trade",
        ]  # fmt: skip
        await gw.remove_symbols(["ETHUSDT"])
        assert await gw._connections[0].list_subscriptions() == ["btcusdt@trade"]
        assert "ETHUSDT" not in gw.last_prices()


async def test_a_flooded_symbol_does_not_delay_the_quiet_ones(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway() as (sim, gw):
        order: list[tuple[str, int]] = []
        with gw.subscribe(kinds=[Trade], buffer=100_000) as sub:
            for _ in range(10):
                sim.control.generate(trades=200, symbol="BTCUSDT")  # 20x the others
                sim.control.generate(trades=10, symbol="ETHUSDT")
                sim.control.generate(trades=10, symbol="BNBUSDT")
                await trio.sleep(0.1)
            await trio.testing.wait_all_tasks_blocked()
            events = sub.drain_nowait(100_000)
        order = [(e.symbol, e.receive_ns) for e in events]
        # Handled in arrival order: no quiet event waits behind later flood events.
        assert [r for _, r in order] == sorted(r for _, r in order)
        quiet = [gw._state(s).latency.handled for s in ("ETHUSDT", "BNBUSDT")]
        assert all(rec.count >= 100 for rec in quiet)
        # A generous sanity bound (peers deliver quiet symbols seconds late); the real
        # figures are in benchmarks/, not asserted here.
        assert all(rec.percentile(99) < 50_000_000 for rec in quiet)


async def test_a_trade_gap_is_reported_backfilled_over_rest_and_fires_a_hidden_stop(
    autojump_clock: MockClock,
) -> None:
    from gateway import AggTrade, GapDetected

    fired: list[StopTriggered] = []
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("aggTrade",)) as (
        sim,
        gw,
    ):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        with gw.subscribe("BTCUSDT", [AggTrade, GapDetected], buffer=1000) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(sub, 1))[0]
            sim.control.drop_trades("BTCUSDT", 3)  # the next three never reach us...
            for price in (97.0, 94.0, 96.0):  # ...and one of them crossed the stop
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
            events = await drain(sub, 1 + 3 + 1)  # the gap, the backfill, then live 98
        gap = next(e for e in events if isinstance(e, GapDetected))
        assert (gap.stream, gap.first, gap.last, gap.backfilling) == (
            "aggTrade", first.agg_trade_id + 1, first.agg_trade_id + 3, True,
        )  # fmt: skip
        prices = [e.price for e in events if isinstance(e, AggTrade)]
        assert prices == [97.0, 94.0, 96.0, 98.0]  # in id order: live 98 was held
        assert [(f.position_id, f.trigger_price) for f in fired] == [(pid, 94.0)]
        assert gw.stats().symbols["BTCUSDT"].backfilled == 3


async def test_duplicated_frames_are_dropped_by_trade_id(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=1000) as sub:
            sim.control.duplicate_frames(3)  # the next three frames go twice
            for price in (100.0, 100.1, 100.2):
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            sim.control.inject_trade("BTCUSDT", 100.3, 1.0)  # a marker: frames keep order
            trades = await drain(sub, 4)
        assert [t.price for t in trades] == [100.0, 100.1, 100.2, 100.3]
        assert gw.stats().symbols["BTCUSDT"].duplicates == 3


async def test_order_book_syncs_from_snapshot_and_diffs_and_matches_the_exchange(
    autojump_clock: MockClock,
) -> None:
    import httpx

    from gateway.core.orderbook import SyncState

    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("depth@100ms",)) as (
        sim,
        gw,
    ):
        for _ in range(30):  # trades move the book; each tick sends the depth diff
            sim.control.generate(trades=20)
            await trio.sleep(0.1)
            sim.control.tick()
        await trio.sleep(1)
        book = gw.order_book("BTCUSDT")
        assert book is not None and book.state is SyncState.SYNCED
        assert gw.stats().symbols["BTCUSDT"].order_book == "synced"
        async with httpx.AsyncClient(base_url=sim.rest_url) as client:
            resp = await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 10})
        snap = resp.json()
        bids, asks = book.top(10)
        assert bids == [(float(p), float(q)) for p, q in snap["bids"]]
        assert asks == [(float(p), float(q)) for p, q in snap["asks"]]


async def test_stop_times_reach_users_as_epoch_not_the_trio_clock(
    autojump_clock: MockClock,
) -> None:
    """The event, the position snapshots and the run summary carry Unix epoch seconds;
    before, only ``trio.current_time()`` values (near 0 under MockClock) were there."""
    import time

    from gateway.app.summary import _stop

    fired: list[StopTriggered] = []
    before = time.time()
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, close_hook=lambda ev: None) as (
        sim,
        gw,
    ):
        gw.on_stop_loss(fired.append)
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_pct=0.05)
        with gw.subscribe(kinds=[Trade]) as trades:
            sim.control.inject_trade("BTCUSDT", 94.0, 1.0)
            await drain(trades, 1)
        await trio.testing.wait_all_tasks_blocked()
        [status] = gw.positions()
    after = time.time()
    [event] = fired
    assert event.position_id == pid and before <= event.triggered_at_epoch <= after
    assert event.receive_ns and before <= event.handled_ns / 1e9 <= after
    assert status.state is StopState.CLOSED and status.trigger is not None
    assert status.trigger.triggered_at_epoch == event.triggered_at_epoch
    assert status.closed_at_epoch is not None and before <= status.closed_at_epoch <= after
    assert status.trigger.triggered_at < 1e6  # the trio clock stays for deadlines
    assert _stop(event)["triggered_at_epoch"] == event.triggered_at_epoch


async def test_a_symbol_the_gateway_does_not_run_is_an_unknown_symbol_everywhere(
    autojump_clock: MockClock,
) -> None:
    from gateway import GatewayError, UnknownSymbol

    async with exchange_and_gateway(streams=("trade",)) as (_, gw):
        calls = [
            lambda: gw.open_position("DOGEUSDT", "LONG", 1.0, stop_pct=0.1),
            lambda: gw.adjust_stop("DOGEUSDT", "x", stop_pct=0.1),
            lambda: gw.close_position("DOGEUSDT", "x"),
            lambda: gw.positions("DOGEUSDT"),
            lambda: gw.candles("doge/usdt", "1m"),
            lambda: gw.order_book("DOGEUSDT"),
        ]
        said = r"'(DOGEUSDT|doge/usdt)' is not in this gateway; it has: BTCUSDT, ETHUSDT, BNBUSDT"
        for call in calls:
            with pytest.raises(UnknownSymbol, match=said) as raised:
                call()
            assert isinstance(raised.value, GatewayError | KeyError)
        with pytest.raises(UnknownSymbol) as raised:
            await gw.remove_symbols(["BTCUSDT", "DOGEUSDT"])
        assert raised.value.symbol == "DOGEUSDT" and "BTCUSDT" in raised.value.known
        assert set(gw.stats().symbols) == {"BTCUSDT", "ETHUSDT", "BNBUSDT"}  # nothing removed

"""A long gap's REST rows come a page at a time: published as they come when nothing older
is pending, held (and counted against the one gateway-wide bound) behind an older gap,
and every gap still ends once, after exactly the rows that went out, whatever stops it
halfway (a full mailbox, a crash, a quarantine, a hold past its bound)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from actors import Mailbox, Overflow
from gateway import AggTrade, GapDetected, GapFilled, GapUnfilled, StopTriggered, Trade
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.holds import HoldBudget
from gateway.core.positions import Position, Side
from gateway.runtime.backfill import Backfiller
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime
from tests._faults import crash_after_triggers
from tests._loopback import drain, exchange, exchange_and_gateway, queued

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


def _trade(i: int, price: float = 99.0, backfilled: bool = False) -> Trade:
    return Trade("BTCUSDT", i, price, 1.0, 0, False, 0, 0 if backfilled else 1, backfilled)


def _rows(ids: range, price: float = 99.0) -> tuple[Trade, ...]:
    return tuple(_trade(i, price, True) for i in ids)


def _part(first: int, last: int, ids: range, *, final: bool = False, **kw: Any) -> BackfillResult:
    return BackfillResult(BackfillRequest("BTCUSDT", "trade", first, last), _rows(ids),
                          final=final, **kw)  # fmt: skip


def _state(publisher: Publisher, budget: int = 0, **kw: Any) -> SymbolRuntime:
    return SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True,
                       hold_max_events=100, hold_budget=HoldBudget(budget), **kw)  # fmt: skip


def _label(e: Any) -> Any:
    if isinstance(e, Trade):
        return e.trade_id
    if isinstance(e, StopTriggered):
        return "fired"
    return (type(e).__name__, e.first, e.last)


# --- the backfiller sends pages as they come ------------------------------------------


async def test_a_long_gap_reaches_the_symbol_a_page_at_a_time_in_order(
    autojump_clock: MockClock,
) -> None:
    results: list[BackfillResult] = []
    done = trio.Event()

    def deliver(_symbol: str, result: BackfillResult) -> None:
        results.append(result)
        if result.final:
            done.set()

    async with exchange(_ONE) as sim:
        sim.control.generate(trades=8000)  # one to three trades per aggregate trade
        first = sim.market.symbol("BTCUSDT").next_agg_id - 2500
        backfiller = Backfiller(sim.rest_url, deliver)
        async with trio.open_nursery() as nursery:
            await nursery.start(backfiller.run)
            assert backfiller.request(BackfillRequest("BTCUSDT", "aggTrade", first, first + 2499))
            with trio.fail_after(60):
                await done.wait()
            nursery.cancel_scope.cancel()
    assert [(len(r.events), r.final) for r in results] == [(999, False), (1000, False),
                                                           (501, True)]  # fmt: skip
    ids = [e.agg_trade_id for r in results for e in r.events]
    assert ids == list(range(first, first + 2500))
    assert all(isinstance(e, AggTrade) and e.backfilled for r in results for e in r.events)
    assert results[-1].error is None and results[-1].missing_from is None
    assert backfiller.fetched == 2500


@pytest.mark.parametrize(("kind", "weight"), [("trade", 25), ("aggTrade", 4)])
async def test_rows_of_a_long_gap_are_published_before_its_later_pages_are_fetched(
    autojump_clock: MockClock, kind: str, weight: int
) -> None:
    # One page's weight per minute (exchangeInfo takes the first minute's): three pages
    # take three minutes; the first page's rows go out in the second minute, in order,
    # the live trades after the gap still held.
    options: dict[str, Any] = {"streams": (kind,), "rest_weight_per_minute": weight + 1,
                               "hold_max_seconds": 600.0}  # fmt: skip
    event = Trade if kind == "trade" else AggTrade
    key = "trade_id" if kind == "trade" else "agg_trade_id"
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with gw.subscribe("BTCUSDT", [*_GAPS, event], buffer=5000) as seen:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            start = getattr((await drain(seen, 1))[0], key) + 1
            sim.control.drop_trades("BTCUSDT", 2500)
            for _ in range(2500 + 3):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await trio.sleep(90)
            early = queued(seen)
            await trio.sleep(300)
            late = queued(seen)
            holds = gw.stats().holds
    assert type(early[0]) is GapDetected and (early[0].first, early[0].last) == (
        start, start + 2499)  # fmt: skip
    assert [getattr(e, key) for e in early[1:]] == list(range(start, start + 999))
    assert all(e.backfilled for e in early[1:])
    filled = [e for e in late if type(e) is GapFilled]
    assert filled == [GapFilled("BTCUSDT", kind, start, start + 2499, 2500)]
    ids = [getattr(e, key) for e in late if type(e) is event]
    assert ids == list(range(start + 999, start + 2503))  # the rest, then the live ones
    assert type(late[len(ids) - 3]) is GapFilled  # before the live trades it held back
    assert holds.held == 0 and holds.peak <= 3 + 1 + 1000  # never the whole gap


# --- the symbol applies parts -------------------------------------------------------


async def test_parts_of_the_oldest_gap_go_out_at_once_and_the_count_is_the_whole(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 10, 11):  # 2..9 missing: 10 and 11 held
            state.handle(_trade(i))
        state.on_backfill(_part(2, 9, range(2, 5)))
        early = sub.drain_nowait(100)
        state.on_backfill(_part(2, 9, range(5, 8)))
        state.on_backfill(_part(2, 9, range(8, 10), final=True))
        late = sub.drain_nowait(100)
    assert [_label(e) for e in early] == [1, ("GapDetected", 2, 9), 2, 3, 4]
    assert [_label(e) for e in late] == [5, 6, 7, 8, 9, ("GapFilled", 2, 9), 10, 11]
    assert late[5].count == 8
    assert state.snapshot().held == 0 and state.machine.backfilled == 8


async def test_rows_of_a_younger_gap_wait_behind_the_older_one_and_count_in_the_bound(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher, budget=10)
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 5, 6, 10):  # 2..4 and 7..9 missing
            state.handle(_trade(i))
        state.on_backfill(_part(7, 9, range(7, 10), final=True))  # the younger answers first
        held = state.snapshot().held
        assert state.machine.holds.budget is not None
        counted = state.machine.holds.budget.held
        state.on_backfill(_part(2, 4, range(2, 5), final=True))
        events = sub.drain_nowait(100)
    assert (held, counted) == (3 + 3 + 1, 7)  # 5, 6, 10, the rows 7..9 and their ending
    assert [_label(e) for e in events] == [
        1, ("GapDetected", 2, 4), ("GapDetected", 7, 9), 2, 3, 4, ("GapFilled", 2, 4), 5, 6,
        7, 8, 9, ("GapFilled", 7, 9), 10,
    ]  # fmt: skip
    assert state.machine.holds.budget.held == 0


async def test_a_page_that_would_pass_the_bound_releases_the_hold_and_reports_the_rest(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher, budget=5)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    with publisher.subscribe(kinds=[Trade, StopTriggered, *_GAPS]) as sub:
        for i in (1, 5, 6, 10):  # 3 live trades held behind 2..4 and 7..9
            state.handle(_trade(i))
        crossing = BackfillResult(BackfillRequest("BTCUSDT", "trade", 7, 9),
                                  (_trade(7, backfilled=True), _trade(8, 90.0, True),
                                   _trade(9, backfilled=True)))  # fmt: skip
        state.on_backfill(crossing)  # 3 more would make 6: over the bound of 5
        state.on_backfill(_part(2, 4, range(2, 5), final=True))  # its gap ended already
        events = sub.drain_nowait(100)
    assert [_label(e) for e in events] == [
        1, ("GapDetected", 2, 4), ("GapDetected", 7, 9), ("GapUnfilled", 2, 4), 5, 6,
        ("GapUnfilled", 7, 9), 10, "fired",
    ]  # fmt: skip
    assert "5 events held by all symbols" in events[3].reason
    assert state.machine.stops.fired == 1  # the rows that could not be held still reached the stop
    assert state.machine.holds.budget is not None and state.machine.holds.budget.held == 0
    assert state.machine.holds.abandoned == set() and state.machine.holds.parts == {}


async def test_a_part_a_full_mailbox_refuses_ends_its_gap_from_there_and_the_rest_is_ignored(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    state.mailbox = Mailbox(1, Overflow.DROP_NEWEST)
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 10):
            state.handle(_trade(i))
        state.on_backfill(_part(2, 9, range(2, 5)))
        state.mailbox.put_nowait("busy")  # the actor is behind
        state.post_result(_part(2, 9, range(5, 8)))  # refused
        state.mailbox.receive_nowait()
        state.post_result(_part(2, 9, range(8, 10), final=True))
        state.feed(state.mailbox.receive_nowait())
        events = sub.drain_nowait(100)
    assert [_label(e) for e in events] == [
        1, ("GapDetected", 2, 9), 2, 3, 4, ("GapUnfilled", 5, 9), 10]  # fmt: skip
    assert "mailbox was full" in events[5].reason
    assert state.machine.holds.abandoned == set() and state.machine.holds.parts == {}


async def test_a_crash_while_applying_a_part_ends_its_gap_once_after_the_rows_out(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))

    with publisher.subscribe(kinds=[Trade, StopTriggered, *_GAPS]) as sub:
        for i in (1, 10):
            state.handle(_trade(i))
        state.feed(_part(2, 9, range(2, 5)))
        crash_after_triggers(state)  # the next part's crossing price fires, then it raises
        crossing = BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 9),
                                  (_trade(5, 90.0, True), _trade(6, backfilled=True)),
                                  final=False)  # fmt: skip
        with pytest.raises(RuntimeError, match="injected"):
            state.feed(crossing)
        state.feed(_part(2, 9, range(7, 10), final=True))  # after the restart
        events = sub.drain_nowait(100)
    assert [_label(e) for e in events] == [
        1, ("GapDetected", 2, 9), 2, 3, 4, "fired", ("GapUnfilled", 5, 9), 10]  # fmt: skip
    assert "raised while applying" in events[6].reason
    assert state.machine.stops.fired == 1 and state.machine.holds.deadline() is None
    assert state.machine.holds.abandoned == set() and state.machine.holds.parts == {}


@pytest.mark.parametrize("why", ["quarantine", "deadline"])
async def test_a_gap_ended_halfway_reports_only_the_rows_not_published(
    autojump_clock: MockClock, why: str
) -> None:
    publisher = Publisher()
    state = _state(publisher, hold_max_seconds=5.0)
    state.mailbox = Mailbox(10, Overflow.DROP_NEWEST)
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 10):
            state.handle(_trade(i))
        state.on_backfill(_part(2, 9, range(2, 5)))
        if why == "quarantine":
            state.quarantine()
        else:
            await trio.sleep(6)
            state.on_timer()
        state.post_result(_part(2, 9, range(5, 8)))
        state.post_result(_part(2, 9, range(8, 10), final=True))
        while len(state.mailbox):
            state.feed(state.mailbox.receive_nowait())
        events = sub.drain_nowait(100)
    assert [_label(e) for e in events] == [
        1, ("GapDetected", 2, 9), 2, 3, 4, ("GapUnfilled", 5, 9), 10]  # fmt: skip
    assert state.machine.holds.abandoned == set() and state.machine.holds.parts == {}

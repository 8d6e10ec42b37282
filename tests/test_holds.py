"""In order across a gap: what a symbol holds behind a gap being backfilled, and how every
gap still ends once when its REST answer comes out of order, is lost to a full mailbox,
or the symbol is quarantined; klines and candles are held into open-time order."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from actors import Mailbox, Overflow
from gateway import (
    CandleClosed,
    GapDetected,
    GapFilled,
    GapUnfilled,
    Kline,
    StopTriggered,
    Trade,
)
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, FallbackPrice
from gateway.core.positions import Position, Side
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime
from tests._faults import crash_after_triggers
from tests._loopback import drain, exchange_and_gateway, flow

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_MIN = 60_000


def _trade(i: int, price: float = 99.0, backfilled: bool = False) -> Trade:
    return Trade("BTCUSDT", i, price, 1.0, 0, False, 0, 0 if backfilled else 1, backfilled)


def _kline(open_time: int, closed: bool, backfilled: bool = False) -> Kline:
    return Kline("BTCUSDT", "1m", open_time, open_time + _MIN - 1, 1.0, 2.0, 0.5, 1.5, 1.0, 1.0,
                 0.0, 0.0, 1, -1, -1, closed, open_time, 0 if backfilled else 1,
                 backfilled)  # fmt: skip


def _state(publisher: Publisher, **kw: Any) -> SymbolRuntime:
    return SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True,
                       hold_max_events=100, **kw)  # fmt: skip


def _label(e: Any) -> Any:
    if isinstance(e, Trade):
        return e.trade_id
    if isinstance(e, Kline):
        return ("K", e.open_time // _MIN, e.is_closed, e.backfilled)
    if isinstance(e, CandleClosed):
        return ("C", e.candle.open_time // _MIN)
    return (type(e).__name__, e.first)


async def test_quarantine_publishes_what_is_held_in_order_and_ends_each_pending_gap_once(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 5, 6):  # 2..4 missing: 5 and 6 are held
            state.handle(_trade(i))
        state.quarantine()
        # The REST answer comes after the quarantine: ignored, the gap already ended.
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4),
                                         tuple(_trade(i, backfilled=True) for i in (2, 3, 4))))
        events = sub.drain_nowait(100)
    assert [_label(e) for e in events] == [1, ("GapDetected", 2), ("GapUnfilled", 2), 5, 6]
    assert "quarantined" in events[2].reason
    assert state.snapshot().held == 0 and state.machine.holds.deadline() is None


async def test_a_gap_not_held_ends_unfilled_when_its_answer_reaches_a_quarantined_symbol(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True)  # no holds
    state.mailbox = Mailbox(10, Overflow.DROP_NEWEST)
    with publisher.subscribe(kinds=_GAPS) as sub:
        state.handle(_trade(1))
        state.handle(_trade(9))  # 2..8 missing
        # One answer already queued when the quarantine comes, one after it.
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 8), ()))
        state.quarantine()
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "aggTrade", 3, 4), ()))
        events = sub.drain_nowait(100)
    assert [(_label(e), getattr(e, "last", None)) for e in events] == [
        (("GapDetected", 2), 8), (("GapUnfilled", 2), 8), (("GapUnfilled", 3), 4),
    ]  # fmt: skip
    assert all("quarantined" in e.reason for e in events[1:])


async def test_a_result_a_full_mailbox_refuses_still_fires_the_stops_its_rows_cross(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    state.mailbox = Mailbox(1, Overflow.DROP_NEWEST)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    with publisher.subscribe(kinds=[Trade, StopTriggered, *_GAPS]) as sub:
        state.handle(_trade(1))
        state.handle(_trade(5))  # 2..4 missing; 5 held
        state.mailbox.put_nowait("busy")  # the actor is behind: the answer cannot be queued
        rows = (_trade(2, backfilled=True), _trade(3, 90.0, True), _trade(4, backfilled=True))
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4), rows))
        events = sub.drain_nowait(100)
    labels = [_label(e) if not isinstance(e, StopTriggered) else "fired" for e in events]
    assert labels == [1, ("GapDetected", 2), "fired", ("GapUnfilled", 2), 5]
    assert state.machine.stops.fired == 1


async def test_a_rest_fallback_price_polled_before_a_live_trade_is_stale_and_ignored(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = _state(publisher)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    state.handle(_trade(1, 99.0))
    asked = state.machine.live_trades()
    state.handle(_trade(2, 99.5))  # the stream speaks again while the poll is on its way
    state.feed(FallbackPrice(90.0, asked))  # a price from before: ignored
    assert state.machine.stops.fired == 0 and state.snapshot().stale_fallbacks == 1
    state.feed(FallbackPrice(90.0, state.machine.live_trades()))  # current: it counts
    assert state.machine.stops.fired == 1


async def test_klines_after_a_candle_gap_are_held_until_the_backfill_then_in_open_time_order(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    requests: list[BackfillRequest] = []
    state = SymbolRuntime("BTCUSDT", publisher,
                          request_backfill=lambda r: requests.append(r) or True,
                          hold_max_events=100)  # fmt: skip
    with publisher.subscribe(kinds=[Kline, CandleClosed, *_GAPS]) as sub:
        state.handle(_kline(0, False))
        state.handle(_kline(0, True))
        # Reconnected three candles later: the first open update shows 1 and 2 missing.
        state.handle(_kline(3 * _MIN, False))
        state.handle(_kline(3 * _MIN, True))
        state.handle(_kline(4 * _MIN, False))
        (req,) = requests
        assert (req.kind, req.first, req.last, req.interval) == ("kline", _MIN, 3 * _MIN - 1, "1m")
        before = [_label(e) for e in sub.drain_nowait(100)]
        rows = (_kline(_MIN, True, True), _kline(2 * _MIN, True, True))
        state.on_backfill(BackfillResult(req, rows))
        after = [_label(e) for e in sub.drain_nowait(100)]
    assert before == [("K", 0, False, False), ("C", 0), ("K", 0, True, False),
                      ("GapDetected", _MIN)]  # fmt: skip
    assert after == [
        ("C", 1), ("K", 1, True, True), ("C", 2), ("K", 2, True, True), ("GapFilled", _MIN),
        ("K", 3, False, False), ("C", 3), ("K", 3, True, False), ("K", 4, False, False),
    ]  # fmt: skip
    assert [k.open_time // _MIN for k in state.machine.candles.buffer("1m")] == [0, 1, 2, 3]
    # The gap was reported once: not again when candle 3 closed.
    assert state.machine.gaps == 1


async def test_against_the_exchange_a_kline_subscriber_sees_open_times_never_go_back(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("kline_1s",)) as (
        sim, gw,
    ):  # fmt: skip
        with gw.subscribe("BTCUSDT", [Kline, CandleClosed, *_GAPS], buffer=1000) as sub:
            await flow(sim, 3)
            sim.control.stall(3)  # the candles that close meanwhile never reach us
            await flow(sim, 3)
            await flow(sim, 4)
            events = await drain(sub, len(sub))
    gaps = [e for e in events if isinstance(e, GapDetected)]
    ends = [e for e in events if isinstance(e, GapFilled)]
    assert len(gaps) == 1 and len(ends) == 1 and (ends[0].first, ends[0].last) == (
        gaps[0].first, gaps[0].last,
    )  # fmt: skip
    opens = [e.open_time for e in events if isinstance(e, Kline)]
    assert opens == sorted(opens), "a kline came after a later candle's"
    closed = [e.candle.open_time for e in events if isinstance(e, CandleClosed)]
    assert closed == sorted(set(closed)), "candles closed out of order or twice"
    assert closed == list(range(closed[0], closed[-1] + 1, 1000)), "a candle is missing"
    backfilled = [e for e in events if isinstance(e, Kline) and e.backfilled]
    assert backfilled and all(gaps[0].first <= k.open_time <= gaps[0].last for k in backfilled)


async def test_a_gap_ended_at_its_holds_bound_never_ends_again_whatever_its_answer_meets(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True,
                        hold_max_events=2)  # fmt: skip
    state.mailbox = Mailbox(1, Overflow.DROP_NEWEST)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    with publisher.subscribe(kinds=[Trade, StopTriggered, *_GAPS]) as sub:
        for i in (1, 5, 6):  # 2..4 missing; the second held trade reaches the bound
            state.handle(_trade(i))
        state.mailbox.drain_nowait(10)  # the hold's wake-up
        state.mailbox.put_nowait("busy")  # the answer meets a full mailbox
        rows = (_trade(2, backfilled=True), _trade(3, 90.0, True), _trade(4, backfilled=True))
        state.post_result(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4), rows))
        events = sub.drain_nowait(100)
    labels = [_label(e) if not isinstance(e, StopTriggered) else "fired" for e in events]
    assert labels == [1, ("GapDetected", 2), ("GapUnfilled", 2), 5, 6, "fired"]
    assert "held past its bound" in events[2].reason


async def test_a_crash_while_applying_a_rest_answer_still_ends_its_gap_once(
    autojump_clock: MockClock,
) -> None:

    publisher = Publisher()
    state = _state(publisher)
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))

    with publisher.subscribe(kinds=[Trade, StopTriggered, *_GAPS]) as sub:
        state.handle(_trade(1))
        state.handle(_trade(5))  # 2..4 missing; 5 held
        crash_after_triggers(state)  # the rows' crossing price fires the stop, then it raises
        rows = (_trade(2, backfilled=True), _trade(3, 90.0, True), _trade(4, backfilled=True))
        with pytest.raises(RuntimeError, match="injected"):
            state.feed(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4), rows))
        events = sub.drain_nowait(100)
    labels = [_label(e) if not isinstance(e, StopTriggered) else "fired" for e in events]
    assert labels == [1, ("GapDetected", 2), "fired", ("GapUnfilled", 2), 5]
    assert "raised while applying" in events[3].reason
    assert state.machine.holds.deadline() is None and state.machine.stops.fired == 1

"""One symbol's state (gateway/runtime/symbol.py), as a specification, with plain calls:
what `SymbolRuntime.handle` publishes and asks for, for each kind of event. The loopback
tests (test_gateway.py, test_backfill.py, ...) show the same through a real exchange."""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from gateway import CandleClosed, GapDetected, GapFilled, Kline, StopTriggered, Trade
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.hook_protocol import CloseRequest
from gateway.core.positions import Position, Side
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime

_MIN = 60_000


def trade(i: int, price: float = 99.0, *, backfilled: bool = False) -> Trade:
    return Trade("BTCUSDT", i, price, 1.0, 1_767_225_600_000 + i, False, 0,
                 0 if backfilled else 1, backfilled)  # fmt: skip


def kline(open_time: int, closed: bool, close: float = 1.5) -> Kline:
    return Kline("BTCUSDT", "1m", open_time, open_time + _MIN - 1, 1.0, 2.0, 0.5, close, 1.0,
                 1.0, 0.0, 0.0, 1, -1, -1, closed, open_time, 1, False)  # fmt: skip


class Asked:
    """What a symbol asked of the rest of the gateway."""

    def __init__(self) -> None:
        self.backfills: list[BackfillRequest] = []
        self.closes: list[CloseRequest] = []

    def backfill(self, req: BackfillRequest) -> bool:
        self.backfills.append(req)
        return True


def symbol(**kw: Any) -> tuple[SymbolRuntime, Publisher, Asked]:
    publisher, asked = Publisher(), Asked()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=asked.backfill,
                        request_close=asked.closes.append, **kw)  # fmt: skip
    return state, publisher, asked


async def test_trades_are_published_in_order_and_set_the_last_price(
    autojump_clock: MockClock,
) -> None:
    state, publisher, _ = symbol()
    with publisher.subscribe() as sub:
        for i, price in ((1, 99.0), (2, 98.5), (3, 99.25)):
            state.handle(trade(i, price))
        got = sub.drain_nowait(10)
    assert [t.trade_id for t in got] == [1, 2, 3]
    m = state.machine
    assert m.last_price == 99.25 and m.counts == {"Trade": 3} and m.handled == 3


async def test_a_repeated_trade_is_dropped_and_counted(autojump_clock: MockClock) -> None:
    state, publisher, asked = symbol()
    with publisher.subscribe() as sub:
        for i in (1, 2, 2, 1, 3):  # a reconnect's overlap repeats ids
            state.handle(trade(i))
        got = sub.drain_nowait(10)
    assert [t.trade_id for t in got] == [1, 2, 3]
    assert state.machine.duplicates == 2 and asked.backfills == []


async def test_a_gap_asks_for_its_exact_range_holds_the_live_and_ends_once(
    autojump_clock: MockClock,
) -> None:
    state, publisher, asked = symbol(hold_max_events=100)
    with publisher.subscribe() as sub:
        state.handle(trade(1))
        state.handle(trade(5))  # 2..4 missing
        state.handle(trade(6))
        [req] = asked.backfills
        assert (req.symbol, req.kind, req.first, req.last) == ("BTCUSDT", "trade", 2, 4)
        before = sub.drain_nowait(10)
        state.on_backfill(BackfillResult(req, tuple(trade(i, backfilled=True) for i in (2, 3, 4))))
        after = sub.drain_nowait(10)
    assert [type(e).__name__ for e in before] == ["Trade", "GapDetected"]  # 5, 6 held
    assert before[1] == GapDetected("BTCUSDT", "trade", 2, 4, True)
    assert [(e.trade_id, e.backfilled) for e in after if isinstance(e, Trade)] == [
        (2, True), (3, True), (4, True), (5, False), (6, False)]  # fmt: skip
    # the gap ends right after its rows, before the live trades it held
    assert after[3] == GapFilled("BTCUSDT", "trade", 2, 4, 3) and state.machine.gaps == 1


async def test_a_crossed_stop_fires_once_and_asks_for_its_close(
    autojump_clock: MockClock,
) -> None:
    state, publisher, asked = symbol()
    state.machine.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    with publisher.subscribe(kinds=[StopTriggered]) as sub:
        for i, price in ((1, 96.0), (2, 94.0), (3, 93.0), (4, 99.0)):
            state.handle(trade(i, price))
        fired = sub.drain_nowait(10)
    assert [(f.position_id, f.trigger_price) for f in fired] == [("p1", 94.0)]
    assert [c.trigger.position.id for c in asked.closes] == ["p1"]
    assert state.machine.stops.fired == 1


async def test_a_candle_closes_once_into_its_buffer(autojump_clock: MockClock) -> None:
    state, publisher, _ = symbol()
    with publisher.subscribe(kinds=[CandleClosed]) as sub:
        state.handle(kline(0, False, close=1.2))
        state.handle(kline(0, True, close=1.5))
        state.handle(kline(0, True, close=1.5))  # the same final update again
        state.handle(kline(_MIN, False))
        closed = sub.drain_nowait(10)
    assert [(c.candle.open_time, c.candle.close) for c in closed] == [(0, 1.5)]
    assert [k.open_time for k in state.machine.candles.buffer("1m").closed] == [0]


async def test_the_gateway_shows_the_open_candle_else_the_last_closed(
    autojump_clock: MockClock,
) -> None:
    """`Gateway.candle`: what the live view draws for a symbol."""
    from tests._loopback import exchange_and_gateway

    async with exchange_and_gateway(streams=("kline_1m",)) as (_, gw):
        state = gw._state("BTCUSDT")
        assert gw.candle("BTCUSDT", "1m") is None  # nothing yet
        state.handle(kline(0, False, close=1.2))
        assert (gw.candle("btcusdt", "1m") or kline(-1, False)).close == 1.2  # the open one
        state.handle(kline(0, True, close=1.5))
        last = gw.candle("BTCUSDT", "1m")
        assert last is not None and last.is_closed and last.close == 1.5  # then the closed


async def test_only_events_the_machine_applied_are_timed(autojump_clock: MockClock) -> None:
    """A duplicate (a reconnect's overlap) is dropped untimed: latency counts equal the
    events handled, so overlaps do not skew the percentiles."""
    state, _, _ = symbol()
    for i in (1, 2, 2, 1, 3):
        state.handle(trade(i))
    assert state.machine.handled == 3 and state.machine.duplicates == 2
    latency = state.latency
    assert latency.handled.count == latency.stop.count == 3  # (these carry no exchange time)


async def test_a_refused_backfill_ends_its_gap_before_the_event_that_revealed_it_is_published(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: False)
    with publisher.subscribe() as sub:
        for i in (1, 5):
            state.handle(trade(i))
        got = sub.drain_nowait(10)
    assert [getattr(e, "trade_id", type(e).__name__) for e in got] == [
        1, "GapDetected", "GapUnfilled", 5]  # fmt: skip
    assert got[2].reason == "the backfill queue is full"

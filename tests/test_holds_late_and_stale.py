"""Review findings on holds: each test failed before its fix."""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from gateway import GapDetected, GapFilled, GapUnfilled, Trade
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime

_GAPS = [GapDetected, GapFilled, GapUnfilled]


def _trade(i: int, backfilled: bool = False) -> Trade:
    return Trade("BTCUSDT", i, 99.0, 1.0, 0, False, 0, 0 if backfilled else 1, backfilled)


def _label(e: Any) -> Any:
    return e.trade_id if isinstance(e, Trade) else (type(e).__name__, e.first)


async def test_a_late_answer_meeting_a_newer_hold_publishes_its_rows_before_its_ending(
    autojump_clock: MockClock,
) -> None:
    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True,
                        hold_max_events=2, hold_overflow="late")  # fmt: skip
    with publisher.subscribe(kinds=[Trade, *_GAPS]) as sub:
        for i in (1, 5, 6):  # 2..4 missing; the hold overflows at 6 ("late": gap pending)
            state.handle(_trade(i))
        state.handle(_trade(9))  # 7..8 missing: a new hold on the same stream
        rows = tuple(_trade(i, backfilled=True) for i in (2, 3, 4))
        state.on_backfill(BackfillResult(BackfillRequest("BTCUSDT", "trade", 2, 4), rows))
        events = [_label(e) for e in sub.drain_nowait(100)]
    end = events.index(("GapFilled", 2))
    assert all(i in events[:end] for i in (2, 3, 4)), events


def _kline(open_time: int, closed: bool) -> Any:
    from gateway import Kline

    return Kline("BTCUSDT", "1m", open_time, open_time + 59_999, 1.0, 2.0, 0.5, 1.5, 1.0, 1.0,
                 0.0, 0.0, 1, -1, -1, closed, open_time, 1, False)  # fmt: skip


async def test_a_stale_kline_of_an_overlap_never_reaches_subscribers_behind_a_newer_one(
    autojump_clock: MockClock,
) -> None:
    from gateway import CandleClosed, Kline

    publisher = Publisher()
    state = SymbolRuntime("BTCUSDT", publisher, request_backfill=lambda _req: True,
                        hold_max_events=100)  # fmt: skip
    with publisher.subscribe(kinds=[Kline, CandleClosed]) as sub:
        state.handle(_kline(0, False))
        state.handle(_kline(0, True))
        state.handle(_kline(60_000, False))  # the new connection is a candle ahead...
        state.handle(_kline(0, False))  # ...of the old one's overlap: stale, ignored
        state.handle(_kline(0, True))
        events = sub.drain_nowait(100)
    opens = [(e.open_time, e.is_closed) for e in events if isinstance(e, Kline)]
    assert opens == [(0, False), (0, True), (60_000, False)]
    assert len([e for e in events if isinstance(e, CandleClosed)]) == 1

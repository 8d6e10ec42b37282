"""CandleBuffer / CandleBook: bounded closed candles, the open one, exactly-once closes, gaps."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.candles import CandleBook, CandleBuffer, CandleGap, kline_from_rest
from gateway.core.events import Kline
from gateway.errors import CandleError, GatewayError
from tests.recorded_data import stream_frames

MIN = 60_000
T0 = 1_767_225_600_000


def k(n: int, closed: bool = False, close: float = 100.0, interval: str = "1m",
      symbol: str = "BTCUSDT", step: int = MIN) -> Kline:  # fmt: skip
    """The candle number ``n`` after T0 (a closed one or an update of the open one)."""
    t = T0 + n * step
    return Kline(
        symbol, interval, t, t + step - 1, 100.0, max(close, 100.0), min(close, 100.0), close,
        1.0, 100.0, 0.5, 50.0, 3, 10 * n, 10 * n + 2, closed, t + 1000,
    )  # fmt: skip


def test_open_update_replaces_the_open_candle_and_publishes_nothing() -> None:
    buf = CandleBuffer("1m")
    assert buf.apply(k(0, close=101.0)) is None
    assert buf.apply(k(0, close=102.0)) is None
    assert buf.open_candle is not None and buf.open_candle.close == 102.0
    assert len(buf) == 0


def test_closed_update_is_appended_and_returned_once() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0))
    final = k(0, closed=True, close=103.0)
    assert buf.apply(final) is final
    assert buf.apply(final) is None  # the same close again (reconnect overlap)
    assert buf.apply(attrs.evolve(final, close=99.0)) is None
    assert buf.closed == (final,)
    assert buf.open_candle is None
    assert buf.ignored == 2


def test_older_close_is_ignored() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(5, closed=True))
    assert buf.apply(k(4, closed=True)) is None
    assert [c.open_time for c in buf.closed] == [T0 + 5 * MIN]


def test_late_open_update_of_a_closed_candle_is_ignored() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, closed=True))
    assert buf.apply(k(0, close=1.0)) is None
    assert buf.open_candle is None


def test_open_update_older_than_the_open_candle_is_ignored() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(3, close=1.0))
    buf.apply(k(2, close=2.0))
    assert buf.open_candle is not None and buf.open_candle.close == 1.0


def test_next_candle_opens_after_the_close() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, closed=True))
    buf.apply(k(1))
    assert buf.open_candle == k(1)
    assert buf.take_gaps() == []


def test_oldest_closed_candle_is_evicted_past_maxlen() -> None:
    buf = CandleBuffer("1m", maxlen=3)
    for n in range(5):
        buf.apply(k(n, closed=True))
    assert [c.open_time for c in buf.closed] == [T0 + n * MIN for n in (2, 3, 4)]
    assert len(buf) == 3
    assert buf.last(2) == [k(3, closed=True), k(4, closed=True)]
    assert buf.last(10) == list(buf.closed)
    assert buf.last(0) == []
    assert buf.last_closed == k(4, closed=True)


def test_skipped_closes_are_reported_as_a_gap() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, closed=True))
    buf.apply(k(4, closed=True))
    gap = CandleGap("BTCUSDT", "1m", T0 + MIN, T0 + 4 * MIN)
    assert buf.take_gaps() == [gap]
    assert gap.missing == 3
    assert buf.take_gaps() == []
    assert buf.missing_open_times(T0) == [T0 + n * MIN for n in (1, 2, 3)]


def test_an_open_candle_that_never_closed_counts_as_missing() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, close=101.0))  # seen open, then the connection dropped
    buf.apply(k(2, closed=True))
    assert buf.take_gaps() == [CandleGap("BTCUSDT", "1m", T0, T0 + 2 * MIN)]


def test_first_close_without_history_is_not_a_gap() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(7, closed=True))
    assert buf.take_gaps() == []


def test_backfill_fills_a_gap_in_order_without_duplicates() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, closed=True))
    buf.apply(k(4, closed=True))
    rest = [k(n, closed=True, close=1.0) for n in (0, 1, 2, 3)] + [k(5)]  # 0 known, 5 open
    added = buf.backfill(rest)
    assert [c.open_time for c in added] == [T0 + n * MIN for n in (1, 2, 3)]
    assert [c.open_time for c in buf.closed] == [T0 + n * MIN for n in range(5)]
    assert buf.closed[0] == k(0, closed=True)  # the known candle is kept, not replaced
    assert buf.missing_open_times(T0 - MIN) == []
    assert buf.backfill(rest) == []


def test_backfill_past_the_last_close_advances_it() -> None:
    buf = CandleBuffer("1m")
    buf.apply(k(0, closed=True))
    buf.apply(k(1))
    buf.backfill([k(1, closed=True), k(2, closed=True)])
    assert buf.open_candle is None
    assert buf.apply(k(2, closed=True)) is None  # already known from REST
    assert buf.apply(k(3, closed=True)) == k(3, closed=True)
    assert buf.take_gaps() == []


def test_backfill_respects_maxlen() -> None:
    buf = CandleBuffer("1m", maxlen=2)
    buf.apply(k(5, closed=True))
    added = buf.backfill([k(n, closed=True) for n in range(5)])
    assert [c.open_time for c in buf.closed] == [T0 + 4 * MIN, T0 + 5 * MIN]
    assert added == [k(4, closed=True)]


def test_klines_of_another_interval_or_symbol_are_refused() -> None:
    buf = CandleBuffer("1m", symbol="BTCUSDT")
    with pytest.raises(CandleError):
        buf.apply(k(0, closed=True, interval="5m"))
    with pytest.raises(CandleError) as info:
        buf.apply(k(0, closed=True, symbol="ETHUSDT"))
    assert isinstance(info.value, GatewayError)
    with pytest.raises(CandleError):
        CandleBuffer("7m")
    with pytest.raises(CandleError):
        CandleBuffer("1m", maxlen=0)


def test_monthly_candles_find_gaps_by_close_time() -> None:
    jan, feb, mar = 1_767_225_600_000, 1_769_904_000_000, 1_772_323_200_000
    buf = CandleBuffer("1M")

    def month(t: int, nxt: int) -> Kline:
        return attrs.evolve(k(0, closed=True, interval="1M"), open_time=t, close_time=nxt - 1)

    buf.apply(month(jan, feb))
    buf.apply(month(mar, 1_775_001_600_000))
    gaps = buf.take_gaps()
    assert gaps == [CandleGap("BTCUSDT", "1M", feb, mar)]
    assert gaps[0].missing is None
    with pytest.raises(CandleError):
        buf.missing_open_times(jan)


def test_candle_book_keeps_one_buffer_per_interval() -> None:
    book = CandleBook("BTCUSDT", maxlen=10, intervals=["1m"])
    assert book.apply(k(0, closed=True)) == k(0, closed=True)
    five = k(0, closed=True, interval="5m", step=5 * MIN)
    assert book.apply(five) == five
    assert book.intervals == ("1m", "5m")
    assert "5m" in book and len(book) == 2
    assert book["1m"].closed == (k(0, closed=True),)
    book.apply(k(3, closed=True))
    assert book.take_gaps() == [CandleGap("BTCUSDT", "1m", T0 + MIN, T0 + 3 * MIN)]


def test_candle_book_counts_every_update_per_interval_as_proof_of_life() -> None:
    book = CandleBook("BTCUSDT", maxlen=10)
    assert book.updates("1m") == book.updates("5m") == 0  # no buffer yet: nothing seen
    for update in (k(0), k(0, close=101.0), k(0, closed=True), k(0, closed=True)):
        book.apply(update)  # the repeated close is ignored, but the stream did push it
    book.apply(k(0, interval="5m", step=5 * MIN))
    assert (book.updates("1m"), book.updates("5m")) == (4, 1)
    book.buffer("1m").backfill([k(1, closed=True)])  # REST candles are no sign of the stream
    assert book.updates("1m") == 4 and book["1m"].ignored == 1


def test_kline_from_rest_row() -> None:
    row = [T0, "94213.57", "94251.00", "94198.02", "94240.10", "12.48", T0 + MIN - 1,
           "1176221.83", 1235, "7.10", "669201.44", "0"]  # fmt: skip
    closed = kline_from_rest("BTCUSDT", "1m", row, now_ms=T0 + MIN)
    assert closed.is_closed and closed.close == 94240.10 and closed.trade_count == 1235
    assert not kline_from_rest("BTCUSDT", "1m", row, now_ms=T0 + 30_000).is_closed


def test_recorded_klines_close_each_candle_once() -> None:
    """2021-08-14: FTMUSDT and SXPBTC close their 14:46 candle and open the next."""
    book: dict[str, CandleBuffer] = {}
    closes: list[Kline] = []
    for frame in stream_frames("2021-08-14"):
        ev = frame.event
        if isinstance(ev, Kline):
            buf = book.setdefault(ev.symbol, CandleBuffer(ev.interval))
            out = buf.apply(ev)
            if out is not None:
                closes.append(out)
            out_again = buf.apply(ev)  # replayed frame (overlap): never a second close
            assert out_again is None
    assert sorted(c.symbol for c in closes) == ["FTMUSDT", "SXPBTC"]
    for c in closes:
        assert c.open_time == 1628952360000 and c.close_time == 1628952419999
        nxt = book[c.symbol].open_candle
        assert nxt is not None and nxt.open_time == c.close_time + 1
    assert all(not b.take_gaps() for b in book.values())


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=60))
def test_closed_candles_stay_sorted_unique_and_each_close_is_published_once(
    updates: list[tuple[int, bool]],
) -> None:
    buf = CandleBuffer("1m", maxlen=8)
    published: list[int] = []
    for n, closed in updates:
        out = buf.apply(k(n, closed=closed))
        if out is not None:
            published.append(out.open_time)
    times = [c.open_time for c in buf.closed]
    assert times == sorted(set(times)) and len(times) <= 8
    assert published == sorted(set(published))  # strictly increasing: once per candle
    assert times == published[-8:]
    open_candle = buf.open_candle
    if open_candle is not None and times:
        assert open_candle.open_time > times[-1]

"""Candles of every kline interval, built from one symbol's trades (sans-I/O, times in µs).

Each trade updates only the open one-second bucket; when a second ends the bucket is
folded into the open candle of every interval, and candles whose end has been reached
are closed. All intervals end on whole seconds, so candles close exactly at their
boundaries. A candle is a list ``[t, end, o, h, l, c, v, q, n, f, L, V, Q]``: prices and
base volumes in 1e-8 units, quote volumes in 1e-16 units, ``end`` exclusive.
"""

from __future__ import annotations

import calendar
import time
from collections import deque
from collections.abc import Iterator

from gateway.core.streams import INTERVAL_MS, INTERVALS

__all__ = ["ALIAS", "OFFSET_US", "Candle", "CandleSet", "SeriesKey", "bucket_bounds"]

Candle = list[int]
#: (interval, tz offset suffix or ""), e.g. ("1d", "+08:00")
SeriesKey = tuple[str, str]

OT, END, OP, HI, LO, CL, VOL, QV, CNT, FID, LID, VB, QB = range(13)
_SECOND = 1_000_000
_DAY = 86_400 * _SECOND
#: Kline timezone offsets the streams accept, in microseconds.
OFFSET_US: dict[str, int] = {"": 0, "+08:00": 8 * 3600 * _SECOND}


def bucket_bounds(interval: str, offset_us: int, t_us: int) -> tuple[int, int]:
    """The ``[start, end)`` of the ``interval`` candle holding ``t_us`` (UTC + offset buckets)."""
    local = t_us + offset_us
    if interval == "1M":
        y, m = time.gmtime(local // _SECOND)[:2]
        start = calendar.timegm((y, m, 1, 0, 0, 0)) * _SECOND
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        end = calendar.timegm((ny, nm, 1, 0, 0, 0)) * _SECOND
        return start - offset_us, end - offset_us
    length = INTERVAL_MS[interval] * 1000
    shift = 4 * _DAY if interval == "1w" else 0  # weeks start on Monday; 1970-01-01 was a Thursday
    start = (local - shift) // length * length + shift
    return start - offset_us, start + length - offset_us


def _series_keys() -> list[SeriesKey]:
    keys: list[SeriesKey] = [(i, "") for i in INTERVALS]
    for interval in INTERVALS:
        ms = INTERVAL_MS.get(interval)
        if ms is None or (8 * 3600 * 1000) % ms or interval == "1w":
            keys.append((interval, "+08:00"))
    return keys


_KEYS = _series_keys()
#: Which series a (interval, offset) stream reads: offset series that equal UTC share it.
ALIAS: dict[SeriesKey, SeriesKey] = {(i, ""): (i, "") for i in INTERVALS}
for _i in INTERVALS:
    ALIAS[(_i, "+08:00")] = (_i, "+08:00") if (_i, "+08:00") in _KEYS else (_i, "")


def _empty(start: int, end: int, prev_close: int) -> Candle:
    return [start, end, prev_close, prev_close, prev_close, prev_close, 0, 0, 0, -1, -1, 0, 0]


def _fold(into: Candle, b: Candle) -> None:
    if b[CNT] == 0:
        return
    if into[CNT] == 0:
        into[OP], into[HI], into[LO], into[FID] = b[OP], b[HI], b[LO], b[FID]
    else:
        if b[HI] > into[HI]:
            into[HI] = b[HI]
        if b[LO] < into[LO]:
            into[LO] = b[LO]
    into[CL], into[LID] = b[CL], b[LID]
    into[VOL] += b[VOL]
    into[QV] += b[QV]
    into[CNT] += b[CNT]
    into[VB] += b[VB]
    into[QB] += b[QB]


class CandleSet:
    """Open and recently closed candles of every interval for one symbol."""

    __slots__ = ("_history", "_open", "_sec", "last_price")

    def __init__(self, now_us: int, price: int, history: int) -> None:
        self.last_price = price
        sec_start = now_us - now_us % _SECOND
        self._sec = _empty(sec_start, sec_start + _SECOND, price)
        self._open: dict[SeriesKey, Candle] = {}
        self._history: dict[SeriesKey, deque[tuple[int, ...]]] = {}
        for key in _KEYS:
            start, end = bucket_bounds(key[0], OFFSET_US[key[1]], sec_start)
            self._open[key] = _empty(start, end, price)
            # the 1m series doubles as the 24h rolling-window store of the tickers
            size = max(history, 1500) if key == ("1m", "") else history
            self._history[key] = deque(maxlen=size)

    def add_trade(
        self, t_us: int, price: int, qty: int, trade_id: int, buyer_maker: bool
    ) -> list[tuple[SeriesKey, Candle]]:
        """Add one trade at ``t_us`` (not earlier than the last); returns candles it closed."""
        closed = self.advance(t_us) if t_us >= self._sec[END] else []
        s = self._sec
        quote = price * qty
        if s[CNT] == 0:
            s[OP] = s[HI] = s[LO] = price
            s[FID] = trade_id
        elif price > s[HI]:
            s[HI] = price
        elif price < s[LO]:
            s[LO] = price
        s[CL] = price
        s[LID] = trade_id
        s[VOL] += qty
        s[QV] += quote
        s[CNT] += 1
        if not buyer_maker:
            s[VB] += qty
            s[QB] += quote
        self.last_price = price
        return closed

    def advance(self, now_us: int) -> list[tuple[SeriesKey, Candle]]:
        """Close every candle whose end is at or before ``now_us``; returns them, oldest first."""
        closed: list[tuple[SeriesKey, Candle]] = []
        sec = self._sec
        while sec[END] <= now_us:
            boundary = sec[END]
            for key, candle in self._open.items():
                _fold(candle, sec)
                if candle[END] <= boundary:
                    closed.append((key, candle))
                    self._history[key].append(tuple(candle))
                    start, end = bucket_bounds(key[0], OFFSET_US[key[1]], boundary)
                    self._open[key] = _empty(start, end, candle[CL])
            nxt = boundary
            if now_us - boundary > 2 * _SECOND:
                # a quiet stretch: skip the empty seconds up to the next longer candle's end
                limit = min(c[END] for k, c in self._open.items() if k[0] != "1s")
                nxt = max(boundary, min(now_us - now_us % _SECOND, limit - _SECOND))
                if nxt > boundary:
                    self._open[("1s", "")] = _empty(nxt, nxt + _SECOND, sec[CL])
            sec = self._sec = _empty(nxt, nxt + _SECOND, sec[CL])
        return closed

    def current(self, key: SeriesKey) -> Candle:
        """The open candle of ``key`` including the open second's trades (a fresh list)."""
        candle = list(self._open[ALIAS[key]])
        _fold(candle, self._sec)
        return candle

    def history(self, key: SeriesKey) -> deque[tuple[int, ...]]:
        """Closed candles of ``key``, oldest first (bounded)."""
        return self._history[ALIAS[key]]

    def minutes_since(self, start_us: int) -> Iterator[tuple[int, ...] | Candle]:
        """Closed one-minute candles opening at or after ``start_us``, then the open one."""
        hist = self._history[("1m", "")]
        # the newest candles are at the right end: walk back to the first in the window
        idx = len(hist)
        while idx > 0 and hist[idx - 1][OT] >= start_us:
            idx -= 1
        for i in range(idx, len(hist)):
            yield hist[i]
        yield self.current(("1m", ""))

    def close_before(self, start_us: int) -> int:
        """Close price of the last minute candle that opened before ``start_us``."""
        for candle in reversed(self._history[("1m", "")]):
            if candle[OT] < start_us:
                return candle[CL]
        return self._history[("1m", "")][0][OP] if self._history[("1m", "")] else self.last_price

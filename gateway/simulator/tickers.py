"""Rolling-window statistics (24h, 1h, 4h, 1d tickers and the 5m average price), sans-I/O.

Windows are minute-granular: they start at the beginning of the minute that holds
``now - window`` (as the exchange documents for rolling-window tickers) and end now.
"""

from __future__ import annotations

import attrs

from gateway.simulator.candles import CL, CNT, END, FID, HI, LID, LO, OP, QV, VOL, CandleSet

__all__ = ["WINDOW_US", "WindowStats", "average_price", "window_stats"]

_MINUTE = 60_000_000
#: Window lengths in microseconds by name.
WINDOW_US: dict[str, int] = {"1h": 3600_000_000, "4h": 4 * 3600_000_000, "1d": 86400_000_000,
                             "24h": 86400_000_000, "5m": 5 * _MINUTE}  # fmt: skip


@attrs.frozen(slots=True)
class WindowStats:
    """Statistics of one window: prices/volumes in 1e-8 units, quote volume in 1e-16."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    count: int
    first_id: int
    last_id: int
    open_time: int  # µs
    close_time: int  # µs
    prev_close: int


def window_stats(candles: CandleSet, now_us: int, window_us: int) -> WindowStats:
    """Statistics of the trades in ``[minute_floor(now - window), now]``."""
    start = (now_us - window_us) // _MINUTE * _MINUTE
    o = h = lo = c = -1
    v = q = n = 0
    first = last = -1
    for candle in candles.minutes_since(start):
        if not candle[CNT] or candle[END] <= start:
            continue
        if o < 0:
            o, h, lo, first = candle[OP], candle[HI], candle[LO], candle[FID]
        else:
            h = max(h, candle[HI])
            lo = min(lo, candle[LO])
        c, last = candle[CL], candle[LID]
        v += candle[VOL]
        q += candle[QV]
        n += candle[CNT]
    if n == 0:
        o = h = lo = c = candles.last_price
    return WindowStats(o, h, lo, c, v, q, n, first, last, start, now_us,
                       candles.close_before(start))  # fmt: skip


def average_price(candles: CandleSet, now_us: int) -> int:
    """Volume-weighted average price of the last five minutes (1e-8 units)."""
    stats = window_stats(candles, now_us, WINDOW_US["5m"])
    return stats.quote_volume // stats.volume if stats.volume else candles.last_price

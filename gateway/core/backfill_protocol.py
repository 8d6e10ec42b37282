"""The backfill protocol: what a symbol asks of REST and what comes back, as plain values.

A symbol's machine asks for the ids (or candle open times) a gap skipped, or for a
depth snapshot, with a `BackfillRequest`; the backfiller answers each with one or more
`BackfillResult` s (a long gap a page at a time) and asks the symbol, through `Need`,
whether a request's rows are still wanted. The REST price fallback speaks to the symbol
with a `FallbackPrice`. No I/O here: `gateway.runtime.backfill` does the fetching.
"""

from __future__ import annotations

import enum

import attrs

from gateway.core.events import AggTrade, Kline, Trade

__all__ = ["BackfillRequest", "BackfillResult", "DepthSnapshot", "FallbackPrice", "Need",
           "stream_of"]  # fmt: skip


class Need(enum.Enum):
    """What a symbol still wants from a trade or aggTrade backfill request."""

    ROWS = "rows"  # its gap is pending: publish the rows
    PRICES = "prices"  # its gap already ended unfilled: only armed stops want its prices
    NOTHING = "nothing"  # its gap ended unfilled and no stop is armed: skip it


@attrs.frozen(slots=True)
class DepthSnapshot:
    """``GET /api/v3/depth``: the order book at ``last_update_id``."""

    symbol: str
    last_update_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@attrs.frozen(slots=True)
class BackfillRequest:
    """Fetch ``first..last`` (ids for trade and aggTrade; open times in ms for a kline
    interval; ignored for a ``depth`` snapshot)."""

    symbol: str
    kind: str  # "trade", "aggTrade", "kline" or "depth"
    first: int
    last: int
    interval: str | None = None
    #: Exchange trade times (ms) of the last trade before and the first after a trade
    #: gap: the window ``aggTrades`` is asked for when ``historicalTrades`` fails.
    after_time: int | None = None
    before_time: int | None = None
    #: Asked again after REST failed for good: its gap already ended unfilled, and only
    #: the prices matter, to an armed stop (the rows are never published).
    prices_only: bool = False
    round: int = 0  #: how often it was asked again so far


@attrs.frozen(slots=True)
class BackfillResult:
    """What REST returned for a request (``events`` oldest first, from ``request.first``).

    ``missing_from`` is None when all of ``first..last`` was served; otherwise the first
    id (or open time) not served, and ``missing_from..last`` is the part not served, for
    the reason in ``error``.

    ``stop_prices`` (plain-trade requests only): the (lowest, highest) price of the
    ``stop_rows`` aggregate trades whose ``f..l`` overlap ``missing_from..last``, for the
    stop-loss book; None when there is no unserved part, no time window, or ``aggTrades``
    failed too (then ``error`` says so).

    ``final`` False: one part of a long trade or aggTrade request, its rows in order
    (the parts together start at ``request.first``); the request's last result, final,
    holds the rest and how it ended. ``rest_failed``: the unserved part is REST's
    failure (retries used up, a bad answer), not the budget's or the history's.
    """

    request: BackfillRequest
    events: tuple[Trade | AggTrade | Kline | DepthSnapshot, ...]
    error: str | None = None
    missing_from: int | None = None
    stop_prices: tuple[float, float] | None = None
    stop_rows: int = 0
    final: bool = True
    rest_failed: bool = False


@attrs.frozen(slots=True)
class FallbackPrice:
    """REST fallback to a symbol: the exchange's last price while no live trade came.

    ``live_trades``: the symbol's live trade count when the poll was sent; a live trade
    since then makes the price stale (the stream and its backfill cover that time).
    """

    price: float
    live_trades: int = -1


def stream_of(request: BackfillRequest) -> str:
    """The stream name a backfill request fills (``kline_<interval>`` for candles)."""
    return request.kind if request.interval is None else f"kline_{request.interval}"

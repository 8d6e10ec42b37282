"""The REST endpoints that fill gaps: ``depth``, ``klines``, ``aggTrades`` and plain trades.

Served from the same `Market` as the streams, so ``depth``'s ``lastUpdateId`` fits the
diff stream's update ids and ``aggTrades`` / ``historicalTrades`` fill trade gaps; a replay
answers ``depth`` with the snapshot recorded with its frames.
"""

from __future__ import annotations

import itertools
from typing import Any

from starlette.requests import Request

from gateway.core.streams import INTERVALS
from gateway.simulator.candles import OT as OPEN_T
from gateway.simulator.encode import fmt8, kline_body
from gateway.simulator.rest_params import ApiError, RestContext, end_us, int_param, time_us

__all__ = ["agg_trades", "depth", "historical_trades", "klines", "recent_trades"]

_E8 = 100_000_000  # prices and quantities are integers in 1e-8 units


async def depth(ctx: RestContext, request: Request) -> dict[str, Any]:
    """``/api/v3/depth``: the book's best ``limit`` levels per side and its update id."""
    sym = ctx.symbol_of(request)
    limit = ctx.limit_of(request, 100, 5000, clamp=True)
    if ctx.side.recorded_depth is not None:  # a replay: the snapshot taken with the frames
        body = ctx.side.recorded_depth.get(sym.name)
        if body is None:
            raise ApiError(-1121, f"No depth snapshot of {sym.name} was recorded.")
        return {"lastUpdateId": body["lastUpdateId"], "bids": body["bids"][:limit],
                "asks": body["asks"][:limit]}  # fmt: skip
    last, bids, asks = sym.depth(limit)
    return {"lastUpdateId": last, "bids": [[fmt8(p), fmt8(q)] for p, q in bids],
            "asks": [[fmt8(p), fmt8(q)] for p, q in asks]}  # fmt: skip


async def klines(ctx: RestContext, request: Request) -> list[list[Any]]:
    """``/api/v3/klines`` (and ``uiKlines``): candles by open time, the open one included."""
    sym = ctx.symbol_of(request)
    interval = request.query_params.get("interval", "")
    if interval not in INTERVALS:
        raise ApiError(-1120, "Invalid interval.")
    limit = ctx.limit_of(request, 500, 1000)
    start = time_us(int_param(request, "startTime"))
    end = time_us(int_param(request, "endTime"))
    div = ctx.div_of(request)
    key = (interval, "")
    rows = [*sym.candles.history(key), tuple(sym.candles.current(key))]
    rows = [r for r in rows if (start is None or r[OPEN_T] >= start)
            and (end is None or r[OPEN_T] <= end)]  # fmt: skip
    rows = rows[:limit] if start is not None else rows[-limit:]
    out = []
    for r in rows:
        k = kline_body(sym.name, interval, r, False, div)
        out.append([k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"],
                    k["V"], k["Q"], "0"])  # fmt: skip
    return out


async def agg_trades(ctx: RestContext, request: Request) -> list[dict[str, Any]]:
    """``/api/v3/aggTrades``: by ``fromId``, by time window, or the newest ``limit``."""
    sym = ctx.symbol_of(request)
    limit = ctx.limit_of(request, 500, 1000)
    from_id = int_param(request, "fromId")
    start = time_us(int_param(request, "startTime"))
    end = end_us(int_param(request, "endTime"))  # both inclusive, in ms (or µs)
    if from_id is not None and (start is not None or end is not None):
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    rows = list(sym.aggs) if from_id is None else []
    if from_id is not None and sym.aggs:
        skip = max(0, from_id - sym.aggs[0][0])
        rows = list(itertools.islice(sym.aggs, skip, skip + limit))
    elif start is not None or end is not None:
        rows = [r for r in rows if (start is None or r[5] >= start)
                and (end is None or r[5] <= end)]  # fmt: skip
        rows = rows[:limit] if start is not None else rows[-limit:]
    else:
        rows = rows[-limit:]
    div = ctx.div_of(request)
    return [{"a": a, "p": fmt8(p), "q": fmt8(q), "f": f, "l": last, "T": t // div, "m": m,
             "M": True} for a, p, q, f, last, t, m in rows]  # fmt: skip


async def recent_trades(ctx: RestContext, request: Request) -> list[dict[str, Any]]:
    """The newest ``limit`` plain trades (``/api/v3/trades``), Binance rows."""
    return _trade_rows(ctx, request, None)


async def historical_trades(ctx: RestContext, request: Request) -> list[dict[str, Any]]:
    """Plain trades by id (``fromId``; the newest ``limit`` without it), Binance rows."""
    return _trade_rows(ctx, request, int_param(request, "fromId"))


def _trade_rows(ctx: RestContext, request: Request, from_id: int | None) -> list[dict[str, Any]]:
    sym = ctx.symbol_of(request)
    limit = ctx.limit_of(request, 500, 1000)
    trades = sym.trades
    if from_id is None:
        rows = list(trades)[-limit:]
    elif trades:
        skip = max(0, from_id - trades[0][0])
        rows = list(itertools.islice(trades, skip, skip + limit))
    else:
        rows = []
    div = ctx.div_of(request)
    return [{"id": i, "price": fmt8(p), "qty": fmt8(q), "quoteQty": fmt8(p * q // _E8),
             "time": t // div, "isBuyerMaker": m, "isBestMatch": True}
            for i, p, q, t, m in rows]  # fmt: skip

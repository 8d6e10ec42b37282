"""REST answer rows as backfilled events: ``aggTrades``, ``historicalTrades``, ``depth``.

Pure parsing (no I/O), so the backfiller's page loops read rows the same way everywhere;
a row of the wrong shape raises ``LookupError``, ``TypeError`` or ``ValueError``, which the
backfiller counts as a bad answer. Candle rows are `gateway.core.candles.kline_from_rest`.
"""

from __future__ import annotations

from typing import Any

from gateway.core.backfill_protocol import DepthSnapshot
from gateway.core.events import AggTrade, Trade

__all__ = ["MAX_PAGE_ROWS", "agg_trade_from_rest", "depth_snapshot_from_rest",
           "trade_from_rest"]  # fmt: skip

MAX_PAGE_ROWS = 1000  # the exchange's page size for aggTrades, historicalTrades and klines


def agg_trade_from_rest(symbol: str, r: dict[str, Any]) -> AggTrade:
    """One ``GET /api/v3/aggTrades`` row as a backfilled `AggTrade`."""
    t = r["T"]
    return AggTrade(symbol, r["a"], float(r["p"]), float(r["q"]), r["f"], r["l"], t,
                    bool(r["m"]), t, 0, True)  # fmt: skip


def trade_from_rest(symbol: str, r: dict[str, Any]) -> Trade:
    """One ``GET /api/v3/historicalTrades`` row as a backfilled `Trade`."""
    t = r["time"]
    return Trade(symbol, r["id"], float(r["price"]), float(r["qty"]), t,
                 bool(r["isBuyerMaker"]), t, 0, True)  # fmt: skip


def depth_snapshot_from_rest(symbol: str, body: dict[str, Any]) -> DepthSnapshot:
    """One ``GET /api/v3/depth`` body as a `DepthSnapshot` (prices and sizes as floats)."""
    return DepthSnapshot(
        symbol, int(body["lastUpdateId"]),
        tuple((float(p), float(q)) for p, q in body["bids"]),
        tuple((float(p), float(q)) for p, q in body["asks"]),
    )  # fmt: skip

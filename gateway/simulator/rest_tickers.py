"""The REST ticker endpoints: ``ticker/24hr``, ``avgPrice``, ``ticker/bookTicker``, ``price``.

Each answers one object for ``symbol=``, and a list for ``symbols=[...]`` or for no symbol
(every symbol that trades); ``avgPrice`` takes one symbol only.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.simulator.encode import fmt8, ticker_dict
from gateway.simulator.market import SymbolMarket
from gateway.simulator.rest_params import RestContext
from gateway.simulator.tickers import average_price

__all__ = ["avg_price", "book_ticker", "price", "ticker_24hr"]

#: The 24hr ticker stream's short keys and the REST answer's long ones.
_TICKER_24HR_KEYS = (
    ("s", "symbol"), ("p", "priceChange"), ("P", "priceChangePercent"),
    ("w", "weightedAvgPrice"), ("x", "prevClosePrice"), ("c", "lastPrice"), ("Q", "lastQty"),
    ("b", "bidPrice"), ("B", "bidQty"), ("a", "askPrice"), ("A", "askQty"),
    ("o", "openPrice"), ("h", "highPrice"), ("l", "lowPrice"), ("v", "volume"),
    ("q", "quoteVolume"), ("O", "openTime"), ("C", "closeTime"), ("F", "firstId"),
    ("L", "lastId"), ("n", "count"),
)  # fmt: skip


async def ticker_24hr(ctx: RestContext, request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    """``/api/v3/ticker/24hr``: the rolling 24-hour statistics."""
    div = ctx.div_of(request)
    return ctx.tickers(request, lambda sym: _ticker_24hr_of(ctx, sym, div))


def _ticker_24hr_of(ctx: RestContext, sym: SymbolMarket, div: int) -> dict[str, Any]:
    t = ticker_dict(sym.ticker(ctx.clock.now_us()), div)
    return {long: t[short] for short, long in _TICKER_24HR_KEYS}


async def avg_price(ctx: RestContext, request: Request) -> dict[str, Any]:
    """``/api/v3/avgPrice``: the 5-minute average price of one symbol."""
    sym = ctx.symbol_of(request)
    now = ctx.clock.now_us()
    return {"mins": 5, "price": fmt8(average_price(sym.candles, now)),
            "closeTime": sym.last_trade_time // ctx.div_of(request)}  # fmt: skip


async def book_ticker(ctx: RestContext, request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    """``/api/v3/ticker/bookTicker``: the best bid and ask with their sizes."""
    return ctx.tickers(request, _book_ticker_of)


def _book_ticker_of(sym: SymbolMarket) -> dict[str, Any]:
    s, _, b, bq, a, aq = sym.book_ticker()
    return {"symbol": s, "bidPrice": fmt8(b), "bidQty": fmt8(bq), "askPrice": fmt8(a),
            "askQty": fmt8(aq)}  # fmt: skip


async def price(ctx: RestContext, request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    """``/api/v3/ticker/price``: the last price."""
    return ctx.tickers(request, _price_of)


def _price_of(sym: SymbolMarket) -> dict[str, Any]:
    return {"symbol": sym.name, "price": fmt8(sym.candles.last_price)}

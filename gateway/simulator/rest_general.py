"""The REST general endpoints: ``ping``, ``time`` and ``exchangeInfo``.

``exchangeInfo`` lists the market's symbols with their base and quote assets (split off a
known quote), the tick size and the documented rate limits.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.simulator.encode import fmt8
from gateway.simulator.rest_params import ApiError, RestContext, symbol_list

__all__ = ["exchange_info", "ping", "server_time", "split_symbol"]

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``symbol``'s base and quote asset (a known quote suffix, else its last 3 letters)."""
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3] or symbol, symbol[-3:]


async def ping(ctx: RestContext, request: Request) -> dict[str, Any]:
    """``/api/v3/ping``: an empty object."""
    return {}


async def server_time(ctx: RestContext, request: Request) -> dict[str, Any]:
    """``/api/v3/time``: the market clock in the request's time unit."""
    return {"serverTime": ctx.clock.now_us() // ctx.div_of(request)}


async def exchange_info(ctx: RestContext, request: Request) -> dict[str, Any]:
    """``/api/v3/exchangeInfo``: every listed symbol, or those ``symbol``/``symbols`` name."""
    names: list[str] = list(ctx.market.listed)
    one = request.query_params.get("symbol")
    many = request.query_params.get("symbols")
    if one or many:
        wanted = [one] if one else symbol_list(many or "[]")
        if any(w not in names for w in wanted):
            raise ApiError(-1121, "Invalid symbol.")
        names = wanted
    tick = fmt8(ctx.market.tick_e8)
    symbols = []
    for name in names:
        base, quote = split_symbol(name)
        symbols.append({
            "symbol": name, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
            "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True,
            "permissions": [], "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick,
                 "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": "0.00100000",
                 "maxQty": "9000.00000000", "stepSize": "0.00100000"},
            ],
        })  # fmt: skip
    return {
        "timezone": "UTC", "serverTime": ctx.clock.now_us() // ctx.div_of(request),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 6000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 300000},
        ],
        "exchangeFilters": [], "symbols": symbols,
    }  # fmt: skip

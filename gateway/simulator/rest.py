"""The REST side: the public ``/api/v3`` market endpoints a gateway needs, on hypercorn.

Served from the same `Market` as the streams, so ``depth``'s ``lastUpdateId`` fits the
diff stream's update ids and ``aggTrades`` / ``historicalTrades`` fill trade gaps. Errors
use the exchange's bodies (``{"code": -1121, "msg": "Invalid symbol."}``) with HTTP 400;
unknown paths are 404 (wrong methods 405) with a JSON body too; each is logged (WARNING).

Every answer carries ``X-MBX-USED-WEIGHT-1M`` (the documented weights, counted per
minute of trio time); past 6000 a request is answered 429 with ``Retry-After``. `RestSide`
holds the faults tests inject (`SimulatorControl.fail_rest`, ``hang_rest``, ``rest_down``)
and the log of requests they assert on.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.core.streams import INTERVALS
from gateway.simulator.candles import OT as OPEN_T
from gateway.simulator.clock import EventClock
from gateway.simulator.config import SimulatorConfig, TimeUnit
from gateway.simulator.encode import fmt8, kline_body, ticker_dict
from gateway.simulator.market import Market, SymbolMarket
from gateway.simulator.tickers import average_price

if TYPE_CHECKING:
    from gateway.simulator.tls import ServerTls

__all__ = ["RestFault", "RestRequest", "RestSide", "build_app", "request_weight", "serve_rest"]

logger = logging.getLogger(__name__)
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL")


#: Documented request weights (binance-market-streams.md 5.2); depth goes by its limit.
_WEIGHTS = {"ping": 1, "time": 1, "exchangeInfo": 20, "klines": 2, "uiKlines": 2,
            "aggTrades": 4, "historicalTrades": 25, "trades": 25, "ticker/24hr": 2,
            "avgPrice": 2, "ticker/bookTicker": 2, "ticker/price": 2}  # fmt: skip
_TICKERS = ("ticker/24hr", "ticker/bookTicker", "ticker/price")
_SYMBOLS_RANGE = r"""'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'"""
WEIGHT_LIMIT = 6000  #: REQUEST_WEIGHT per minute
_E8 = 100_000_000  # prices and quantities are integers in 1e-8 units


def request_weight(route: str, limit: int | None, symbols: int | None = 1) -> int:
    """The weight of one request to ``/api/v3/<route>`` (``limit``: depth's parameter;
    ``symbols``: how many a ticker asks for, None for all)."""
    if route == "depth":
        n = 100 if limit is None else limit
        return 5 if n <= 100 else 25 if n <= 500 else 50 if n <= 1000 else 250
    if route in _TICKERS and symbols != 1:
        if route != "ticker/24hr":
            return 4
        return 80 if symbols is None or symbols > 100 else 40 if symbols > 20 else 2
    return _WEIGHTS.get(route, 1)


def _symbol_count(request: Request) -> int | None:
    """How many symbols a request names (for its weight): 1, the ``symbols`` list's
    length, or None (no symbol: all of them)."""
    params = request.query_params
    if "symbol" in params or "symbols" not in params:
        return 1 if "symbol" in params else None
    try:
        wanted = orjson.loads(params["symbols"])
    except orjson.JSONDecodeError:
        return 1
    return len(wanted) if isinstance(wanted, list) else 1


@attrs.frozen(slots=True)
class RestRequest:
    """One request the REST side received: when (trio time), its route and the status sent
    (0: never answered, a hang)."""

    time: float
    route: str
    status: int


@attrs.define
class RestFault:
    """One queued REST fault: answer ``left`` more requests to ``route`` (None: any) with
    ``status`` (0: never answer), with ``Retry-After`` if ``retry_after`` is set."""

    status: int  # 0: hang instead of answering; 200: a malformed body
    left: int
    route: str | None
    retry_after: float | None


class RestSide:
    """Injected REST faults, the per-minute weight and a bounded log of requests."""

    def __init__(self) -> None:
        self.faults: list[RestFault] = []
        self.down_until = -math.inf
        self.minute = -1
        self.used_weight = 0
        self.log: deque[RestRequest] = deque(maxlen=100_000)
        #: Replay: recorded ``/api/v3/depth`` bodies per symbol (None: the market's book).
        self.recorded_depth: dict[str, dict[str, Any]] | None = None

    def take(self, route: str) -> RestFault | None:
        """The fault to apply to this request to ``route``, if one is queued (used up)."""
        for fault in self.faults:
            if fault.route is None or fault.route == route:
                fault.left -= 1
                if fault.left <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def spend(self, weight: int) -> int:
        """Count ``weight`` in this minute; returns the minute's total."""
        minute = int(trio.current_time() // 60)
        if minute != self.minute:
            self.minute, self.used_weight = minute, 0
        self.used_weight += weight
        return self.used_weight

    def requests(self, route: str | None = None) -> list[RestRequest]:
        """Logged requests, oldest first (to ``route`` only, if given)."""
        return [r for r in self.log if route is None or r.route == route]


class _ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def _log_refused(request: Request, resp: Response) -> None:
    """One WARNING line for a REST answer that is an error: what was asked, and the answer."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = bytes(resp.body[:300]).decode("utf-8", "replace")
    logger.warning("REST %s %s refused: HTTP %d %s", request.method, target[:300],
                   resp.status_code, body)  # fmt: skip


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise _ApiError(-1100, f"Illegal characters found in parameter '{name}'; "
                               "legal range is '^[0-9]{1,20}$'.")  # fmt: skip
    return int(raw)


def _symbol_list(raw: str) -> list[str]:
    """A ``symbols`` parameter: a JSON array of strings, else ``-1100``."""
    try:
        wanted = orjson.loads(raw)
    except orjson.JSONDecodeError:
        wanted = None
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        raise _ApiError(-1100, "Illegal characters found in parameter 'symbols'; legal "
                               f"range is {_SYMBOLS_RANGE}.")  # fmt: skip
    return wanted


def _time_us(value: int | None) -> int | None:
    """REST time parameters may be ms or µs."""
    if value is None:
        return None
    return value if value >= 10**14 else value * 1000


def _end_us(value: int | None) -> int | None:
    """An inclusive ``endTime`` in µs: one in ms takes in its whole millisecond."""
    if value is None or value >= 10**14:
        return value
    return value * 1000 + 999


def _split(symbol: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-3] or symbol, symbol[-3:]


def build_app(
    config: SimulatorConfig, market: Market, clock: EventClock, side: RestSide | None = None
) -> Starlette:
    """The Starlette application over ``market`` (faults and weights kept in ``side``)."""
    rest = side if side is not None else RestSide()

    def div_of(request: Request) -> int:
        unit = request.headers.get("X-MBX-TIME-UNIT", config.time_unit.value).upper()
        return 1 if unit == TimeUnit.MICROSECOND.value else 1000

    def symbol_of(request: Request) -> SymbolMarket:
        name = request.query_params.get("symbol")
        if not name:
            raise _ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                   "or malformed.")  # fmt: skip
        sym = market.get(name) if name.isalnum() and name.isupper() else None
        if sym is None:
            raise _ApiError(-1121, "Invalid symbol.")
        return sym

    def symbols_of(request: Request) -> list[SymbolMarket] | None:
        """The symbols a ticker asks for: ``symbols=["A","B"]`` (JSON), or None when it
        names one with ``symbol=``; neither: every symbol that trades."""
        params = request.query_params
        if "symbols" not in params:
            return None if "symbol" in params else list(market.active)
        if "symbol" in params:
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
        wanted = _symbol_list(params["symbols"])
        found = [market.get(w) if w.isalnum() and w.isupper() else None for w in wanted]
        if any(f is None for f in found):
            raise _ApiError(-1121, "Invalid symbol.")
        return [f for f in found if f is not None]

    def tickers(
        request: Request, one: Callable[[SymbolMarket], dict[str, Any]]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """``one``'s answer for ``symbol=``, a list of them for ``symbols=`` or for none."""
        many = symbols_of(request)
        if many is None:
            return one(symbol_of(request))
        return [one(sym) for sym in many]

    def limit_of(request: Request, default: int, most: int, clamp: bool = False) -> int:
        limit = _int(request, "limit", default)
        assert limit is not None
        if limit > most and clamp:
            return most
        if not 1 <= limit <= most:
            raise _ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit

    async def ping(request: Request) -> dict[str, Any]:
        return {}

    async def server_time(request: Request) -> dict[str, Any]:
        return {"serverTime": clock.now_us() // div_of(request)}

    async def exchange_info(request: Request) -> dict[str, Any]:
        names: list[str] = list(market.listed)
        one = request.query_params.get("symbol")
        many = request.query_params.get("symbols")
        if one or many:
            wanted = [one] if one else _symbol_list(many or "[]")
            if any(w not in names for w in wanted):
                raise _ApiError(-1121, "Invalid symbol.")
            names = wanted
        tick = fmt8(market.tick_e8)
        symbols = []
        for name in names:
            base, quote = _split(name)
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
            "timezone": "UTC", "serverTime": clock.now_us() // div_of(request),
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
                 "limit": 300000},
            ],
            "exchangeFilters": [], "symbols": symbols,
        }  # fmt: skip

    async def depth(request: Request) -> dict[str, Any]:
        sym = symbol_of(request)
        limit = limit_of(request, 100, 5000, clamp=True)
        if rest.recorded_depth is not None:  # a replay: the snapshot taken with the frames
            body = rest.recorded_depth.get(sym.name)
            if body is None:
                raise _ApiError(-1121, f"No depth snapshot of {sym.name} was recorded.")
            return {"lastUpdateId": body["lastUpdateId"], "bids": body["bids"][:limit],
                    "asks": body["asks"][:limit]}  # fmt: skip
        last, bids, asks = sym.depth(limit)
        return {"lastUpdateId": last, "bids": [[fmt8(p), fmt8(q)] for p, q in bids],
                "asks": [[fmt8(p), fmt8(q)] for p, q in asks]}  # fmt: skip

    async def klines(request: Request) -> list[list[Any]]:
        sym = symbol_of(request)
        interval = request.query_params.get("interval", "")
        if interval not in INTERVALS:
            raise _ApiError(-1120, "Invalid interval.")
        limit = limit_of(request, 500, 1000)
        start = _time_us(_int(request, "startTime"))
        end = _time_us(_int(request, "endTime"))
        div = div_of(request)
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

    async def agg_trades(request: Request) -> list[dict[str, Any]]:
        sym = symbol_of(request)
        limit = limit_of(request, 500, 1000)
        from_id = _int(request, "fromId")
        start = _time_us(_int(request, "startTime"))
        end = _end_us(_int(request, "endTime"))  # both inclusive, in ms (or µs)
        if from_id is not None and (start is not None or end is not None):
            raise _ApiError(-1128, "Combination of optional parameters invalid.")
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
        div = div_of(request)
        return [{"a": a, "p": fmt8(p), "q": fmt8(q), "f": f, "l": last, "T": t // div, "m": m,
                 "M": True} for a, p, q, f, last, t, m in rows]  # fmt: skip

    async def recent_trades(request: Request) -> list[dict[str, Any]]:
        """The newest ``limit`` plain trades (``/api/v3/trades``), Binance rows."""
        return trade_rows(request, None)

    async def historical_trades(request: Request) -> list[dict[str, Any]]:
        """Plain trades by id (``fromId``; the newest ``limit`` without it), Binance rows."""
        return trade_rows(request, _int(request, "fromId"))

    def trade_rows(request: Request, from_id: int | None) -> list[dict[str, Any]]:
        sym = symbol_of(request)
        limit = limit_of(request, 500, 1000)
        trades = sym.trades
        if from_id is None:
            rows = list(trades)[-limit:]
        elif trades:
            skip = max(0, from_id - trades[0][0])
            rows = list(itertools.islice(trades, skip, skip + limit))
        else:
            rows = []
        div = div_of(request)
        return [{"id": i, "price": fmt8(p), "qty": fmt8(q), "quoteQty": fmt8(p * q // _E8),
                 "time": t // div, "isBuyerMaker": m, "isBestMatch": True}
                for i, p, q, t, m in rows]  # fmt: skip

    async def ticker_24hr(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
        div = div_of(request)
        return tickers(request, lambda sym: ticker_24hr_of(sym, div))

    def ticker_24hr_of(sym: SymbolMarket, div: int) -> dict[str, Any]:
        t = ticker_dict(sym.ticker(clock.now_us()), div)
        keys = {"s": "symbol", "p": "priceChange", "P": "priceChangePercent",
                "w": "weightedAvgPrice", "x": "prevClosePrice", "c": "lastPrice",
                "Q": "lastQty", "b": "bidPrice", "B": "bidQty", "a": "askPrice", "A": "askQty",
                "o": "openPrice", "h": "highPrice", "l": "lowPrice", "v": "volume",
                "q": "quoteVolume", "O": "openTime", "C": "closeTime", "F": "firstId",
                "L": "lastId", "n": "count"}  # fmt: skip
        return {long: t[short] for short, long in keys.items()}

    async def avg_price(request: Request) -> dict[str, Any]:
        sym = symbol_of(request)
        now = clock.now_us()
        return {"mins": 5, "price": fmt8(average_price(sym.candles, now)),
                "closeTime": sym.last_trade_time // div_of(request)}  # fmt: skip

    async def book_ticker(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
        return tickers(request, book_ticker_of)

    def book_ticker_of(sym: SymbolMarket) -> dict[str, Any]:
        s, _, b, bq, a, aq = sym.book_ticker()
        return {"symbol": s, "bidPrice": fmt8(b), "bidQty": fmt8(bq), "askPrice": fmt8(a),
                "askQty": fmt8(aq)}  # fmt: skip

    async def price(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
        return tickers(request, price_of)

    def price_of(sym: SymbolMarket) -> dict[str, Any]:
        return {"symbol": sym.name, "price": fmt8(sym.candles.last_price)}

    def endpoint(
        route: str, fn: Callable[[Request], Awaitable[Any]],
    ) -> Callable[[Request], Awaitable[Response]]:  # fmt: skip
        async def handle(request: Request) -> Response:
            arrived = trio.current_time()
            resp = await answer(request, arrived)
            if resp.status_code:  # a hang was logged when it began
                rest.log.append(RestRequest(arrived, route, resp.status_code))
            if resp.status_code >= 400:
                _log_refused(request, resp)
            return resp

        async def answer(request: Request, now: float) -> Response:
            raw = request.query_params.get("limit", "")
            used = rest.spend(request_weight(route, int(raw) if raw.isdigit() else None,
                                             _symbol_count(request)))  # fmt: skip
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            if now < rest.down_until:
                resp = _json({"code": -1001, "msg": "Internal error; unable to process your "
                              "request. Please try again."}, 503)  # fmt: skip
                resp.headers.update(headers)
                return resp
            fault = rest.take(route)
            if fault is not None and fault.status == 0:
                rest.log.append(RestRequest(now, route, 0))
                await trio.sleep(3600)  # longer than any client waits
                return Response(status_code=0)
            if fault is not None and fault.status == 200:  # a 200 the client cannot parse
                resp = _json([[1, "1", "1"], {"x": None}])
                resp.headers.update(headers)
                return resp
            if fault is not None and fault.status:
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                code = -1003 if fault.status in (418, 429) else -1001
                resp = _json({"code": code, "msg": "Injected fault."}, fault.status)
                resp.headers.update(headers)
                return resp
            if used > WEIGHT_LIMIT:
                headers["Retry-After"] = str(60 - int(now % 60))
                msg = (f"Too much request weight used; current limit is {WEIGHT_LIMIT} "
                       "request weight per 1 MINUTE.")  # fmt: skip
                resp = _json({"code": -1003, "msg": msg}, 429)
                resp.headers.update(headers)
                return resp
            try:
                resp = _json(await fn(request))
            except _ApiError as exc:
                resp = _json({"code": exc.code, "msg": exc.msg}, exc.status)
            resp.headers.update(headers)
            return resp

        return handle

    routes = {
        "ping": ping, "time": server_time, "exchangeInfo": exchange_info, "depth": depth,
        "klines": klines, "uiKlines": klines, "aggTrades": agg_trades,
        "historicalTrades": historical_trades, "trades": recent_trades,
        "ticker/24hr": ticker_24hr, "avgPrice": avg_price, "ticker/bookTicker": book_ticker,
        "ticker/price": price,
    }  # fmt: skip
    async def no_route(request: Request, exc: Exception) -> Response:
        """404 / 405 as JSON with the weight header (never Starlette's text/plain)."""
        status = getattr(exc, "status_code", 404)
        route = request.url.path.removeprefix("/api/v3/")
        used = rest.spend(1)
        if status == 405:
            msg = f"Method {request.method} is not allowed for {request.url.path}."
        else:
            msg = f"Unknown endpoint {request.url.path}; this exchange serves /api/v3/ only."
        resp = _json({"code": -1000, "msg": msg}, status)
        resp.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        rest.log.append(RestRequest(trio.current_time(), route, status))
        _log_refused(request, resp)
        return resp

    return Starlette(
        routes=[Route(f"/api/v3/{p}", endpoint(p, fn)) for p, fn in routes.items()],
        exception_handlers={404: no_route, 405: no_route},
    )


async def serve_rest(
    config: SimulatorConfig, market: Market, clock: EventClock, shutdown: trio.Event,
    *, side: RestSide | None = None, tls: ServerTls | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:  # fmt: skip
    """Serve the REST side (HTTPS with ``tls``) until ``shutdown`` is set; reports the
    bound port when ready."""
    hc = HypercornConfig()
    hc.bind = [f"{config.host}:{config.rest_port}"]
    if tls is not None:
        hc.certfile, hc.keyfile = tls.cert_file, tls.key_file
    hc.accesslog = None
    hc.errorlog = None
    hc.graceful_timeout = 0.5
    app = build_app(config, market, clock, side)

    async def started(*, task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(app, hc, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(started)
        port = int(binds[0].rsplit(":", 1)[1])
        logger.info("REST side on %s", binds[0])
        task_status.started(port)

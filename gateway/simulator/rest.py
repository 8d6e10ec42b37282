"""The REST side: the public ``/api/v3`` market endpoints a gateway needs, on hypercorn.

Served from the same `Market` as the streams, so ``depth``'s ``lastUpdateId`` fits the
diff stream's update ids and ``aggTrades`` / ``historicalTrades`` fill trade gaps. Errors
use the exchange's bodies (``{"code": -1121, "msg": "Invalid symbol."}``) with HTTP 400;
unknown paths are 404 (wrong methods 405) with a JSON body too; each is logged (WARNING).

Every answer carries ``X-MBX-USED-WEIGHT-1M`` (the documented weights, counted per
minute of trio time); past 6000 a request is answered 429 with ``Retry-After``. `RestSide`
holds the faults tests inject (`SimulatorControl.fail_rest`, ``hang_rest``, ``rest_down``)
and the log of requests they assert on.

Here: the wrapper every endpoint answers through (weights, faults, errors) and the server.
The endpoints are in `rest_general`, `rest_market_data` and `rest_tickers`; parameters and
error bodies in `rest_params`; weights, faults and the request log in `rest_side`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.simulator.clock import EventClock
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.market import Market
from gateway.simulator.rest_general import exchange_info, ping, server_time
from gateway.simulator.rest_market_data import (
    agg_trades,
    depth,
    historical_trades,
    klines,
    recent_trades,
)
from gateway.simulator.rest_params import ApiError, RestContext, json_response
from gateway.simulator.rest_side import (
    WEIGHT_LIMIT,
    RestFault,
    RestRequest,
    RestSide,
    request_weight,
    symbol_count,
)
from gateway.simulator.rest_tickers import avg_price, book_ticker, price, ticker_24hr

if TYPE_CHECKING:
    from gateway.simulator.tls import ServerTls

# RestFault, RestRequest, RestSide, request_weight and WEIGHT_LIMIT: moved to rest_side.
__all__ = ["WEIGHT_LIMIT", "RestFault", "RestRequest", "RestSide", "build_app",
           "request_weight", "serve_rest"]  # fmt: skip

logger = logging.getLogger(__name__)


def _log_refused(request: Request, resp: Response) -> None:
    """One WARNING line for a REST answer that is an error: what was asked, and the answer."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body = bytes(resp.body[:300]).decode("utf-8", "replace")
    logger.warning("REST %s %s refused: HTTP %d %s", request.method, target[:300],
                   resp.status_code, body)  # fmt: skip


def build_app(
    config: SimulatorConfig, market: Market, clock: EventClock, side: RestSide | None = None
) -> Starlette:
    """The Starlette application over ``market`` (faults and weights kept in ``side``)."""
    rest = side if side is not None else RestSide()
    ctx = RestContext(config, market, clock, rest)

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
                                             symbol_count(request)))  # fmt: skip
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            if now < rest.down_until:
                msg = "Internal error; unable to process your request. Please try again."
                resp = json_response({"code": -1001, "msg": msg}, 503)
                resp.headers.update(headers)
                return resp
            fault = rest.take(route)
            if fault is not None and fault.status == 0:
                rest.log.append(RestRequest(now, route, 0))
                await trio.sleep(3600)  # longer than any client waits
                return Response(status_code=0)
            if fault is not None and fault.status == 200:  # a 200 the client cannot parse
                resp = json_response([[1, "1", "1"], {"x": None}])
                resp.headers.update(headers)
                return resp
            if fault is not None and fault.status:
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                code = -1003 if fault.status in (418, 429) else -1001
                resp = json_response({"code": code, "msg": "Injected fault."}, fault.status)
                resp.headers.update(headers)
                return resp
            if used > WEIGHT_LIMIT:
                headers["Retry-After"] = str(60 - int(now % 60))
                msg = (f"Too much request weight used; current limit is {WEIGHT_LIMIT} "
                       "request weight per 1 MINUTE.")  # fmt: skip
                resp = json_response({"code": -1003, "msg": msg}, 429)
                resp.headers.update(headers)
                return resp
            try:
                resp = json_response(await fn(request))
            except ApiError as exc:
                resp = json_response({"code": exc.code, "msg": exc.msg}, exc.status)
            resp.headers.update(headers)
            return resp

        return handle

    handlers = {
        "ping": ping, "time": server_time, "exchangeInfo": exchange_info, "depth": depth,
        "klines": klines, "uiKlines": klines, "aggTrades": agg_trades,
        "historicalTrades": historical_trades, "trades": recent_trades,
        "ticker/24hr": ticker_24hr, "avgPrice": avg_price, "ticker/bookTicker": book_ticker,
        "ticker/price": price,
    }  # fmt: skip
    routes = {route: partial(fn, ctx) for route, fn in handlers.items()}

    async def no_route(request: Request, exc: Exception) -> Response:
        """404 / 405 as JSON with the weight header (never Starlette's text/plain)."""
        status = getattr(exc, "status_code", 404)
        route = request.url.path.removeprefix("/api/v3/")
        used = rest.spend(1)
        if status == 405:
            msg = f"Method {request.method} is not allowed for {request.url.path}."
        else:
            msg = f"Unknown endpoint {request.url.path}; this exchange serves /api/v3/ only."
        resp = json_response({"code": -1000, "msg": msg}, status)
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

"""What every REST endpoint shares: parameter checks, the exchange's error bodies, JSON.

Bad parameters raise `ApiError` with the exchange's code and message (``-1100`` illegal
characters, ``-1121`` invalid symbol, ...), answered with HTTP 400 by the endpoint wrapper.
`RestContext` is what the endpoints read: the time unit, the market and its clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.simulator.clock import EventClock
from gateway.simulator.config import SimulatorConfig, TimeUnit
from gateway.simulator.market import Market, SymbolMarket
from gateway.simulator.rest_side import RestSide

__all__ = ["ApiError", "RestContext", "end_us", "int_param", "json_response",
           "symbol_list", "time_us"]  # fmt: skip

_SYMBOLS_RANGE = r"""'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'"""


class ApiError(Exception):
    """A request the exchange refuses: its error ``code`` and ``msg``, sent with ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def json_response(obj: Any, status: int = 200) -> Response:
    """``obj`` as an ``application/json`` answer."""
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def int_param(request: Request, name: str, default: int | None = None) -> int | None:
    """The integer query parameter ``name`` (``default`` if absent or empty), else ``-1100``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; "
                              "legal range is '^[0-9]{1,20}$'.")  # fmt: skip
    return int(raw)


def symbol_list(raw: str) -> list[str]:
    """A ``symbols`` parameter: a JSON array of strings, else ``-1100``."""
    try:
        wanted = orjson.loads(raw)
    except orjson.JSONDecodeError:
        wanted = None
    if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
        raise ApiError(-1100, "Illegal characters found in parameter 'symbols'; legal "
                              f"range is {_SYMBOLS_RANGE}.")  # fmt: skip
    return wanted


def time_us(value: int | None) -> int | None:
    """REST time parameters may be ms or µs."""
    if value is None:
        return None
    return value if value >= 10**14 else value * 1000


def end_us(value: int | None) -> int | None:
    """An inclusive ``endTime`` in µs: one in ms takes in its whole millisecond."""
    if value is None or value >= 10**14:
        return value
    return value * 1000 + 999


@attrs.frozen
class RestContext:
    """What the endpoints read: the configured time unit, the market, its clock and the
    REST side (a replay's recorded depth)."""

    config: SimulatorConfig
    market: Market
    clock: EventClock
    side: RestSide

    def div_of(self, request: Request) -> int:
        """What µs times are divided by for this request (``X-MBX-TIME-UNIT``): 1 or 1000."""
        unit = request.headers.get("X-MBX-TIME-UNIT", self.config.time_unit.value).upper()
        return 1 if unit == TimeUnit.MICROSECOND.value else 1000

    def symbol_of(self, request: Request) -> SymbolMarket:
        """The market of the ``symbol`` parameter, else ``-1102`` (missing) or ``-1121``."""
        name = request.query_params.get("symbol")
        if not name:
            raise ApiError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                  "or malformed.")  # fmt: skip
        sym = self.market.get(name) if name.isalnum() and name.isupper() else None
        if sym is None:
            raise ApiError(-1121, "Invalid symbol.")
        return sym

    def symbols_of(self, request: Request) -> list[SymbolMarket] | None:
        """The symbols a ticker asks for: ``symbols=["A","B"]`` (JSON), or None when it
        names one with ``symbol=``; neither: every symbol that trades."""
        params = request.query_params
        if "symbols" not in params:
            return None if "symbol" in params else list(self.market.active)
        if "symbol" in params:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        wanted = symbol_list(params["symbols"])
        found = [self.market.get(w) if w.isalnum() and w.isupper() else None for w in wanted]
        if any(f is None for f in found):
            raise ApiError(-1121, "Invalid symbol.")
        return [f for f in found if f is not None]

    def tickers(
        self, request: Request, one: Callable[[SymbolMarket], dict[str, Any]]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """``one``'s answer for ``symbol=``, a list of them for ``symbols=`` or for none."""
        many = self.symbols_of(request)
        if many is None:
            return one(self.symbol_of(request))
        return [one(sym) for sym in many]

    def limit_of(self, request: Request, default: int, most: int, clamp: bool = False) -> int:
        """The ``limit`` parameter in ``1..most`` (clamped to ``most`` if ``clamp``)."""
        limit = int_param(request, "limit", default)
        assert limit is not None
        if limit > most and clamp:
            return most
        if not 1 <= limit <= most:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        return limit

"""The REST side's state: request weights, injected faults and the log of requests.

Every answer carries ``X-MBX-USED-WEIGHT-1M`` (the documented weights, counted per minute
of trio time); past `WEIGHT_LIMIT` a request is answered 429. `RestSide` holds the faults
tests inject (`SimulatorControl.fail_rest`, ``hang_rest``, ``rest_down``) and the log of
requests they assert on.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import orjson
import trio
from starlette.requests import Request

__all__ = ["WEIGHT_LIMIT", "RestFault", "RestRequest", "RestSide", "request_weight",
           "symbol_count"]  # fmt: skip

#: Documented request weights (binance-market-streams.md 5.2); depth goes by its limit.
_WEIGHTS: Mapping[str, int] = MappingProxyType({
    "ping": 1, "time": 1, "exchangeInfo": 20, "klines": 2, "uiKlines": 2, "aggTrades": 4,
    "historicalTrades": 25, "trades": 25, "ticker/24hr": 2, "avgPrice": 2,
    "ticker/bookTicker": 2, "ticker/price": 2,
})  # fmt: skip
_TICKERS = ("ticker/24hr", "ticker/bookTicker", "ticker/price")
WEIGHT_LIMIT = 6000  #: REQUEST_WEIGHT per minute


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


def symbol_count(request: Request) -> int | None:
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

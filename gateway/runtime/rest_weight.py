"""REST request weight: what each endpoint costs and the per-minute budget one gateway shares.

The exchange counts ``REQUEST_WEIGHT`` per minute and answers 429 (then 418) past its
limit; `WeightBudget` keeps every request of a gateway under ``weight_per_minute`` by
waiting for the next minute, and waits out a ``Retry-After`` ban.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from types import MappingProxyType

import trio

__all__ = ["WEIGHTS", "WEIGHT_WINDOW", "WeightBudget", "depth_weight"]

#: The backfiller's logger: these lines were its own before the module was split.
log = logging.getLogger("gateway.runtime.backfill")

WEIGHT_WINDOW = 60.0  # REQUEST_WEIGHT is counted per minute
#: Request weights (binance-market-streams.md 5.2): aggTrades 4, historicalTrades 25,
#: klines 2, time 1, ticker/price (one symbol) 2.
WEIGHTS: Mapping[str, int] = MappingProxyType({
    "/api/v3/aggTrades": 4, "/api/v3/historicalTrades": 25, "/api/v3/klines": 2,
    "/api/v3/time": 1, "/api/v3/ticker/price": 2,
})  # fmt: skip


def depth_weight(limit: int) -> int:
    """The weight of ``GET /api/v3/depth?limit=`` (5 / 25 / 50 / 250 by limit)."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class WeightBudget:
    """The REST weight used this minute, shared by every request of one gateway.

    `reserve` waits until ``weight`` more fits under ``limit`` (the next minute at worst)
    and until a ``Retry-After`` ban ends; `observe` takes the exchange's own count.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.window_start = -math.inf
        self.blocked_until = -math.inf
        self.waits = 0

    def _roll(self, now: float) -> None:
        if now - self.window_start >= WEIGHT_WINDOW:
            self.window_start, self.used = now, 0

    async def reserve(self, weight: int) -> None:
        """Wait until ``weight`` fits this minute (bounded: a fresh minute always fits)."""
        for _ in range(10):
            now = trio.current_time()
            if now < self.blocked_until:
                self.waits += 1
                await trio.sleep_until(self.blocked_until)
                continue
            self._roll(now)
            if self.used + weight <= self.limit or self.used == 0:
                self.used += weight
                return
            self.waits += 1
            log.info("REST weight %d/%d used this minute: waiting", self.used, self.limit)
            await trio.sleep_until(self.window_start + WEIGHT_WINDOW)
        self._roll(trio.current_time())
        self.used += weight

    def observe(self, header: str | None) -> None:
        """Take ``X-MBX-USED-WEIGHT-1M`` as the truth for this minute (ours may lag)."""
        if header is not None and header.isdigit():
            self._roll(trio.current_time())
            self.used = max(self.used, int(header))

    def ban(self, seconds: float) -> None:
        """A 429/418 with ``Retry-After``: no request goes out for ``seconds``."""
        self.blocked_until = max(self.blocked_until, trio.current_time() + seconds)

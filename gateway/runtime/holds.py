"""Holds: live events kept back behind gaps being backfilled, and the gateway-wide bound on
how many are held at once (the memory a gap storm over many symbols may take)."""

from __future__ import annotations

from typing import Any

import attrs

from gateway.core.events import AggTrade, Kline, Trade
from gateway.core.notices import CandleClosed
from gateway.stats import HoldStats

__all__ = ["Hold", "HoldBudget", "key_of"]


@attrs.define(slots=True)
class Hold:
    """What one stream publishes while gaps before it are backfilled: held back, in order.

    ``items``: the events, `CandleClosed` s and gap endings to publish, in arrival
    order; they go out sorted by `key_of` (trade id, or candle open time for a kline
    stream), and the sort is stable, so equal keys keep their arrival order: a gap's
    ending, keyed by its last id and added after its own rows, follows them. Nothing
    else is kept per item (a storm of gaps holds tens of thousands).
    """

    deadline: float  # trio time after which everything held is released as it is
    gaps: list[tuple[int, int]]  # (first, last) being backfilled, oldest first
    items: list[Any]  # every one counted in the gateway's HoldBudget
    live: int = 0  # live events held (bounded by hold_max_events; backfilled rows are not)


class HoldBudget:
    """Events held by every symbol of one gateway together (live ones and backfilled rows
    waiting behind an older gap), bounded by ``limit`` (0: no gateway-wide bound)."""

    __slots__ = ("held", "limit", "overflows", "peak")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        #: Holds released early because the gateway-wide bound was reached.
        self.overflows = 0

    def take(self, count: int = 1) -> bool:
        """Count ``count`` more events held; False once that passes the bound."""
        held = self.held = self.held + count
        if held > self.peak:
            self.peak = held
        return not self.limit or held <= self.limit

    def fits(self, count: int) -> bool:
        """Whether ``count`` more events stay within the bound."""
        return not self.limit or self.held + count <= self.limit

    def give_back(self, count: int) -> None:
        """``count`` held events were published (or dropped): no longer held."""
        self.held = max(0, self.held - count)

    def snapshot(self) -> HoldStats:
        """For `Gateway.stats`."""
        return HoldStats(held=self.held, peak=self.peak, limit=self.limit,
                         overflows=self.overflows)  # fmt: skip


def key_of(item: Any) -> int:
    """The order key of a held item: its id, its candle's open time, or for a gap's
    ending (`GapFilled`, `GapUnfilled`) its last id or open time."""
    kind = type(item)
    if kind is AggTrade:
        return int(item.agg_trade_id)
    if kind is Trade:
        return int(item.trade_id)
    if kind is Kline:
        return int(item.open_time)
    if kind is CandleClosed:
        return int(item.candle.open_time)
    return int(item.last)  # a gap's ending: after the rows of its range

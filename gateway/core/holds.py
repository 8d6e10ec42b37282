"""Holds: what a symbol publishes kept in order across gaps being backfilled.

Live events after a gap whose REST rows are coming are held (per stream, bounded in
count and time, and gateway-wide by a `HoldBudget`) and released in id or open-time order
after the rows and the gap's ending. Every gap ends exactly once, in `GapFilled` or
`GapUnfilled`. `Holds` is pure: it appends what is to be published to its owner's outbox
and is given the time; the symbol machine (`gateway.core.symbol_machine`) drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs

from gateway.core.backfill_protocol import BackfillRequest
from gateway.core.events import AggTrade, CandleClosed, GapUnfilled, Kline, Trade
from gateway.stats import HoldStats

__all__ = ["Gap", "Hold", "HoldBudget", "Holds", "key_of"]

log = logging.getLogger(__name__)

#: One gap of one stream: (stream, first, last), ids or candle open times, inclusive.
Gap = tuple[str, int, int]


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


class Holds:
    """One symbol's holds and the gaps they wait for; it appends what is to be published,
    in order, to ``out`` (its machine's outbox).

    ``max_events``: live events one stream holds at most (0: never hold); ``max_seconds``:
    how long; ``overflow``: "unfilled" (a hold past a bound ends its pending gaps
    unfilled) or "late" (their rows are published when they come, out of order).
    """

    def __init__(self, symbol: str, out: list[Any], *, max_events: int = 0,
                 max_seconds: float = 10.0, overflow: str = "unfilled",
                 budget: HoldBudget | None = None) -> None:  # fmt: skip
        self.symbol = symbol
        self.out = out
        self.max_events = max_events
        self.max_seconds = max_seconds
        self.overflow_mode = overflow
        self.budget = budget  # shared by every symbol of a gateway, or None
        self.by_stream: dict[str, Hold] = {}
        self.overflows = 0  # holds released early (count or time bound reached)
        #: Gaps ended before their REST result (a hold past its bound, a quarantine):
        #: their rows only reach the stop-loss book.
        self.abandoned: set[Gap] = set()
        #: The gap whose REST answer is being applied, until its ending is published.
        self.ending: Gap | None = None
        #: Gaps whose REST rows come in parts (a page each): [rows published, next id].
        self.parts: dict[Gap, list[int]] = {}

    def held(self) -> int:
        """Events held now, over every stream."""
        return sum(len(h.items) for h in self.by_stream.values())

    def deadline(self) -> float | None:
        """When the oldest hold must be released at the latest (None: nothing held)."""
        return min((h.deadline for h in self.by_stream.values()), default=None)

    def start(self, stream: str, first: int, last: int, now: float) -> bool:
        """Hold what ``stream`` publishes from now until ``first..last`` ends; True if a
        new hold began (its deadline is then the earliest the owner must wake for)."""
        hold = self.by_stream.get(stream)
        began = hold is None
        if hold is None:
            hold = self.by_stream[stream] = Hold(now + self.max_seconds, [], [])
        hold.gaps.append((first, last))
        return began

    def take(self, stream: str, item: Any) -> bool:
        """Hold live ``item`` of ``stream`` if the stream is held; True if it was."""
        hold = self.by_stream.get(stream)
        if hold is None:
            return False
        self._add(stream, hold, item)
        return True

    def emit(self, stream: str, item: Any, *, live: bool = True) -> None:
        """Publish ``item`` of ``stream`` now, or behind the stream's hold if it has one."""
        hold = self.by_stream.get(stream) if self.by_stream else None
        if hold is None:
            self.out.append(item)
        else:
            self._add(stream, hold, item, live=live)

    def _add(self, stream: str, hold: Hold, item: Any, *, live: bool = True) -> None:
        """Hold ``item``; a live one may take the hold past a bound (backfilled rows are
        checked against the gateway-wide bound a page at a time, in `rows_wait`)."""
        hold.items.append(item)
        budget = self.budget
        within = budget is None or budget.take()
        if live:
            hold.live += 1
            if hold.live >= self.max_events:
                self.overflow(stream, f"{hold.live} live events held")
            elif not within and budget is not None:
                budget.overflows += 1
                self.overflow(stream, f"{budget.limit} events held by all symbols")

    def overflow(self, stream: str, why: str) -> None:
        """A hold reached its bound: publish what it holds, in order, and stop holding.
        Its pending gaps end unfilled now ("unfilled") or their rows are published when
        they come, out of order ("late")."""
        hold = self.by_stream.pop(stream)
        self._give_back(len(hold.items))
        self.overflows += 1
        late = self.overflow_mode == "late"
        log.warning("%s: %s held past its bound (%s): releasing; %s", self.symbol, stream, why,
                    "later backfilled events arrive out of order" if late else
                    "the gaps still pending end unfilled")  # fmt: skip
        if not late:
            reason = (f"held past its bound ({why}) before REST answered: live events went "
                      f"on; the gap's rows only reach the stop-loss book")  # fmt: skip
            for first, last in hold.gaps:
                gap = (stream, first, last)
                self.abandoned.add(gap)
                if self.ending == gap:
                    self.ending = None
                start = self.unpublished_from(gap)
                self.parts.pop(gap, None)
                hold.items.append(self.unfilled_event(stream, start, last, reason))
        hold.items.sort(key=key_of)  # stable: equal keys in arrival order
        self.out.extend(hold.items)

    def release_overdue(self, now: float) -> None:
        """Release every hold past its deadline."""
        for stream in [s for s, h in self.by_stream.items() if h.deadline <= now]:
            self.overflow(stream, f"held {self.max_seconds}s")

    def _release(self, stream: str, hold: Hold) -> None:
        """Publish, in order, what is held below every gap still pending; the hold ends
        once no gap is pending."""
        if hold.gaps:
            self.flush_below(hold, min(first for first, _ in hold.gaps))
            return
        del self.by_stream[stream]
        hold.items.sort(key=key_of)
        self._give_back(len(hold.items))
        self.out.extend(hold.items)

    def flush_below(self, hold: Hold, bound: int) -> None:
        """Publish, in order, what ``hold`` keeps with an order key below ``bound``."""
        items = hold.items
        items.sort(key=key_of)
        n = 0
        for item in items:
            if key_of(item) >= bound:
                break
            n += 1
        self.out.extend(items[:n])
        del items[:n]
        self._give_back(n)

    def _give_back(self, count: int) -> None:
        if self.budget is not None:
            self.budget.give_back(count)

    def unpublished_from(self, gap: Gap) -> int:
        """The first id of ``gap`` whose row was not published (its parts came before)."""
        part = self.parts.get(gap)
        return gap[1] if part is None else part[1]

    def gap_ended(self, stream: str, first: int, last: int, ending: Any) -> None:
        """Publish a gap's ending (`GapFilled` / `GapUnfilled`) after its rows, and release
        what its hold kept behind it."""
        gap = (stream, first, last)
        if self.ending == gap:
            self.ending = None  # out (or queued in order): a crash from here on is after it
        self.parts.pop(gap, None)
        hold = self.by_stream.get(stream)
        if hold is None or (first, last) not in hold.gaps:
            self.out.append(ending)
            return
        hold.gaps.remove((first, last))
        hold.items.append(ending)  # keyed by its last id: after its rows
        if self.budget is not None:
            self.budget.take()
        self._release(stream, hold)

    def unfilled(self, stream: str, first: int, last: int, reason: str,
                 start: int | None = None) -> None:  # fmt: skip
        """``start..last`` of gap ``first..last`` will not be served (``start``: after
        the rows already published)."""
        if start is None:
            start = self.unpublished_from((stream, first, last))
        self.gap_ended(stream, first, last, self.unfilled_event(stream, start, last, reason))

    def unfilled_event(self, stream: str, first: int, last: int, reason: str) -> GapUnfilled:
        """The `GapUnfilled` for ``first..last`` (logged)."""
        log.warning("%s: %s %d..%d not backfilled: %s", self.symbol, stream, first, last, reason)
        return GapUnfilled(self.symbol, stream, first, last, reason)

    def rows_wait(self, stream: str, req: BackfillRequest, rows: Sequence[Any]) -> bool:
        """Whether backfilled trade ``rows`` of ``req``'s gap go behind its stream's hold.
        Not when the gap is the oldest held (what is held before them is published first)
        or when the hold no longer waits for it; a page that would take the gateway past
        its hold bound releases the hold first (`overflow`)."""
        hold = self.by_stream.get(stream)
        if hold is None or (req.first, req.last) not in hold.gaps:
            return False
        if min(first for first, _ in hold.gaps) == req.first:
            self.flush_below(hold, key_of(rows[0]))
            return False
        budget = self.budget
        if budget is not None and not budget.fits(len(rows)):
            budget.overflows += 1
            self.overflow(stream, f"{budget.limit} events held by all symbols")
            return False
        return True

    def waits_for(self, gap: Gap) -> bool:
        """Whether ``gap``'s stream holds events behind it."""
        hold = self.by_stream.get(gap[0])
        return hold is not None and (gap[1], gap[2]) in hold.gaps

    def abandon_all(self, reason: str) -> None:
        """Publish what is held, in order; each pending gap ends unfilled with ``reason``,
        and its REST result, when it comes, only reaches the stop-loss book."""
        for stream, hold in list(self.by_stream.items()):
            for first, last in list(hold.gaps):
                self.abandoned.add((stream, first, last))
                self.unfilled(stream, first, last, reason)
            if self.by_stream.get(stream) is hold:
                self._release(stream, hold)

"""The accounting of ``gateway soak --chaos``, in memory that grows with gaps, not events.

Two halves, both pure (no trio, no sockets):

- `ExchangeLedger` lives in the exchange's process. Trade and aggregate-trade ids are
  consecutive per symbol, so what the exchange generated is two id ranges per symbol;
  it reads each new aggregate trade once (from the market's bounded history, oldest
  first, so it never misses one between reads) and keeps only per-symbol extremes and,
  per armed position, the first few trades that crossed its stop. Its memory is
  O(symbols + positions), whatever the rate or length of the run.
- `StreamCheck` lives in the subscriber's process: per (symbol, stream) the ids
  delivered as merged inclusive ranges (a new range only where the gateway reported a
  gap unfilled, or lost one), the duplicates and the ids out of order.

`judge_stream` sets one against the other: every id the exchange generated inside the
window must have been delivered or named by a `GapUnfilled`; `judge_stop` does the same
for a position (a crossed stop fires exactly once, an uncrossed one never).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "CROSSINGS_KEPT",
    "ExchangeLedger",
    "PositionRecord",
    "Spans",
    "StreamCheck",
    "StreamVerdict",
    "judge_stop",
    "judge_stream",
]

#: Crossing trades kept per position (the first ones): enough to tell whether every
#: crossing was hidden from the gateway by unfilled gaps.
CROSSINGS_KEPT = 16
_SAMPLE = 5


class Spans:
    """A union of inclusive integer ranges kept merged and sorted (by bisection).

    The bounds live in two ``array('q')``: 16 bytes a range in one buffer each, not two
    int objects scattered over the heap, since a long run keeps one range per gap and
    the soak measures the RSS of the process it shares with the gateway.
    """

    __slots__ = ("firsts", "lasts")

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.firsts = array("q")
        self.lasts = array("q")
        for first, last in sorted(spans):
            self.add(first, last)

    def add(self, first: int, last: int) -> None:
        """Add ``first..last`` (merging with neighbours)."""
        if last < first:
            return
        firsts, lasts = self.firsts, self.lasts
        if firsts and first > lasts[-1]:  # the common case: at the end
            if first == lasts[-1] + 1:
                lasts[-1] = last
            else:
                firsts.append(first)
                lasts.append(last)
            return
        i = bisect.bisect_left(lasts, first - 1)
        j = bisect.bisect_right(firsts, last + 1)
        if i < j:
            first = min(first, firsts[i])
            last = max(last, lasts[j - 1])
        firsts[i:j] = array("q", (first,))
        lasts[i:j] = array("q", (last,))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        i = bisect.bisect_right(self.firsts, key) - 1
        return i >= 0 and key <= self.lasts[i]

    def __len__(self) -> int:
        return len(self.firsts)

    def count_in(self, first: int, last: int) -> int:
        """How many integers of ``first..last`` the union holds."""
        n = 0
        i = max(0, bisect.bisect_right(self.firsts, first) - 1)
        for k in range(i, len(self.firsts)):
            a, b = self.firsts[k], self.lasts[k]
            if a > last:
                break
            lo, hi = max(a, first), min(b, last)
            if lo <= hi:
                n += hi - lo + 1
        return n

    def missing(self, first: int, last: int) -> list[tuple[int, int]]:
        """The ranges of ``first..last`` the union does not hold, in order."""
        out: list[tuple[int, int]] = []
        at = first
        i = max(0, bisect.bisect_right(self.firsts, first) - 1)
        for k in range(i, len(self.firsts)):
            a, b = self.firsts[k], self.lasts[k]
            if a > last:
                break
            if b < at:
                continue
            if a > at:
                out.append((at, min(a - 1, last)))
            at = max(at, b + 1)
            if at > last:
                break
        if at <= last:
            out.append((at, last))
        return out

    def as_list(self) -> list[tuple[int, int]]:
        """The ranges, oldest first."""
        return list(zip(self.firsts, self.lasts, strict=True))


# --- the subscriber's side --------------------------------------------------------------


class StreamCheck:
    """What one subscriber saw of one id stream (trade or aggregate-trade ids)."""

    __slots__ = (
        "backfilled",
        "count",
        "delivered",
        "duplicate_sample",
        "duplicates",
        "out_of_order",
        "out_of_order_sample",
        "top",
    )  # fmt: skip

    def __init__(self) -> None:
        self.delivered = Spans()
        self.count = 0
        self.backfilled = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.top = -1
        self.duplicate_sample: list[int] = []
        self.out_of_order_sample: list[tuple[int, int]] = []

    def add(self, key: int, backfilled: bool) -> bool:
        """Record one delivered id; True when it is new (not a duplicate)."""
        self.count += 1
        if backfilled:
            self.backfilled += 1
        top = self.top
        if key > top:
            self.delivered.add(key, key)
            self.top = key
            return True
        if key in self.delivered:
            self.duplicates += 1
            if len(self.duplicate_sample) < _SAMPLE:
                self.duplicate_sample.append(key)
            return False
        self.out_of_order += 1
        if len(self.out_of_order_sample) < _SAMPLE:
            self.out_of_order_sample.append((key, top))
        self.delivered.add(key, key)
        return True


@attrs.define(slots=True)
class StreamVerdict:
    """One stream's figures inside the judged window ``start..end``."""

    symbol: str
    stream: str
    start: int
    end: int
    generated: int = 0
    delivered: int = 0
    backfilled: int = 0
    unfilled: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    lost_sample: list[tuple[int, int]] = attrs.Factory(list)
    duplicate_sample: list[int] = attrs.Factory(list)
    out_of_order_sample: list[tuple[int, int]] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return attrs.asdict(self)


def judge_stream(symbol: str, stream: str, check: StreamCheck, unfilled: Spans,
                 start: int, end: int) -> StreamVerdict:  # fmt: skip
    """Every id of ``start..end`` (what the exchange generated while judged) must be in
    ``check.delivered`` or in ``unfilled`` (the `GapUnfilled` ranges); the rest is lost."""
    v = StreamVerdict(symbol, stream, start, end)
    v.generated = max(0, end - start + 1)
    v.delivered = check.delivered.count_in(start, end)
    v.backfilled = check.backfilled
    v.duplicates, v.out_of_order = check.duplicates, check.out_of_order
    v.duplicate_sample = list(check.duplicate_sample)
    v.out_of_order_sample = list(check.out_of_order_sample)
    for first, last in check.delivered.missing(start, end):
        covered = unfilled.count_in(first, last)
        v.unfilled += covered
        if covered < last - first + 1:
            for a, b in unfilled.missing(first, last):
                v.lost += b - a + 1
                if len(v.lost_sample) < _SAMPLE:
                    v.lost_sample.append((a, b))
    return v


# --- the exchange's side --------------------------------------------------------------


@attrs.define(slots=True)
class PositionRecord:
    """A position the soak armed, as the exchange judges it: ``side`` LONG fires at a
    price at or under ``stop`` (ticks), SHORT at or over; trades from ``from_id`` on
    count. ``crossings`` is the number of trades that crossed, ``first`` the first
    `CROSSINGS_KEPT` of them as (trade id, aggregate trade id)."""

    id: str
    symbol: str
    side: str
    stop: int
    from_id: int
    crossings: int = 0
    first: list[tuple[int, int]] = attrs.Factory(list)


class _SymbolBook:
    """One symbol's ledger: id ranges since the start, price extremes, its positions."""

    __slots__ = (
        "agg_start",
        "high",
        "last_agg",
        "last_trade",
        "low",
        "missed_reads",
        "positions",
        "trade_start",
    )  # fmt: skip

    def __init__(self, agg_start: int, trade_start: int) -> None:
        self.agg_start, self.trade_start = agg_start, trade_start
        self.last_agg, self.last_trade = agg_start - 1, trade_start - 1
        self.low, self.high = 1 << 62, -1
        self.positions: list[PositionRecord] = []
        self.missed_reads = 0  # aggregate trades gone from the history before being read


class ExchangeLedger:
    """The exchange's record of what it generated, read from its bounded history.

    ``start(symbol, next_agg_id, next_trade_id)`` opens a symbol's window; `read`
    takes the aggregate trades ``(agg id, price e8, qty, first id, last id, ...)`` newer
    than the last one read (call it more often than the history turns over).
    """

    def __init__(self, tick_e8: int) -> None:
        self.tick_e8 = tick_e8
        self.books: dict[str, _SymbolBook] = {}

    def start(self, symbol: str, next_agg_id: int, next_trade_id: int) -> None:
        """Begin the window of ``symbol`` at its next ids."""
        self.books[symbol] = _SymbolBook(next_agg_id, next_trade_id)

    def arm(self, pos: PositionRecord) -> None:
        """Judge ``pos`` from its ``from_id`` on."""
        self.books[pos.symbol].positions.append(pos)

    def read(self, symbol: str, aggs: Sequence[tuple[Any, ...]]) -> int:
        """Read the new aggregate trades of ``symbol`` from ``aggs`` (its history, oldest
        first); returns how many were new."""
        book = self.books.get(symbol)
        if book is None or not aggs or aggs[-1][0] <= book.last_agg:
            return 0
        n = len(aggs)
        i = n - 1
        while i > 0 and aggs[i - 1][0] > book.last_agg:  # bounded by the history's length
            i -= 1
        if aggs[i][0] != book.last_agg + 1:
            book.missed_reads += aggs[i][0] - book.last_agg - 1
        tick = self.tick_e8
        low, high = book.low, book.high
        positions = book.positions
        for k in range(i, n):
            agg = aggs[k]
            ticks = agg[1] // tick
            if ticks < low:
                low = ticks
            if ticks > high:
                high = ticks
            if positions:
                self._cross(positions, agg, ticks)
        book.low, book.high = low, high
        book.last_agg, book.last_trade = aggs[-1][0], aggs[-1][4]
        return n - i

    @staticmethod
    def _cross(positions: list[PositionRecord], agg: tuple[Any, ...], ticks: int) -> None:
        agg_id, first, last = agg[0], agg[3], agg[4]
        for p in positions:
            if last < p.from_id:
                continue
            if (ticks <= p.stop) if p.side == "LONG" else (ticks >= p.stop):
                lo = max(first, p.from_id)
                p.crossings += last - lo + 1
                for tid in range(lo, last + 1):
                    if len(p.first) >= CROSSINGS_KEPT:
                        break
                    p.first.append((tid, agg_id))

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready: per symbol the windows, extremes and positions."""
        return {
            sym: {
                "agg": [b.agg_start, b.last_agg], "trade": [b.trade_start, b.last_trade],
                "low_ticks": b.low, "high_ticks": b.high, "missed_reads": b.missed_reads,
                "positions": [attrs.asdict(p) for p in b.positions],
            }
            for sym, b in self.books.items()
        }  # fmt: skip


def judge_stop(pos: dict[str, Any], fired: int, trade_unfilled: Spans,
               agg_unfilled: Spans) -> str:  # fmt: skip
    """The verdict on one position (a `PositionRecord` as a dict) fired ``fired`` times:
    "ok", "missed", "missed-unknowable" (every crossing hidden by unfilled gaps on both
    streams), "doubled" or "false"."""
    crossed = pos["crossings"] > 0
    if not crossed:
        return "false" if fired else "ok"
    if fired == 1:
        return "ok"
    if fired > 1:
        return "doubled"
    kept = pos["first"]
    hidden = len(kept) == pos["crossings"] and all(
        tid in trade_unfilled and aid in agg_unfilled for tid, aid in kept
    )
    return "missed-unknowable" if hidden else "missed"

"""Proof of life per stream: which streams of a connection are silent past their cadence.

Checked periodically by each connection's liveness task, never per frame: it reads
counters the hot path keeps anyway (each `SymbolRuntime`'s events per kind, its candle
book's updates per kline interval, the connection's frame count). The rules
(docs/architecture.md, "Proof of life"):

- A *scheduled* stream pushes on a fixed cadence whatever the market does (klines every
  2 s, 1 s for ``kline_1s``; tickers, mini tickers, avgPrice, referencePrice every
  second; partial depth at its update speed). It is overdue after ``factor`` cadences.
- An *activity* stream (trades, aggregate and block trades, book tickers, diff depth:
  pushed at its speed only when the book changed) pushes only
  when the market moves. It is watched only once it is *armed*: ``ARM_EVENTS`` events
  seen; it is then overdue after ``max(floor, factor x`` its recent mean inter-arrival
  ``)``. A quiet symbol is never armed, so it never causes a request.
- Each stream is judged alone by its own counter: kline streams by their interval's
  update count (`CandleBook.updates`), so a silent ``kline_5m`` beside a flowing
  ``kline_1m`` is found. Streams whose events cannot be told apart (two rolling-ticker
  windows of one symbol, one interval with and without a timezone offset) share one
  counter and are one group, overdue only when all of them are silent.
- A connection with no market frame at all for the longest deadline of its watched
  groups, while it still has some, is a *zombie* (`Check.zombie`) if it still answers a
  ping (the connection checks), else a dead peer. Otherwise, overdue
  groups are `Check.overdue`: the connection asks the exchange whether it still lists
  them (`listed`: a quiet market; back off, and disarm activity streams until they
  trade again) or resubscribes them (`resubscribed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from gateway.core.streams import StreamKind, parse_stream
from gateway.errors import InvalidStreamName

#: Events an activity stream must show before its silence means anything.
ARM_EVENTS = 20
_MAX_BACKOFF = 64.0  # a quiet scheduled stream is asked about at most every 64 deadlines
_EWMA = 0.3  # weight of the newest inter-arrival sample
_MIN_DEADLINE = 2.0  # s: two check periods, so that a 100 ms stream is not judged on one

_EVENT_CLASS = {
    StreamKind.TRADE: "Trade", StreamKind.AGG_TRADE: "AggTrade",
    StreamKind.BLOCK_TRADE: "BlockTrade", StreamKind.BOOK_TICKER: "BookTicker",
    StreamKind.KLINE: "Kline", StreamKind.MINI_TICKER: "MiniTicker",
    StreamKind.TICKER: "Ticker", StreamKind.ROLLING_TICKER: "RollingTicker",
    StreamKind.AVG_PRICE: "AvgPrice", StreamKind.REFERENCE_PRICE: "ReferencePrice",
    StreamKind.PARTIAL_DEPTH: "PartialDepth", StreamKind.DIFF_DEPTH: "DepthUpdate",
}  # fmt: skip
# Diff depth is pushed at its update speed only when the book changed: a quiet book skips.
_ACTIVITY = frozenset(
    {StreamKind.TRADE, StreamKind.AGG_TRADE, StreamKind.BLOCK_TRADE, StreamKind.BOOK_TICKER,
     StreamKind.DIFF_DEPTH}
)  # fmt: skip

#: A counter: (symbol, event class name, kline interval or None for other kinds).
Key = tuple[str, str, "str | None"]
#: ``read(symbol, event_class_name, interval)``: that symbol's count of those events (of
#: that kline interval when not None), None if its actor is not live.
Reader = Callable[[str, str, "str | None"], "int | None"]


def cadence(name: str) -> tuple[Key, float | None] | None:
    """(counter key, push cadence in seconds or None for activity streams) of stream
    ``name``; None for streams not watched (market-wide arrays, unparsable names)."""
    try:
        stream = parse_stream(name)
    except InvalidStreamName:
        return None
    cls = _EVENT_CLASS.get(stream.kind)
    if stream.symbol is None or cls is None:
        return None
    if stream.kind is StreamKind.KLINE:  # counted per interval: each judged alone
        return (stream.symbol, cls, stream.interval), 1.0 if stream.interval == "1s" else 2.0
    key = (stream.symbol, cls, None)
    if stream.kind in _ACTIVITY:
        return key, None
    if stream.kind is StreamKind.PARTIAL_DEPTH:
        return key, stream.speed_ms / 1000
    return key, 1.0


@attrs.define(slots=True, eq=False)
class Group:
    """The streams behind one counter, and what the checks saw of it."""

    names: list[str]
    cadence: float | None  #: seconds; None: an activity stream
    count: int = -1  #: the counter at the last change (-1: not read yet)
    changed_at: float = 0.0  #: when a change was last seen (a check's time)
    mean_gap: float | None = None  #: activity streams: recent mean inter-arrival, s
    seen: int = 0  #: activity streams: events since armed (or disarmed)
    backoff: float = 1.0  #: deadline multiplier after "listed, just quiet" verdicts

    def deadline(self, factor: float, floor: float) -> float | None:
        """Seconds of silence that make this group overdue; None while not watched."""
        if self.cadence is not None:
            return max(factor * self.cadence, _MIN_DEADLINE)
        if self.seen < ARM_EVENTS or self.mean_gap is None:
            return None
        return max(floor, factor * self.mean_gap)


@attrs.frozen(slots=True)
class Check:
    """What one check found: a zombie's silence (s), or the overdue streams."""

    zombie: float | None = None
    overdue: tuple[Group, ...] = ()


class StreamWatch:
    """One connection's proof-of-life bookkeeping (see the module docstring)."""

    def __init__(self, factor: float, floor: float) -> None:
        self.factor = factor
        self.floor = floor
        self.groups: dict[Key, Group] = {}
        self._names: dict[str, None] = {}
        self._frames = -1
        self._frames_at = 0.0

    def reset(self, now: float) -> None:
        """A session (re)started: every silence is measured from ``now``."""
        self._frames, self._frames_at = -1, now
        for g in self.groups.values():
            g.count, g.changed_at = -1, now

    def sync(self, streams: dict[str, None], now: float) -> None:
        """Follow the connection's stream set (cheap when it did not change)."""
        if streams.keys() == self._names.keys():
            return
        self._names = dict(streams)
        old, self.groups = self.groups, {}
        for name in streams:
            found = cadence(name)
            if found is None:
                continue
            key, every = found
            group = self.groups.get(key)
            if group is None:
                group = old.get(key) or Group([], every, changed_at=now)
                group.names = []
                self.groups[key] = group
            group.names.append(name)
            if every is not None and (group.cadence is None or every < group.cadence):
                group.cadence = every

    def check(self, now: float, read: Reader, frames: int) -> Check:
        """Read every group's counter; report a zombie or the overdue groups."""
        if frames != self._frames:
            self._frames, self._frames_at = frames, now
        overdue: list[Group] = []
        longest = 0.0
        for (symbol, cls, interval), g in self.groups.items():
            count = read(symbol, cls, interval)
            if count is None:  # its actor is not live: no judgement, measure from now
                g.count, g.changed_at = -1, now
                continue
            if g.count < 0 or count < g.count:  # the first reading (silence counts from
                if count < g.count:  # `reset` or `sync`), or a symbol started afresh
                    g.changed_at = now
                g.count = count
                continue
            if count != g.count:
                if g.cadence is None:
                    gap = (now - g.changed_at) / (count - g.count)
                    g.mean_gap = (
                        gap if g.mean_gap is None else g.mean_gap + _EWMA * (gap - g.mean_gap)
                    )
                    g.seen += count - g.count
                g.count, g.changed_at, g.backoff = count, now, 1.0
                continue
            deadline = g.deadline(self.factor, self.floor)
            if deadline is None:
                continue
            longest = max(longest, deadline)
            if now - g.changed_at >= deadline * g.backoff:
                overdue.append(g)
        silence = now - self._frames_at
        if longest > 0 and silence >= longest:
            self._frames_at = now  # one verdict per silence
            return Check(zombie=silence)
        return Check(overdue=tuple(overdue))

    def listed(self, group: Group, now: float) -> None:
        """The exchange still lists ``group``: a quiet market. Scheduled streams back off;
        activity streams wait for fresh activity (disarmed)."""
        group.changed_at = now
        if group.cadence is None:
            group.seen, group.mean_gap = 0, None
        else:
            group.backoff = min(group.backoff * 2, _MAX_BACKOFF)

    def resubscribed(self, group: Group, now: float) -> None:
        """``group`` was subscribed again: give it a deadline to show up (backing off)."""
        group.changed_at = now
        group.backoff = min(group.backoff * 2, _MAX_BACKOFF)


def names_of(groups: Iterable[Group]) -> list[str]:
    """Every stream name of ``groups``."""
    return [n for g in groups for n in g.names]

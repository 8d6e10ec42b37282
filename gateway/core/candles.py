"""Bounded candle buffers: closed candles per interval plus the open one (pure).

The kline stream pushes the state of the open candle every second or two and
marks the last push of each candle ``is_closed``. A `CandleBuffer` keeps the
newest ``maxlen`` closed candles of one symbol and interval, oldest first, and
the current open candle. `CandleBuffer.apply` returns a closed candle exactly
once (a repeated or older close, as seen in a reconnect overlap, is ignored),
so the symbol actor can publish "candle closed" once per candle. Skipped candles
are recorded as `CandleGap` for a REST backfill (`CandleBuffer.backfill`).

Candles are keyed by open time. The candle after one closing at ``close_time``
opens at ``close_time + 1`` (true for every interval, ``1M`` and offset klines
included), which is how gaps are found without calendar arithmetic.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from gateway.core.events import Kline
from gateway.core.streams import INTERVAL_MS, INTERVALS
from gateway.errors import CandleError

__all__ = ["CandleBook", "CandleBuffer", "CandleGap", "kline_from_rest"]

_NOTHING_CLOSED = -(2**63)


@attrs.frozen(slots=True)
class CandleGap:
    """Candles missing between two known ones.

    ``from_open_time`` is the open time of the first missing candle (inclusive);
    ``to_open_time`` is the open time of the candle that arrived after the gap
    (exclusive). Backfill with ``GET /api/v3/klines?startTime=from_open_time&
    endTime=to_open_time - 1``.
    """

    symbol: str
    interval: str
    from_open_time: int
    to_open_time: int

    @property
    def missing(self) -> int | None:
        """How many candles are missing, for fixed-length intervals (None for ``1M``)."""
        step = INTERVAL_MS.get(self.interval)
        return None if step is None else (self.to_open_time - self.from_open_time) // step


class CandleBuffer:
    """The newest ``maxlen`` closed candles of one interval, plus the open candle.

    Contract of `apply`:

    - an open update whose open time is not older than the open candle's, and
      not of an already-closed candle, replaces the open candle; returns None;
    - a closed update newer than the last closed candle is appended (the oldest
      is evicted past ``maxlen``) and returned;
    - candles skipped before an update are recorded once as a `CandleGap` (see
      `take_gaps`), on the first update that shows them: usually the open update
      right after a reconnect, so a backfill need not wait for the candle to close;
    - anything else (a duplicate or older close, a late open update) is
      ignored, counted in ``ignored``, and returns None.

    ``symbol`` is taken from the first kline when not given. Klines of another
    interval or symbol raise `CandleError` (checked on closed updates and when no
    candle is open, so that an open update costs two comparisons).

    ``updates`` counts every kline given to `apply`, kept or ignored: the stream's proof
    of life, read per interval by the connection's liveness checks.
    """

    __slots__ = ("_closed", "_gaps", "_next_open", "_open", "_reported", "ignored", "interval",
                 "symbol", "updates")  # fmt: skip

    def __init__(self, interval: str, maxlen: int = 1000, symbol: str | None = None) -> None:
        if interval not in INTERVALS:
            raise CandleError(f"unknown interval {interval!r}; allowed: {', '.join(INTERVALS)}")
        if maxlen < 1:
            raise CandleError(f"maxlen must be >= 1, got {maxlen!r}")
        self.interval = interval
        self.symbol = symbol
        self._closed: deque[Kline] = deque(maxlen=maxlen)
        self._open: Kline | None = None
        # open time of the first candle not yet closed here (last close_time + 1)
        self._next_open = _NOTHING_CLOSED
        self._gaps: list[CandleGap] = []
        self._reported = _NOTHING_CLOSED  # open times before this were reported missing
        self.ignored = 0
        self.updates = 0

    @property
    def maxlen(self) -> int:
        """How many closed candles are kept."""
        maxlen = self._closed.maxlen
        assert maxlen is not None
        return maxlen

    def apply(self, kline: Kline) -> Kline | None:
        """Upsert one kline update; return it if it closed a candle, else None. O(1)."""
        self.updates += 1
        if not kline.is_closed:
            t = kline.open_time
            current = self._open
            if t < self._next_open or (current is not None and t < current.open_time):
                self.ignored += 1
                return None
            if current is None or t != current.open_time:
                self._new_open(kline, current)
            self._open = kline
            return None
        return self._apply_closed(kline)

    def _new_open(self, kline: Kline, current: Kline | None) -> None:
        """The first update of a new open candle: candles skipped before it are a gap."""
        self._check(kline)
        if self._next_open != _NOTHING_CLOSED:
            expected = self._next_open
        elif current is not None:
            expected = current.open_time  # the candle open before never closed here
        else:
            return
        self._gap_before(kline, expected)

    def _gap_before(self, kline: Kline, expected: int) -> None:
        t = kline.open_time
        expected = max(expected, self._reported)
        if expected < t:
            self._gaps.append(CandleGap(kline.symbol, self.interval, expected, t))
            self._reported = t

    def _apply_closed(self, kline: Kline) -> Kline | None:
        self._check(kline)
        t = kline.open_time
        if t < self._next_open:
            self.ignored += 1
            return None
        if self._next_open != _NOTHING_CLOSED:
            expected = self._next_open
        elif self._open is not None:
            expected = self._open.open_time  # an open candle we saw never closed here
        else:
            expected = t
        self._gap_before(kline, expected)
        self._closed.append(kline)
        self._next_open = kline.close_time + 1
        if self._open is not None and self._open.open_time < self._next_open:
            self._open = None
        return kline

    def _check(self, kline: Kline) -> None:
        if kline.interval != self.interval:
            raise CandleError(
                f"kline of interval {kline.interval!r} given to the {self.interval!r} buffer"
            )
        if self.symbol is None:
            self.symbol = kline.symbol
        elif kline.symbol != self.symbol:
            raise CandleError(f"kline of {kline.symbol!r} given to the {self.symbol!r} buffer")

    def backfill(self, klines: Iterable[Kline]) -> list[Kline]:
        """Insert closed candles (from REST) that are not already here; return those kept.

        Open candles among ``klines`` are skipped (REST's last row is usually the
        open one). The buffer stays sorted by open time and bounded by ``maxlen``
        (the oldest go first), so candles older than everything kept in a full
        buffer are not kept. Candles newer than the last closed one advance it
        and replace an open candle they close; gaps are not re-reported here:
        call `missing_open_times` to check what is still missing.
        """
        by_open = {k.open_time: k for k in self._closed}
        added: dict[int, Kline] = {}
        for k in klines:
            if not k.is_closed:
                continue
            self._check(k)
            if k.open_time not in by_open and k.open_time not in added:
                added[k.open_time] = k
        if not added:
            return []
        by_open.update(added)
        merged = sorted(by_open.values(), key=_open_time)[-self.maxlen :]
        self._closed = deque(merged, maxlen=self.maxlen)
        last = merged[-1]
        if last.close_time + 1 > self._next_open:
            self._next_open = last.close_time + 1
            if self._open is not None and self._open.open_time < self._next_open:
                self._open = None
        return [k for k in merged if k.open_time in added]

    def take_gaps(self) -> list[CandleGap]:
        """The gaps found since the last call, oldest first (the list is then emptied)."""
        gaps, self._gaps = self._gaps, []
        return gaps

    def missing_open_times(self, after_open_time: int) -> list[int]:
        """Open times after ``after_open_time`` and before the last closed candle that
        have no closed candle here (fixed intervals only; ``1M`` raises `CandleError`)."""
        step = INTERVAL_MS.get(self.interval)
        if step is None:
            raise CandleError(f"missing_open_times needs a fixed interval, not {self.interval!r}")
        missing: list[int] = []
        expected = after_open_time + step
        for k in self._closed:
            if k.open_time <= after_open_time:
                continue
            missing.extend(range(expected, k.open_time, step))
            expected = k.open_time + step
        return missing

    @property
    def closed(self) -> Sequence[Kline]:
        """The closed candles, oldest first (a copy)."""
        return tuple(self._closed)

    def last(self, n: int) -> list[Kline]:
        """The newest ``n`` closed candles, oldest first."""
        if n <= 0:
            return []
        size = len(self._closed)
        return list(itertools.islice(self._closed, max(0, size - n), size))

    @property
    def last_closed(self) -> Kline | None:
        """The newest closed candle, if any."""
        return self._closed[-1] if self._closed else None

    @property
    def open_candle(self) -> Kline | None:
        """The candle still open, as of its latest update, if any."""
        return self._open

    def __len__(self) -> int:
        """How many closed candles are held."""
        return len(self._closed)

    def __iter__(self) -> Iterator[Kline]:
        return iter(self._closed)

    def __repr__(self) -> str:
        return (
            f"CandleBuffer({self.symbol!r}, {self.interval!r}, closed={len(self._closed)}/"
            f"{self.maxlen}, open={self._open is not None})"
        )


def _open_time(k: Kline) -> int:
    return k.open_time


class CandleBook:
    """One symbol's candle buffers, one per interval, created on first use."""

    __slots__ = ("_buffers", "maxlen", "symbol")

    def __init__(self, symbol: str, maxlen: int = 1000, intervals: Iterable[str] = ()) -> None:
        self.symbol = symbol
        self.maxlen = maxlen
        self._buffers: dict[str, CandleBuffer] = {}
        for interval in intervals:
            self.buffer(interval)

    def buffer(self, interval: str) -> CandleBuffer:
        """The buffer of ``interval`` (created empty if new)."""
        buf = self._buffers.get(interval)
        if buf is None:
            buf = self._buffers[interval] = CandleBuffer(interval, self.maxlen, self.symbol)
        return buf

    def find(self, interval: str) -> CandleBuffer | None:
        """The buffer of ``interval`` if it has one (a read creates nothing)."""
        return self._buffers.get(interval)

    def apply(self, kline: Kline) -> Kline | None:
        """`CandleBuffer.apply` on the kline's interval buffer."""
        buf = self._buffers.get(kline.interval)
        if buf is None:
            buf = self.buffer(kline.interval)
        return buf.apply(kline)

    def updates(self, interval: str) -> int:
        """Klines of ``interval`` applied so far (`CandleBuffer.updates`; 0 if none)."""
        buf = self._buffers.get(interval)
        return 0 if buf is None else buf.updates

    def take_gaps(self) -> list[CandleGap]:
        """The gaps of every interval found since the last call."""
        return [gap for buf in self._buffers.values() for gap in buf.take_gaps()]

    @property
    def intervals(self) -> tuple[str, ...]:
        """The intervals held, in creation order."""
        return tuple(self._buffers)

    def __getitem__(self, interval: str) -> CandleBuffer:
        return self._buffers[interval]

    def __contains__(self, interval: object) -> bool:
        return interval in self._buffers

    def __len__(self) -> int:
        return len(self._buffers)


def kline_from_rest(
    symbol: str, interval: str, row: Sequence[Any], now_ms: int, *, backfilled: bool = False
) -> Kline:
    """Build a `Kline` from one ``GET /api/v3/klines`` row.

    REST has no closed flag: the candle is closed when its close time is before
    ``now_ms`` (exchange time in ms). Trade ids are unknown there and set to -1;
    ``event_time`` is ``now_ms``; ``backfilled`` marks a candle that fills a gap.
    """
    open_time, close_time, trades = int(row[0]), int(row[6]), int(row[8])
    return Kline(
        symbol, interval, open_time, close_time,
        float(row[1]), float(row[2]), float(row[3]), float(row[4]),
        float(row[5]), float(row[7]), float(row[9]), float(row[10]),
        trades, -1, -1, close_time < now_ms, now_ms, 0, backfilled,
    )  # fmt: skip

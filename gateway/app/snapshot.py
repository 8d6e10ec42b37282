"""A point-in-time picture of a run: plain frozen data, so that views are pure functions.

`SnapshotTaker` reads the gateway (stats, open candles, positions) and the run's
tracker, and remembers what it needs between two pictures (first prices for the
change, counts for the message rates).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from gateway.api import Gateway
from gateway.app.tracker import RunTracker
from gateway.core.positions import PositionStatus
from gateway.core.streams import INTERVAL_MS
from gateway.stats import SymbolStats

__all__ = ["CandleView", "ConnectionRow", "Snapshot", "SnapshotTaker", "SymbolRow"]


@attrs.frozen
class CandleView:
    """The open candle of one interval."""

    interval: str
    open: float
    high: float
    low: float
    close: float


@attrs.frozen
class SymbolRow:
    """One symbol's line in the view."""

    symbol: str
    last_price: float | None
    change_pct: float | None  #: since the first trade of this run
    candle: CandleView | None  #: the open candle of the shortest interval
    candles_closed: int  #: all intervals
    events: int
    msgs_per_s: float
    dropped: int
    restarts: int
    status: str  #: the supervisor's word for the actor: running, restarting, failed ...
    p50_us: float | None  #: receive -> handled
    p99_us: float | None
    position: str  #: "" or e.g. "LONG armed stop 99.80", "LONG STOP FIRED 99.79"


@attrs.frozen
class ConnectionRow:
    """One connection's line."""

    id: str
    state: str
    streams: int
    reconnects: int
    rotations: int
    frames: int


@attrs.frozen
class Snapshot:
    """Everything the view shows, at one moment."""

    title: str
    elapsed: float
    symbols: tuple[SymbolRow, ...]
    connections: tuple[ConnectionRow, ...]
    frames: int
    malformed: int
    unknown: int
    stops_fired: int
    errors: int
    recent: tuple[str, ...]  #: recent stop-loss, error and demo lines, oldest first


def describe_position(statuses: list[PositionStatus]) -> str:
    """The most telling position of a symbol in a few words (fired beats armed)."""
    if not statuses:
        return ""
    fired = [s for s in statuses if s.trigger is not None]
    s = fired[-1] if fired else statuses[-1]
    side = s.position.side.name
    if s.trigger is not None:
        return f"{side} STOP FIRED {s.trigger.price:.2f}"
    return f"{side} {s.state.value} stop {s.position.stop_level:.2f}"


def _intervals_by_length(names: list[str]) -> list[str]:
    return sorted(names, key=lambda i: INTERVAL_MS.get(i, 1 << 62))


class SnapshotTaker:
    """Takes `Snapshot` pictures of one gateway; `take` is cheap (no I/O)."""

    def __init__(self, gw: Gateway, tracker: RunTracker, title: str) -> None:
        self.gw = gw
        self.tracker = tracker
        self.title = title
        self._first_price: dict[str, float] = {}
        self._last_counts: dict[str, int] = {}
        self._last_time: float | None = None

    def take(self, now: float, elapsed: float) -> Snapshot:
        """A picture at ``now`` (seconds on any monotonic clock) ``elapsed`` into the run."""
        stats = self.gw.stats()
        dt = now - self._last_time if self._last_time is not None else 0.0
        rows = [self._row(sym, snap, dt) for sym, snap in stats.symbols.items()]
        self._last_time = now
        conns = tuple(
            ConnectionRow(c.id, c.state, c.streams, c.reconnects, c.rotations, c.frames)
            for c in stats.connections
        )
        router = stats.router
        return Snapshot(
            self.title, elapsed, tuple(rows), conns, router.frames, router.malformed,
            router.unknown, sum(r.stops_fired for r in stats.symbols.values()),
            len(self.tracker.errors), tuple(self.tracker.recent),
        )  # fmt: skip

    def _row(self, sym: str, snap: SymbolStats, dt: float) -> SymbolRow:
        last = snap.last_price
        if last is not None:
            self._first_price.setdefault(sym, last)
        first = self._first_price.get(sym)
        change = (last / first - 1) * 100 if last is not None and first else None
        events = sum(snap.events.values())
        before = self._last_counts.get(sym, events)
        self._last_counts[sym] = events
        rate = (events - before) / dt if dt > 0 else 0.0
        lat = snap.latency_us.receive_to_handled
        return SymbolRow(
            sym, last, change, self._candle(sym, snap.candles_closed),
            self.tracker.closed_total[sym], events, rate,
            snap.dropped, snap.restarts, snap.status,
            lat.p50 if lat else None, lat.p99 if lat else None,
            describe_position(self.gw.positions(sym)),
        )  # fmt: skip

    def _candle(self, sym: str, intervals: Iterable[str]) -> CandleView | None:
        for interval in _intervals_by_length(list(intervals)):
            k = self.gw.candle(sym, interval)
            if k is not None:
                return CandleView(interval, k.open, k.high, k.low, k.close)
        return None

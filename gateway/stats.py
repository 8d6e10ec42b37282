"""What `Gateway.stats` returns: frozen, typed snapshots of every counter the gateway
keeps, per symbol, per connection and gateway-wide.

They are values (taking one costs a few microseconds per symbol and never blocks), and
``to_dict()`` gives the JSON form that ``gateway run --summary`` and the benchmarks write
(latency keys ``p50 ... p99.9``, empty for a histogram with no sample yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "CallbackStats",
    "ConnectionStats",
    "GatewayStats",
    "HoldStats",
    "LatencyStats",
    "Percentiles",
    "RefusedStream",
    "RestStats",
    "RouterStats",
    "ServiceStats",
    "SymbolStats",
]


@attrs.frozen(kw_only=True)
class Percentiles:
    """One latency histogram, in microseconds."""

    p50: float
    p90: float
    p99: float
    p99_9: float
    max: float
    count: int

    def to_dict(self) -> dict[str, float]:
        """``{"p50": ..., "p99.9": ..., "max": ..., "count": ...}``."""
        return {"p50": self.p50, "p90": self.p90, "p99": self.p99, "p99.9": self.p99_9,
                "max": self.max, "count": float(self.count)}  # fmt: skip


def _pcts(value: Percentiles | None) -> dict[str, float]:
    return value.to_dict() if value is not None else {}


@attrs.frozen(kw_only=True)
class LatencyStats:
    """A symbol's three latencies (None until the first sample)."""

    #: The exchange's event time to the frame's arrival (includes clock offset).
    exchange_to_receive: Percentiles | None = None
    #: A frame's arrival to the end of its handling in the symbol actor.
    receive_to_handled: Percentiles | None = None
    #: A trade's arrival to its stop-loss decision.
    receive_to_stop_decision: Percentiles | None = None

    def to_dict(self) -> dict[str, dict[str, float]]:
        """Each latency's `Percentiles.to_dict` (``{}`` while it has no sample)."""
        return {
            "exchange_to_receive": _pcts(self.exchange_to_receive),
            "receive_to_handled": _pcts(self.receive_to_handled),
            "receive_to_stop_decision": _pcts(self.receive_to_stop_decision),
        }


@attrs.frozen(kw_only=True)
class SymbolStats:
    """One symbol's counters: what it handled, dropped, backfilled and fired."""

    symbol: str
    last_price: float | None
    events: Mapping[str, int]  #: handled events per event type name
    handled: int
    dropped: int  #: refused by a full mailbox, or while quarantined
    crashes: int  #: handler crashes (each restarted the actor)
    quarantined: bool
    gaps: int
    duplicates: int
    backfilled: int
    held: int  #: live events held behind a gap right now
    hold_overflows: int
    stale_fallbacks: int
    snapshot_failures: int
    order_book: str | None  #: the book's `SyncState` value; None without depth
    restarts: int
    candles_closed: Mapping[str, int]  #: closed candles buffered per interval
    stops_fired: int
    latency_us: LatencyStats
    status: str = "running"  #: the supervisor's `ChildStatus` value ("failed")
    dead_letters: int = 0
    fallback_polls: int = 0  #: REST price polls while the stream was silent
    fallback_active: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``latency_us`` as `LatencyStats.to_dict`)."""
        out = attrs.asdict(self, recurse=False)
        out["events"] = dict(self.events)
        out["candles_closed"] = dict(self.candles_closed)
        out["latency_us"] = self.latency_us.to_dict()
        return out


@attrs.frozen(kw_only=True)
class ConnectionStats:
    """One WebSocket connection: its state, its streams and what happened to it."""

    id: str
    state: str  #: idle, connecting, live, reconnecting, rotating, failed, closed
    streams: int
    connects: int = 0
    reconnects: int = 0
    rotations: int = 0
    frames: int = 0
    control_frames: int = 0
    control_pace: str = ""  #: control messages allowed per window, e.g. ``4/1s``
    rate_penalties: int = 0
    zombie_replacements: int = 0
    stream_resubscribes: int = 0
    stream_checks: int = 0
    #: Streams the exchange refused: name to (error code or None, message).
    refused: Mapping[str, tuple[int | None, str]] = attrs.field(factory=dict)
    refusal_retries: int = 0
    last_error: str | None = None  #: credentials masked
    #: Runs again after a bug in its own code (the connections supervisor's restarts).
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (refusals as ``[code, message]`` lists)."""
        out = attrs.asdict(self, recurse=False)
        out["refused"] = {name: list(err) for name, err in self.refused.items()}
        return out


@attrs.frozen(kw_only=True)
class RouterStats:
    """Frames the router saw, and those it could not route."""

    frames: int = 0
    malformed: int = 0
    unknown: int = 0
    unrouted: int = 0
    tap_errors: int = 0


@attrs.frozen(kw_only=True)
class RefusedStream:
    """A stream the exchange refused, and on which connection."""

    code: int | None
    message: str
    connection: str


@attrs.frozen(kw_only=True)
class RestStats:
    """The REST side (backfill, snapshots, price polls): requests and request weight."""

    requests: int
    retries: int
    failed: int
    fetched: int  #: rows fetched
    used_weight: int  #: in the current minute
    weight_per_minute: int
    throttled: int  #: waits for the next minute's weight
    shed: int  #: requests or pages no longer wanted, not sent
    #: Prices of gaps REST failed to serve, asked for again for an armed stop.
    stop_retries: int = 0
    stop_retries_dropped: int = 0  #: re-asks refused by a full queue
    queued: int = 0  #: requests waiting for their turn now


@attrs.frozen(kw_only=True)
class HoldStats:
    """Live events held behind gaps by every symbol together (one memory bound)."""

    held: int = 0
    peak: int = 0
    limit: int = 0
    overflows: int = 0


@attrs.frozen(kw_only=True)
class CallbackStats:
    """User callbacks: calls, calls that raised, and events dropped on a full queue."""

    calls: int = 0
    errors: int = 0
    dropped: int = 0


@attrs.frozen(kw_only=True)
class ServiceStats:
    """One supervised service (callbacks, hooks, backfill, fallback): its supervisor's
    view of it."""

    status: str  #: the `ChildStatus` value: "running", or "failed" past its intensity
    restarts: int  #: restarts after a crash of the service itself (a bug, not user code)
    last_error: str | None = None


@attrs.frozen(kw_only=True)
class GatewayStats:
    """Everything `Gateway.stats` knows at one moment."""

    symbols: Mapping[str, SymbolStats]
    connections: tuple[ConnectionStats, ...]
    router: RouterStats
    refused: Mapping[str, RefusedStream] = attrs.field(factory=dict)
    rest: RestStats | None = None  #: None without a REST endpoint
    holds: HoldStats = HoldStats()
    callbacks: CallbackStats = CallbackStats()
    #: The supervised services by name: callbacks, hooks, backfill (with REST), fallback.
    services: Mapping[str, ServiceStats] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: nested plain dicts and lists."""
        return {
            "symbols": {sym: s.to_dict() for sym, s in self.symbols.items()},
            "connections": [c.to_dict() for c in self.connections],
            "router": attrs.asdict(self.router),
            "refused": {name: attrs.asdict(r) for name, r in self.refused.items()},
            "rest": attrs.asdict(self.rest) if self.rest is not None else None,
            "holds": attrs.asdict(self.holds),
            "callbacks": attrs.asdict(self.callbacks),
            "services": {name: attrs.asdict(v) for name, v in self.services.items()},
        }

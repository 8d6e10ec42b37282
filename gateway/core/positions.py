"""Positions guarded by a stop-loss, and the records the stop-loss book hands out (values).

See `gateway.core.stop_loss` for the book that moves them through their states.
"""

from __future__ import annotations

import enum
import math

import attrs

from gateway.errors import PositionError

__all__ = ["Position", "PositionStatus", "Side", "StopState", "StopTrigger"]

_INF = math.inf


class Side(enum.Enum):
    """Which way the position is exposed."""

    LONG = "long"
    SHORT = "short"


class StopState(enum.Enum):
    """Where a position's stop is in its life (see the module docstring)."""

    ARMED = "armed"
    TRIGGERED = "triggered"
    CLOSING = "closing"
    CLOSED = "closed"
    CANCELLED = "cancelled"


def _stop_level(
    side: Side, entry_price: float, stop_pct: float | None, stop_price: float | None
) -> float:
    if (stop_pct is None) == (stop_price is None):
        raise PositionError("give exactly one of stop_pct (e.g. 0.02 for 2%) and stop_price")
    if not (entry_price > 0 and math.isfinite(entry_price)):
        raise PositionError(f"entry_price must be a positive number, got {entry_price!r}")
    if stop_price is not None:
        if not (stop_price > 0 and math.isfinite(stop_price)):
            raise PositionError(f"stop_price must be a positive number, got {stop_price!r}")
        return stop_price
    assert stop_pct is not None
    if not 0 < stop_pct < (1 if side is Side.LONG else _INF) or not math.isfinite(stop_pct):
        raise PositionError(
            f"stop_pct must be > 0{' and < 1 for a LONG' if side is Side.LONG else ''}, "
            f"got {stop_pct!r} (0.02 means 2%)"
        )
    return entry_price * (1.0 - stop_pct) if side is Side.LONG else entry_price * (1.0 + stop_pct)


@attrs.frozen(slots=True)
class Position:
    """An open position guarded by a stop; ``stop_level`` is derived and checked on creation."""

    id: str
    symbol: str
    side: Side
    entry_price: float
    quantity: float
    stop_pct: float | None = None
    stop_price: float | None = None
    stop_level: float = attrs.field(init=False)

    @stop_level.default
    def _level(self) -> float:
        return _stop_level(self.side, self.entry_price, self.stop_pct, self.stop_price)

    def crossed_by(self, price: float) -> bool:
        """True if ``price`` fires this stop (LONG: at or below; SHORT: at or above)."""
        return price <= self.stop_level if self.side is Side.LONG else price >= self.stop_level


@attrs.frozen(slots=True)
class StopTrigger:
    """A fired stop: the position, the price that crossed, and when.

    ``triggered_at``: the book's clock when it fired (the actor's ``trio.current_time()``:
    not epoch, for deadlines); ``triggered_at_epoch``: Unix epoch seconds then, for
    people and logs; ``trade_time``: the crossing trade's exchange time (epoch ms), None
    when not from a trade. ``attempts`` is how many close attempts had started when this
    record was made.
    """

    position: Position
    price: float
    triggered_at: float
    trade_time: int | None = None
    attempts: int = 0
    triggered_at_epoch: float = 0.0


@attrs.frozen(slots=True)
class PositionStatus:
    """A snapshot of one position in the book.

    ``next_attempt_at`` / ``closed_at`` are the book's clock (``trio.current_time()`` in
    the gateway: not epoch); ``next_attempt_at_epoch`` / ``closed_at_epoch`` are the same
    moments in Unix epoch seconds (the trigger's are on ``trigger``). None: not pending /
    not closed.
    """

    position: Position
    state: StopState
    trigger: StopTrigger | None
    attempts: int
    failures: int
    next_attempt_at: float | None
    last_error: str | None
    closed_at: float | None
    next_attempt_at_epoch: float | None = None
    closed_at_epoch: float | None = None

"""The stop-loss book of one symbol: exactly-once triggers, retried closes (pure).

Each `Position` has a stop level: ``entry * (1 - pct)`` for a LONG, which fires
when a price is **at or below** it, ``entry * (1 + pct)`` for a SHORT, which
fires **at or above** it, or the absolute ``stop_price`` instead of a percent.
The level is computed once (on `StopLossBook.open` / `StopLossBook.adjust_stop`)
and compared exactly with the prices seen: no tolerance, so a price equal to
the stored level fires and the tiniest float above (LONG) does not.

Life of a position::

    ARMED --check crosses--> TRIGGERED --mark_closing--> CLOSING --close_succeeded--> CLOSED
      |                                                    |  ^
      +--cancel--> CANCELLED                close_failed --+  +-- mark_closing (retry)

**Exactly once.** `StopLossBook.check` moves every crossed position from ARMED
to TRIGGERED *before* it returns the `StopTrigger` records, and nothing ever
moves a position back to ARMED. So each position produces one trigger, ever,
whatever crashes around it. The close hook that the actor then runs is
at-least-once: a crash between `mark_closing` and the outcome means the hook
runs again after the restart (`recover` then `pending_closes`), so the hook must
be idempotent (close with a client order id derived from the position id).

**Driving it** (the symbol actor)::

    book.recover(now)                       # once, when the actor (re)starts
    for trig in book.check(trade.price, now, trade.trade_time):
        publish(trig)                       # the trigger, once
    for trig in book.pending_closes(now):   # triggered, or failed and due again
        book.mark_closing(trig.position.id, now)
        try: run_close_hook(trig)
        except Exception as exc: book.close_failed(trig.position.id, repr(exc), now)
        else: book.close_succeeded(trig.position.id, now)

A non-crossing `check` is two float comparisons: the book keeps the highest
armed LONG level and the lowest armed SHORT level.

**Times.** ``now`` is the driver's clock (the actor passes ``trio.current_time()``,
which is not epoch: it starts anywhere and runs virtual under ``MockClock``); the book
keeps deadlines in it. What it hands out also carries Unix epoch seconds from
``wall_clock`` (``time.time`` by default), read when the time is recorded: the
``*_epoch`` fields of `StopTrigger` and `PositionStatus`. Show users those.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from gateway.core.positions import Position, PositionStatus, Side, StopState, StopTrigger
from gateway.errors import PositionError

__all__ = [
    "Position",
    "PositionStatus",
    "Side",
    "StopLossBook",
    "StopState",
    "StopTrigger",
]

_INF = math.inf


@attrs.define(slots=True)
class _Entry:
    position: Position
    state: StopState = StopState.ARMED
    trigger: StopTrigger | None = None
    attempts: int = 0
    failures: int = 0
    next_attempt_at: float = _INF
    next_attempt_epoch: float | None = None
    in_flight: bool = False
    last_error: str | None = None
    closed_at: float | None = None
    closed_at_epoch: float | None = None


class StopLossBook:
    """Stop-losses of one symbol, with the close-hook protocol.

    ``retry_initial`` / ``retry_cap``: a failed close is retried after
    ``retry_initial * 2**(failures - 1)`` seconds, capped at ``retry_cap``;
    attempts are unlimited and counted. ``close_timeout``: a close marked
    `mark_closing` with no outcome after that long is offered again by
    `pending_closes` (a hook that hung); `recover` releases in-flight closes at once.
    ``wall_clock``: Unix epoch seconds for the ``*_epoch`` fields (see Times above).

    Counters: ``fired`` (triggers, once per position), ``closed`` (closes that
    succeeded), ``close_failures`` (failed attempts), ``cancelled``.
    """

    __slots__ = (
        "_armed",
        "_entries",
                "cancelled",
        "close_failures",
        "close_timeout",
        "closed",
        "fired",
        "long_max",
        "retry_cap",
        "retry_initial",
        "short_min",
        "symbol",
        "wall_clock",
    )

    def __init__(
        self,
        symbol: str,
        *,
        retry_initial: float = 0.05,
        retry_cap: float = 5.0,
        close_timeout: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.symbol = symbol
        self.wall_clock = wall_clock
        self.retry_initial = retry_initial
        self.retry_cap = retry_cap
        self.close_timeout = close_timeout
        self._entries: dict[str, _Entry] = {}
        self._armed: dict[str, _Entry] = {}
        #: Highest armed LONG level (a price at or below it crosses) and lowest armed SHORT
        #: level (at or above it crosses): read by the hot path, written here only.
        self.long_max = -_INF
        self.short_min = _INF
        self.fired = 0
        self.closed = 0
        self.close_failures = 0
        self.cancelled = 0

    # -- the hot path -------------------------------------------------------------------

    def crosses(self, price: float) -> bool:
        """True if ``price`` would fire at least one armed stop (two comparisons)."""
        return not self.long_max < price < self.short_min

    def check(self, price: float, now: float, trade_time: int | None = None) -> list[StopTrigger]:
        """Fire every ARMED stop that ``price`` crosses; return their triggers.

        The positions are TRIGGERED before this returns (the exactly-once rule).
        O(1) when nothing crosses; O(armed positions) when something does.
        """
        if self.long_max < price < self.short_min:
            return []
        return self._fire(price, price, now, trade_time)

    def check_range(
        self, low: float, high: float, now: float, trade_time: int | None = None
    ) -> list[StopTrigger]:
        """Like `check` for trades that were dropped (mailbox overflow): LONG stops look
        at ``low``, SHORT stops at ``high``, so a slow consumer never hides a crossing."""
        if low > high:
            raise ValueError(f"low {low!r} is above high {high!r}")
        if self.long_max < low and high < self.short_min:
            return []
        return self._fire(low, high, now, trade_time)

    def _fire(
        self, low: float, high: float, now: float, trade_time: int | None
    ) -> list[StopTrigger]:
        fired: list[StopTrigger] = []
        wall: float | None = None
        for pid, entry in list(self._armed.items()):
            pos = entry.position
            if pos.side is Side.LONG:
                if not low <= pos.stop_level:  # written so that a NaN price never fires
                    continue
                price = low
            else:
                if not high >= pos.stop_level:
                    continue
                price = high
            if wall is None:
                wall = self.wall_clock()  # only when something fires: the hot path stays pure
            trigger = StopTrigger(pos, price, now, trade_time, triggered_at_epoch=wall)
            entry.state = StopState.TRIGGERED
            entry.trigger = trigger
            entry.next_attempt_at, entry.next_attempt_epoch = now, wall
            del self._armed[pid]
            fired.append(trigger)
        if fired:
            self.fired += len(fired)
            self._recompute_extremes()
        return fired

    def _recompute_extremes(self) -> None:
        long_max, short_min = -_INF, _INF
        for entry in self._armed.values():
            pos = entry.position
            if pos.side is Side.LONG:
                long_max = max(long_max, pos.stop_level)
            else:
                short_min = min(short_min, pos.stop_level)
        self.long_max, self.short_min = long_max, short_min

    # -- positions --------------------------------------------------------------------

    def open(self, position: Position) -> None:
        """Add an ARMED position. Ids are never reused (raises `PositionError`), even
        after a close, until `forget`; re-check it against the last price right after."""
        if position.symbol != self.symbol:
            raise PositionError(
                f"position {position.id!r} is for {position.symbol!r}, this book is {self.symbol!r}"
            )
        if position.id in self._entries:
            raise PositionError(f"position id {position.id!r} is already in the book")
        entry = _Entry(position)
        self._entries[position.id] = entry
        self._armed[position.id] = entry
        if position.side is Side.LONG:
            self.long_max = max(self.long_max, position.stop_level)
        else:
            self.short_min = min(self.short_min, position.stop_level)

    def adjust_stop(
        self, id: str, stop_pct: float | None = None, stop_price: float | None = None
    ) -> Position:
        """Move an ARMED position's stop (exactly one of the two); returns the new position.

        Raises `PositionError` if the position is not ARMED (a fired stop stays fired).
        The caller re-checks at once with the last price.
        """
        entry = self._entry(id)
        if entry.state is not StopState.ARMED:
            raise PositionError(f"position {id!r} is {entry.state.value}; only armed stops move")
        entry.position = attrs.evolve(entry.position, stop_pct=stop_pct, stop_price=stop_price)
        self._recompute_extremes()
        return entry.position

    def cancel(self, id: str) -> bool:
        """The user closed the position: ARMED -> CANCELLED, True; already CANCELLED: False.

        Raises `PositionError` once the stop has fired (its close is the stop's job).
        """
        entry = self._entry(id)
        if entry.state is StopState.CANCELLED:
            return False
        if entry.state is not StopState.ARMED:
            raise PositionError(
                f"position {id!r} is already {entry.state.value}; its stop fired and closes it"
            )
        entry.state = StopState.CANCELLED
        del self._armed[id]
        self.cancelled += 1
        self._recompute_extremes()
        return True

    def forget(self, id: str) -> None:
        """Drop a CLOSED or CANCELLED position from the book (its id becomes free)."""
        entry = self._entry(id)
        if entry.state not in (StopState.CLOSED, StopState.CANCELLED):
            raise PositionError(f"position {id!r} is {entry.state.value}; only finished ones go")
        del self._entries[id]

    # -- the close hook protocol --------------------------------------------------------

    def recover(self, now: float) -> int:
        """Call once when the actor (re)starts: closes that were in flight when it died
        are due again at ``now``. Returns how many were released."""
        released = 0
        for entry in self._entries.values():
            if entry.in_flight:
                entry.in_flight = False
                self._due(entry, now, now)
                released += 1
        return released

    def pending_closes(self, now: float) -> list[StopTrigger]:
        """Triggers whose close must (re)run now: TRIGGERED ones, CLOSING ones whose retry
        time has come, and in-flight ones past ``close_timeout``. Oldest trigger first."""
        due = [
            e
            for e in self._entries.values()
            if e.state in (StopState.TRIGGERED, StopState.CLOSING) and e.next_attempt_at <= now
        ]
        out = []
        for e in due:
            assert e.trigger is not None
            out.append(attrs.evolve(e.trigger, attempts=e.attempts))
        out.sort(key=_triggered_at)
        return out

    def next_due(self) -> float | None:
        """The earliest time a close becomes due (for the actor's sleep), or None."""
        times = [
            e.next_attempt_at
            for e in self._entries.values()
            if e.state in (StopState.TRIGGERED, StopState.CLOSING)
        ]
        return min(times) if times else None

    def mark_closing(self, id: str, now: float) -> int:
        """A close attempt starts now (TRIGGERED or CLOSING -> CLOSING); returns its number."""
        entry = self._closable(id, "mark_closing")
        entry.state = StopState.CLOSING
        entry.attempts += 1
        entry.in_flight = True
        self._due(entry, now + self.close_timeout, now)
        return entry.attempts

    def close_succeeded(self, id: str, now: float) -> bool:
        """The close hook succeeded: -> CLOSED, True. Already CLOSED: False (a late repeat)."""
        entry = self._entry(id)
        if entry.state is StopState.CLOSED:
            return False
        entry = self._closable(id, "close_succeeded")
        entry.state = StopState.CLOSED
        entry.in_flight = False
        entry.next_attempt_at, entry.next_attempt_epoch = _INF, None
        entry.closed_at, entry.closed_at_epoch = now, self.wall_clock()
        self.closed += 1
        return True

    def close_failed(self, id: str, error_repr: str, now: float) -> float:
        """The close hook failed: stays CLOSING (visible), retried later. Returns the time
        of the next attempt: ``now + min(retry_cap, retry_initial * 2**(failures - 1))``."""
        entry = self._closable(id, "close_failed")
        entry.state = StopState.CLOSING
        entry.in_flight = False
        entry.failures += 1
        entry.last_error = error_repr
        self.close_failures += 1
        exponent = min(entry.failures - 1, 64)  # past 2**64 the cap has long applied
        self._due(entry, now + min(self.retry_cap, self.retry_initial * 2.0**exponent), now)
        return entry.next_attempt_at

    def _due(self, entry: _Entry, at: float, now: float) -> None:
        """The next attempt is due at ``at`` (the driver's clock) and as epoch seconds."""
        entry.next_attempt_at = at
        entry.next_attempt_epoch = self.wall_clock() + (at - now)

    # -- views --------------------------------------------------------------------------

    def status(self, id: str) -> PositionStatus:
        """A snapshot of one position; raises `PositionError` for an unknown id."""
        return _snapshot(self._entry(id))

    @property
    def positions(self) -> tuple[PositionStatus, ...]:
        """Snapshots of every position in the book, in the order they were opened."""
        return tuple(_snapshot(e) for e in self._entries.values())

    @property
    def armed_count(self) -> int:
        """How many stops are armed."""
        return len(self._armed)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, id: object) -> bool:
        return id in self._entries

    def _entry(self, id: str) -> _Entry:
        try:
            return self._entries[id]
        except KeyError:
            raise PositionError(f"no position {id!r} in the {self.symbol!r} book") from None

    def _closable(self, id: str, what: str) -> _Entry:
        entry = self._entry(id)
        if entry.state not in (StopState.TRIGGERED, StopState.CLOSING):
            raise PositionError(
                f"{what}: position {id!r} is {entry.state.value}, not triggered or closing"
            )
        return entry


def _triggered_at(t: StopTrigger) -> float:
    return t.triggered_at


def _snapshot(e: _Entry) -> PositionStatus:
    pending = e.state in (StopState.TRIGGERED, StopState.CLOSING)
    return PositionStatus(
        e.position, e.state, e.trigger, e.attempts, e.failures,
        e.next_attempt_at if pending else None, e.last_error, e.closed_at,
        next_attempt_at_epoch=e.next_attempt_epoch if pending else None,
        closed_at_epoch=e.closed_at_epoch,
    )  # fmt: skip

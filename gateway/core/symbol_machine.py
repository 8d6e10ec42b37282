"""The symbol machine: everything one symbol decides, as a sans-I/O state machine.

A `SymbolMachine` composes the symbol's sequence trackers, candle buffers, stop-loss book,
order book and holds. It is given an input (a market event, a REST answer, a close
hook's result, a fallback price, a timer) and the current times, and answers with plain
values: the events to publish, in order, in `out`, and what it asks of the world in
`requests` (`CloseRequest`, `BackfillRequest`, `WAKE`). It reads no clock, calls no
callback, imports no trio: the runtime (`gateway.runtime.symbol`) feeds it and carries
out what it asks, and tests drive it with plain calls.

Times: ``now`` is the monotonic time of the caller's clock (trio's, in seconds: close
retries, hold deadlines and snapshot backoff are measured in it); ``now_ns`` the epoch
time in ns (stamped on `StopTriggered` as the decision time).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from gateway.core.backfill_protocol import (
    BackfillRequest,
    FallbackPrice,
    Need,
    stream_of,
)
from gateway.core.candles import CandleBook, CandleGap
from gateway.core.events import (
    AggTrade,
    CandleClosed,
    DepthUpdate,
    GapDetected,
    Kline,
    StopTriggered,
    Trade,
)
from gateway.core.holds import HoldBudget, Holds
from gateway.core.hook_protocol import CloseRequest, CloseResult
from gateway.core.orderbook import OrderBookSync, SyncState
from gateway.core.sequence import DUPLICATE, NEW, Observation, SequenceTracker
from gateway.core.stop_loss import Position, StopLossBook, StopTrigger
from gateway.core.symbol_rest import SNAPSHOT_RETRY, RestAnswers

__all__ = ["SNAPSHOT_RETRY", "WAKE", "SymbolMachine", "Wake"]

log = logging.getLogger(__name__)

class Wake:
    """A request: the machine's `deadline` moved earlier (a hold began, a close is due):
    whoever waits on the machine's behalf must wake by it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WAKE"


WAKE = Wake()


class SymbolMachine(RestAnswers):
    """One symbol's state and logic. Inputs are methods; outputs are `out` (events to
    publish, in order) and `requests`; the caller empties both after each input.

    ``can_backfill``: a REST endpoint serves gaps (else each gap ends unfilled at once).
    ``event_time_unit_ns``: the feed's time unit (REST candles only come in ms).
    ``close_hook``: closes go through a hook (`CloseRequest`); without one a fired
    position counts as closed at once.
    """

    def __init__(
        self,
        symbol: str,
        *,
        candle_buffer: int = 1000,
        event_time_unit_ns: int = 1_000_000,
        can_backfill: bool = False,
        close_hook: bool = True,
        hold_max_events: int = 0,
        hold_max_seconds: float = 10.0,
        hold_overflow: str = "unfilled",
        hold_budget: HoldBudget | None = None,
    ) -> None:
        self.symbol = symbol
        self.out: list[Any] = []
        self.requests: list[CloseRequest | BackfillRequest | Wake] = []
        self.candles = CandleBook(symbol, candle_buffer)
        self.stops = StopLossBook(symbol)
        self.holds = Holds(symbol, self.out, max_events=hold_max_events,
                           max_seconds=hold_max_seconds, overflow=hold_overflow,
                           budget=hold_budget)  # fmt: skip
        #: The same dict as ``holds.by_stream`` (never rebound), read on the hot path: empty
        #: while nothing is held. ``out`` is shared with `Holds` likewise: clear it, never
        #: rebind it.
        self._held_streams = self.holds.by_stream
        self.can_backfill = can_backfill
        self.close_hook = close_hook
        self.last_price: float | None = None
        self.last_trade_time: int | None = None
        self.trades = 0  # live trades handled (counted apart: the hot path's own counter)
        self.agg_trades = 0  # live aggregate trades handled
        self._counts: dict[str, int] = {}  # events of every other kind handled, by name
        self.handled = 0
        self.trade_ids = SequenceTracker()
        self.agg_trade_ids = SequenceTracker()
        self.gaps = 0
        self.duplicates = 0
        self.backfilled = 0
        self.stale_fallbacks = 0  # REST prices dropped: a live trade came after the poll
        #: Prices of trades not checked against the stops yet (dropped by a full mailbox,
        #: a dead letter): checked by `catch_up`.
        self.unchecked_low = math.inf
        self.unchecked_high = -math.inf
        #: The local order book, kept from diff depth and REST snapshots (None until a diff).
        self.book: OrderBookSync | None = None
        self.snapshot_pending = False
        self.snapshot_failures = 0  # consecutive depth snapshots that failed for good
        self.snapshot_retry_at = -math.inf
        self._unit_ns = event_time_unit_ns

    # The hot path ---------------------------------------------------------------

    def take_trade(self, event: Trade | AggTrade, kind: type) -> bool:
        """`on_event` for the usual live trade (``kind`` its type), in fewer steps: the
        next id, no stop crossed, nothing held. Applied (the caller publishes ``event``
        itself: nothing goes to ``out``) and True; else False with nothing changed, and
        the caller calls `on_event`. It needs no time: nothing it does is timed."""
        if kind is Trade:
            tracker, tid = self.trade_ids, event.trade_id  # type: ignore[union-attr]
        else:
            tracker, tid = self.agg_trade_ids, event.agg_trade_id  # type: ignore[union-attr]
        last, price, stops = tracker.last, event.price, self.stops
        if (last is None or tid != last + 1 or self._held_streams
                or not stops.long_max < price < stops.short_min):  # fmt: skip
            return False
        tracker.last = tid  # `SequenceTracker.observe` of the next id, inline
        if kind is Trade:
            self.trades += 1
        else:
            self.agg_trades += 1
        self.last_price = price
        self.last_trade_time = event.trade_time
        self.handled += 1
        return True

    def on_event(self, event: Any, now: float, now_ns: int) -> bool:
        """Apply one market event: candles, last price, stops, order book; publish it
        (or hold it behind a gap being backfilled). False if it was dropped instead (a
        duplicate id, a kline older than what was shown)."""
        kind = type(event)
        if kind is Trade or kind is AggTrade:
            seen = (self.trade_ids.observe(event.trade_id) if kind is Trade
                    else self.agg_trade_ids.observe(event.agg_trade_id))  # fmt: skip
            if seen is not NEW:
                if seen is DUPLICATE:  # e.g. the overlap of a reconnect: drop it
                    self.duplicates += 1
                    return False
                self._trade_gap(kind, seen, event.trade_time, now)
            if kind is Trade:
                self.trades += 1
            else:
                self.agg_trades += 1
            price = event.price
            self.last_price = price
            self.last_trade_time = event.trade_time
            stops = self.stops
            if not stops.long_max < price < stops.short_min:  # `crosses`, inline
                self._fire(stops.check(price, now, event.trade_time), event.receive_ns,
                           now, now_ns)  # fmt: skip
            self.handled += 1
            if not self._held_streams or not self.holds.take(
                "trade" if kind is Trade else "aggTrade", event
            ):
                self.out.append(event)
            return True
        counts = self._counts
        name = kind.__name__
        counts[name] = counts.get(name, 0) + 1
        self.handled += 1
        if kind is Kline:
            buf = self.candles.buffer(event.interval)
            ignored = buf.ignored
            closed = buf.apply(event)
            if buf.ignored != ignored:  # stale (an overlap's, older than what was shown)
                return False
            for gap in buf.take_gaps():  # found on the first update after the gap
                self._candle_gap(gap, now)
            stream = f"kline_{event.interval}"
            if closed is not None:
                self.holds.emit(stream, CandleClosed(self.symbol, closed, event.receive_ns))
            if self._held_streams and self.holds.take(stream, event):
                return True
        elif kind is DepthUpdate:
            self._on_depth(event, now)
        self.out.append(event)
        return True

    def dead_letter(self, event: Any, why: str) -> None:
        """The caller's handling of ``event`` raised: a trade's price is still checked
        against the stops (`catch_up`), and its id is reported as a one-id gap that will
        not be filled, never lost silently."""
        kind = type(event)
        if kind is not Trade and kind is not AggTrade:
            return  # a lost kline or depth update shows as a gap of its own later
        self.unchecked(event.price)
        stream = "aggTrade" if kind is AggTrade else "trade"
        tid = event.agg_trade_id if kind is AggTrade else event.trade_id
        self.gaps += 1
        self.out.append(GapDetected(self.symbol, stream, tid, tid, False))
        self.holds.unfilled(stream, tid, tid, f"the symbol's handler raised {why} on it "
                            "(a dead letter; its price was still checked against the stops)")

    def unchecked(self, price: float) -> None:
        """A trade at ``price`` will not be handled (dropped): check it in `catch_up`."""
        if price < self.unchecked_low:
            self.unchecked_low = price
        if price > self.unchecked_high:
            self.unchecked_high = price

    def _fire(self, triggers: list[StopTrigger], receive_ns: int, now: float,
              now_ns: int) -> None:  # fmt: skip
        if not triggers:
            return
        for trig in triggers:
            pos = trig.position
            self.out.append(StopTriggered.from_trigger(trig, receive_ns, now_ns))
            log.warning(
                "stop-loss fired: %s %s position %s at %.10g (stop %.10g)",
                self.symbol, pos.side.name, pos.id, trig.price, pos.stop_level,
            )  # fmt: skip
        if self.request_due_closes(now):
            # The waiter must wake by this close's retry time, or a request the hook
            # runner never answers (lost in a crash, a full queue) would wait for the
            # next unrelated input.
            self.requests.append(WAKE)

    def _trade_gap(self, kind: type, seen: Observation, next_time: int, now: float) -> None:
        first, last = seen.first_missing, seen.last_missing
        assert first is not None and last is not None
        self.gaps += 1
        stream = "aggTrade" if kind is AggTrade else "trade"
        # REST serves both by id without a key: aggTrades and historicalTrades. The trade
        # times around the gap (ms) bound the aggTrades window used if historicalTrades fails.
        unit, prev = self._unit_ns, self.last_trade_time
        request = BackfillRequest(
            self.symbol, stream, first, last,
            after_time=None if prev is None else prev * unit // 1_000_000,
            before_time=-(-next_time * unit // 1_000_000),
        )  # fmt: skip
        self._gap(stream, first, last, request if self.can_backfill else None, now)

    def _candle_gap(self, gap: CandleGap, now: float) -> None:
        self.gaps += 1
        first, last = gap.from_open_time, gap.to_open_time - 1
        ms = self._unit_ns == 1_000_000
        request = BackfillRequest(self.symbol, "kline", first, last, gap.interval)
        self._gap(f"kline_{gap.interval}", first, last,
                  request if ms and self.can_backfill else None, now,
                  None if ms else "REST candles are fetched in milliseconds only")  # fmt: skip

    def _gap(self, stream: str, first: int, last: int, request: BackfillRequest | None,
             now: float, why: str | None = None) -> None:  # fmt: skip
        """Report a gap: ask for its rows (holding what follows it) or end it unfilled."""
        filling = request is not None
        log.warning("%s: %s %s %d..%d missing%s", self.symbol, stream,
                    "candles" if stream.startswith("kline_") else "ids", first, last,
                    "; backfilling" if filling else "")  # fmt: skip
        if request is not None:
            self.requests.append(request)
            if self.holds.max_events > 0 and self.holds.start(stream, first, last, now):
                self.requests.append(WAKE)  # the waiter must wake by the hold's deadline
        self.out.append(GapDetected(self.symbol, stream, first, last, filling))
        if not filling:
            self.holds.unfilled(stream, first, last, why or "no REST endpoint (rest_url is empty)")

    def backfill_refused(self, request: BackfillRequest, now: float) -> None:
        """The backfiller could not take ``request`` (its queue is full): its gap ends
        unfilled right after its `GapDetected` (still in ``out``), unless it ended
        already (a hold past its bound); a snapshot is asked for again after a backoff."""
        if request.kind == "depth":
            self.snapshot_pending = False
            self._snapshot_failed("the backfill queue is full", now)
            return
        stream, holds, out = stream_of(request), self.holds, self.out
        gap = (stream, request.first, request.last)
        if gap in holds.abandoned:  # ended when its hold overflowed: no result will come
            holds.abandoned.discard(gap)
            return
        mark = len(out)
        holds.unfilled(stream, request.first, request.last, "the backfill queue is full")
        ended = out[mark:]
        del out[mark:]
        at = next((i + 1 for i, e in enumerate(out) if type(e) is GapDetected
                   and e.stream == stream and e.first == request.first), mark)  # fmt: skip
        out[at:at] = ended

    # The order book ---------------------------------------------------------------

    def _on_depth(self, event: DepthUpdate, now: float) -> None:
        book = self.book
        if book is None:
            book = self.book = OrderBookSync(self.symbol)
        if book.on_diff(event) is not SyncState.SYNCED:
            self._want_snapshot(now)

    def _want_snapshot(self, now: float) -> None:
        # One request in flight; after a failure, none before the backoff has passed.
        if self.snapshot_pending or self.book is None or not self.can_backfill:
            return
        if now >= self.snapshot_retry_at:
            self.snapshot_pending = True
            self.book.snapshot_requested()
            self.requests.append(BackfillRequest(self.symbol, "depth", 0, 0))

    # Stops, closes and timers -----------------------------------------------------

    def open_position(self, position: Position) -> None:
        """Arm a stop-loss for ``position``; it is checked against the very next trade."""
        self.stops.open(position)

    def deadline(self) -> float | None:
        """The earliest time `on_timer` has work (a close retry, a hold's bound), or None."""
        retry_at, hold_at = self.stops.next_due(), self.holds.deadline()
        if retry_at is None:
            return hold_at
        return retry_at if hold_at is None else min(retry_at, hold_at)

    def on_timer(self, now: float) -> None:
        """The `deadline` passed: ask for the closes now due and release overdue holds."""
        self.request_due_closes(now)
        self.holds.release_overdue(now)

    def request_due_closes(self, now: float) -> bool:
        """Ask for every triggered position whose turn has come to be closed; True if any
        `CloseRequest` was made."""
        asked = False
        for trig in self.stops.pending_closes(now):
            pid = trig.position.id
            self.stops.mark_closing(pid, now)
            if self.close_hook:
                self.requests.append(CloseRequest(self.symbol, trig))
                asked = True
            else:  # no hook: closing is immediate
                self.stops.close_succeeded(pid, now)
        return asked

    def on_close_result(self, result: CloseResult, now: float) -> None:
        """Record a close hook's outcome; a failure schedules a retry."""
        if result.error is None:
            self.stops.close_succeeded(result.position_id, now)
            return
        retry_at = self.stops.close_failed(result.position_id, result.error, now)
        log.warning(
            "close hook failed for %s position %s (%s); retry in %.3fs",
            self.symbol, result.position_id, result.error, retry_at - now,
        )  # fmt: skip

    def recover(self, now: float, now_ns: int) -> None:
        """After a restart: rebuild what a crash interrupted (fired stops not yet closing),
        check what went unchecked, and ask for the closes that are due."""
        self.stops.recover(now)
        self.catch_up(now, now_ns)
        self.request_due_closes(now)

    def catch_up(self, now: float, now_ns: int) -> None:
        """Check the stops against the extremes of trades that were not handled."""
        if self.unchecked_low <= self.unchecked_high:
            low, high = self.unchecked_low, self.unchecked_high
            self.unchecked_low, self.unchecked_high = math.inf, -math.inf
            self._fire(self.stops.check_range(low, high, now), 0, now, now_ns)

    def live_trades(self) -> int:
        """Trades the hot path handled so far (backfilled rows are not counted there)."""
        return self.trades + self.agg_trades

    @property
    def counts(self) -> dict[str, int]:
        """Live events handled so far, by kind name (a fresh dict)."""
        counts = dict(self._counts)
        if self.trades:
            counts["Trade"] = self.trades
        if self.agg_trades:
            counts["AggTrade"] = self.agg_trades
        return counts

    def count(self, kind: str) -> int:
        """Live events of ``kind`` (a class name) handled so far."""
        if kind == "Trade":
            return self.trades
        if kind == "AggTrade":
            return self.agg_trades
        return self._counts.get(kind, 0)

    def on_fallback_price(self, item: FallbackPrice, now: float, now_ns: int) -> None:
        """Check the armed stops against a REST price (fired positions never fire again),
        unless a live trade came since it was polled: the stream speaks again."""
        if item.live_trades >= 0 and item.live_trades != self.live_trades():
            self.stale_fallbacks += 1
            return
        price = item.price
        if self.stops.crosses(price):
            self._fire(self.stops.check_range(price, price, now), 0, now, now_ns)

    def warm_up(self, interval: str, klines: list[Kline]) -> int:
        """Seed ``interval``'s buffer with closed REST candles (nothing is published: they
        are history from before the gateway opened); returns how many were kept."""
        return len(self.candles.buffer(interval).backfill(klines))

    def quarantine(self) -> None:
        """Stop for good: what is held is published in order and each pending gap ends
        unfilled; REST results that come later end their gaps (`on_quarantined_result`)."""
        self.holds.abandon_all("the symbol was quarantined")

    def backfill_need(self, request: BackfillRequest) -> Need:
        """What this symbol still wants of a trade or aggTrade request: its rows while its
        gap is pending; once the gap ended unfilled, prices only if a stop is armed."""
        if not request.prices_only and (
            (stream_of(request), request.first, request.last) not in self.holds.abandoned
        ):
            return Need.ROWS
        return Need.PRICES if self.stops.armed_count else Need.NOTHING

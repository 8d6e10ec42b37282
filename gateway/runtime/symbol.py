"""The symbol actor: one per symbol, owning its candles, stop-loss book and statistics.

`SymbolState` is the state the supervisor keeps across restarts. Its `handle` method
is the hot path (candle update, last price, stop-loss check, latency record, publish)
and is called synchronously by the router while the actor is live. If it raises, the
router hands the crash to the actor task, which raises it: the supervisor records the
poison event as a dead letter and restarts the actor with the same state and mailbox.
While the actor is down, events queue in its bounded mailbox; dropped trades still
feed the stop-loss book through their lowest and highest price. An actor that keeps
crashing past its restart intensity is quarantined (`SymbolState.quarantine`) or ends
the gateway (`SymbolFailed`), per the ``on_symbol_failure`` setting.

Live trades after a gap being backfilled are held (bounded in count and time) and
published after the backfilled ones, so subscribers see increasing ids; the stop-loss
book sees them at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from actors import ActorContext, Mailbox
from gateway.core.backoff import ReconnectPolicy
from gateway.core.candles import CandleBook, CandleGap
from gateway.core.events import AggTrade, DepthUpdate, Kline, Trade
from gateway.core.latency import LatencyRecorder
from gateway.core.notices import CandleClosed, GapDetected, GapFilled, GapUnfilled, StopTriggered
from gateway.core.orderbook import OrderBookSync, SyncState
from gateway.core.sequence import DUPLICATE, NEW, Observation, SequenceTracker
from gateway.core.stop_loss import Position, StopLossBook, StopTrigger
from gateway.errors import GatewayError
from gateway.runtime.backfill import BackfillRequest, BackfillResult, DepthSnapshot, Need
from gateway.runtime.holds import Hold, HoldBudget, key_of
from gateway.runtime.publish import Publisher
from gateway.stats import LatencyStats, Percentiles, SymbolStats

log = logging.getLogger(__name__)

_TRADES = (Trade, AggTrade)
#: Wait between depth snapshot requests that failed for good (the backfiller already
#: retried each with jittered backoff): 1 s, 2 s, 4 s ... at most a minute, never giving up.
SNAPSHOT_RETRY = ReconnectPolicy(initial=1.0, factor=2.0, cap=60.0, max_attempts=None)


class SymbolHandlerError(GatewayError):
    """A symbol actor's handler raised on an event (the event becomes a dead letter)."""


class SymbolFailed(GatewayError):
    """A symbol's actor crashed past its restart intensity and ``on_symbol_failure`` is
    ``"raise"``: the gateway ended.

    ``__cause__`` is the supervisor's `RestartIntensityExceeded` (whose own cause is the
    symbol's last crash). ``restarts``: how often the actor was restarted before that.
    """

    def __init__(self, symbol: str, restarts: int) -> None:
        self.symbol = symbol
        self.restarts = restarts
        super().__init__(
            f"symbol {symbol}: its actor kept crashing ({restarts} restarts, then past its "
            f"restart intensity) and on_symbol_failure is 'raise'; the crash is chained as "
            f"the cause. Fix that, or set on_symbol_failure = 'quarantine' to stop only "
            f"this symbol"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.symbol, self.restarts))


@attrs.frozen(slots=True)
class Crash:
    """Router to actor: the hot-path handler raised on ``event``."""

    event: Any
    error: Exception


@attrs.frozen(slots=True)
class CloseRequest:
    """Symbol actor to hook runner: run the user's close hook for ``trigger``."""

    symbol: str
    trigger: StopTrigger


@attrs.frozen(slots=True)
class CloseResult:
    """Hook runner to symbol actor: the close hook succeeded, or failed with ``error``."""

    position_id: str
    error: str | None


@attrs.frozen(slots=True)
class FallbackPrice:
    """REST fallback to symbol actor: the exchange's last price while no live trade came.

    ``live_trades``: the symbol's live trade count when the poll was sent; a live trade
    since then makes the price stale (the stream and its backfill cover that time).
    """

    price: float
    live_trades: int = -1


#: Symbol to its own actor: a hold began, so wake and take its deadline into account.
_WAKE = object()


def _stream_of(request: BackfillRequest) -> str:
    """The stream name a backfill request fills (``kline_<interval>`` for candles)."""
    return request.kind if request.interval is None else f"kline_{request.interval}"


class SymbolState:
    """Everything one symbol owns; it outlives any restart of its actor."""

    def __init__(
        self,
        symbol: str,
        publisher: Publisher,
        *,
        candle_buffer: int = 1000,
        event_time_unit_ns: int = 1_000_000,
        request_close: Callable[[CloseRequest], None] | None = None,
        request_backfill: Callable[[BackfillRequest], bool] | None = None,
        hold_max_events: int = 0,
        hold_max_seconds: float = 10.0,
        hold_overflow: str = "unfilled",
        hold_budget: HoldBudget | None = None,
    ) -> None:
        self.symbol = symbol
        self.publisher = publisher
        self.candles = CandleBook(symbol, candle_buffer)
        self.stops = StopLossBook(symbol)
        self.mailbox: Mailbox[Any] | None = None
        self.live = False
        self.last_price: float | None = None
        self.last_trade_time: int | None = None
        self.counts: dict[str, int] = {}
        self.handled = 0
        self.dropped = 0
        #: Stopped for good (past its restart intensity): everything for it is dropped.
        self.quarantined = False
        self.crashes = 0
        self.restarts = 0
        self.overflow_low = math.inf
        self.overflow_high = -math.inf
        self.exchange_latency = LatencyRecorder()  # exchange event time -> receive
        self.handle_latency = LatencyRecorder()  # receive -> handled
        self.stop_latency = LatencyRecorder()  # receive -> stop-loss decision, every trade
        self._unit_ns = event_time_unit_ns
        self._request_close = request_close
        self._request_backfill = request_backfill
        self.trade_ids = SequenceTracker()
        self.agg_trade_ids = SequenceTracker()
        self.gaps = 0
        self.duplicates = 0
        self.backfilled = 0
        #: The local order book, kept from diff depth and REST snapshots (None until a diff).
        self.book: OrderBookSync | None = None
        self._snapshot_pending = False
        self.snapshot_failures = 0  # consecutive depth snapshots that failed for good
        self._snapshot_retry_at = -math.inf
        #: In order for subscribers: live trades after a gap being backfilled are held
        #: (per stream, at most this many and this long; 0: never held). Stops never wait.
        self.hold_max_events = hold_max_events
        self.hold_max_seconds = hold_max_seconds
        self.hold_overflow = hold_overflow  # "unfilled" or "late" (see GatewayConfig)
        self._holds: dict[str, Hold] = {}
        #: Live events held by every symbol together (one bound per gateway), or None.
        self._hold_budget = hold_budget
        self.hold_overflows = 0  # holds released early (count or time bound reached)
        #: Gaps ended before their REST result (a hold past its bound, a quarantine):
        #: their rows only reach the stop-loss book.
        self._abandoned: set[tuple[str, int, int]] = set()
        self.stale_fallbacks = 0  # REST prices dropped: a live trade came after the poll
        #: The gap whose REST answer is being applied, until its ending is published.
        self._ending: tuple[str, int, int] | None = None
        #: Gaps whose REST rows come in parts (a page each): [rows published, next id].
        self._parts: dict[tuple[str, int, int], list[int]] = {}

    # The hot path -------------------------------------------------------------

    def deliver(self, event: Any) -> None:
        """Router entry point: handle now if the actor is live, else queue; never raises."""
        if self.live:
            try:
                self.handle(event)
            except Exception as exc:  # noqa: BLE001 - isolate this symbol; actor restarts
                self.live = False
                self.crashes += 1
                self._queue(Crash(event, exc))
                self._poisoned(event, exc)
            return
        self._queue(event)

    def _poisoned(self, event: Any, exc: Exception) -> None:
        """The handler raised on ``event`` (a dead letter): a trade's price still reaches
        the stop-loss book (checked when the actor is back), and its id is reported as a
        one-id gap that will not be filled, never lost silently."""
        kind = type(event)
        if kind is not Trade and kind is not AggTrade:
            return  # a lost kline or depth update shows as a gap of its own later
        price = event.price
        self.overflow_low = min(self.overflow_low, price)
        self.overflow_high = max(self.overflow_high, price)
        stream = "aggTrade" if kind is AggTrade else "trade"
        tid = event.agg_trade_id if kind is AggTrade else event.trade_id
        self.gaps += 1
        self.publisher.publish(GapDetected(self.symbol, stream, tid, tid, False))
        self._unfilled(stream, tid, tid, f"the symbol's handler raised {exc!r} on it "
                       "(a dead letter; its price was still checked against the stops)")

    def _queue(self, item: Any) -> None:
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            self.dropped += 1
            return
        if not mailbox.put_nowait(item):
            self.dropped += 1
            if type(item) in _TRADES:
                price = item.price
                if price < self.overflow_low:
                    self.overflow_low = price
                if price > self.overflow_high:
                    self.overflow_high = price

    def handle(self, event: Any) -> None:
        """Apply one event to this symbol's state and publish what happened."""
        kind = type(event)
        if kind is AggTrade or kind is Trade:
            seen = (self.agg_trade_ids.observe(event.agg_trade_id) if kind is AggTrade
                    else self.trade_ids.observe(event.trade_id))  # fmt: skip
            if seen is not NEW:
                if seen is DUPLICATE:  # e.g. the overlap of a reconnect: drop it
                    self.duplicates += 1
                    return
                self._trade_gap(kind, seen, event.trade_time)
        name = kind.__name__
        self.counts[name] = self.counts.get(name, 0) + 1
        if kind is Trade or kind is AggTrade:
            price = event.price
            self.last_price = price
            self.last_trade_time = event.trade_time
            if self.stops.crosses(price):
                now = trio.current_time()
                self._fire(self.stops.check(price, now, event.trade_time), event)
            if event.receive_ns:  # the stop-loss decision for this trade is made
                self.stop_latency.record(time.time_ns() - event.receive_ns)
        elif kind is Kline:
            buf = self.candles.buffer(event.interval)
            ignored = buf.ignored
            closed = buf.apply(event)
            if buf.ignored != ignored:  # stale (an overlap's, older than what was shown)
                self.handled += 1
                return
            for gap in buf.take_gaps():  # found on the first update after the gap
                self._candle_gap(gap)
            if closed is not None:
                self._emit(f"kline_{event.interval}",
                           CandleClosed(self.symbol, closed, event.receive_ns))  # fmt: skip
        elif kind is DepthUpdate:
            self._on_depth(event)
        if not self._holds or not self._held(kind, event):
            self.publisher.publish(event)
        now_ns = time.time_ns()
        rns = event.receive_ns
        if rns:
            self.handle_latency.record(now_ns - rns)
            et = event.event_time  # None for bookTicker and partial depth
            if et:
                # Negative (clock skew between hosts) is counted apart by the recorder.
                self.exchange_latency.record(rns - et * self._unit_ns)
        self.handled += 1

    def _fire(self, triggers: list[StopTrigger], event: Any) -> None:
        if not triggers:
            return
        now_ns = time.time_ns()
        for trig in triggers:
            pos = trig.position
            self.publisher.publish(StopTriggered.from_trigger(trig, event.receive_ns, now_ns))
            log.warning(
                "stop-loss fired: %s %s position %s at %.10g (stop %.10g)",
                self.symbol, pos.side.name, pos.id, trig.price, pos.stop_level,
            )  # fmt: skip
        self.request_due_closes()

    def _trade_gap(self, kind: type, seen: Observation, next_time: int) -> None:
        assert seen.first_missing is not None and seen.last_missing is not None
        self.gaps += 1
        stream = "aggTrade" if kind is AggTrade else "trade"
        # REST serves both by id without a key: aggTrades and historicalTrades. The trade
        # times around the gap (ms) bound the aggTrades window used if historicalTrades fails.
        unit, prev = self._unit_ns, self.last_trade_time
        filling = self._backfill(
            BackfillRequest(
                self.symbol, stream, seen.first_missing, seen.last_missing,
                after_time=None if prev is None else prev * unit // 1_000_000,
                before_time=-(-next_time * unit // 1_000_000),
            )
        )  # fmt: skip
        log.warning("%s: %s ids %d..%d missing%s", self.symbol, stream, seen.first_missing,
                    seen.last_missing, "; backfilling" if filling else "")  # fmt: skip
        if filling and self.hold_max_events > 0:
            self._start_hold(stream, seen.first_missing, seen.last_missing)
        self.publisher.publish(
            GapDetected(self.symbol, stream, seen.first_missing, seen.last_missing, filling)
        )
        if not filling:
            self._unfilled(stream, seen.first_missing, seen.last_missing,
                           self._no_backfill_reason())  # fmt: skip

    # Holding live events behind a gap ------------------------------------------------

    def _start_hold(self, stream: str, first: int, last: int) -> None:
        """Hold what ``stream`` publishes from now until ``first..last`` ends (bounded)."""
        hold = self._holds.get(stream)
        if hold is None:
            deadline = trio.current_time() + self.hold_max_seconds
            hold = self._holds[stream] = Hold(deadline, [], [])
            mailbox = self.mailbox
            if mailbox is not None and not mailbox.closed:
                mailbox.put_nowait(_WAKE)  # the actor's wait now ends by the deadline
        hold.gaps.append((first, last))

    def _held(self, kind: type, event: Any) -> bool:
        """Hold ``event`` if its stream is held; True if it was (and is not published)."""
        if kind is Trade:
            stream = "trade"
        elif kind is AggTrade:
            stream = "aggTrade"
        elif kind is Kline:
            stream = f"kline_{event.interval}"
        else:
            return False
        hold = self._holds.get(stream)
        if hold is None:
            return False
        self._add(stream, hold, event)
        return True

    def _emit(self, stream: str, item: Any, *, live: bool = True) -> None:
        """Publish ``item`` of ``stream`` now, or behind the stream's hold if it has one."""
        hold = self._holds.get(stream) if self._holds else None
        if hold is None:
            self.publisher.publish(item)
        else:
            self._add(stream, hold, item, live=live)

    def _add(self, stream: str, hold: Hold, item: Any, *, live: bool = True) -> None:
        """Hold ``item``; a live one may take the hold past a bound (backfilled rows are
        checked against the gateway-wide bound a page at a time, in `_rows_to`)."""
        hold.items.append(item)
        budget = self._hold_budget
        within = budget is None or budget.take()
        if live:
            hold.live += 1
            if hold.live >= self.hold_max_events:
                self._overflow(stream, f"{hold.live} live events held")
            elif not within and budget is not None:
                budget.overflows += 1
                self._overflow(stream, f"{budget.limit} events held by all symbols")

    def _overflow(self, stream: str, why: str) -> None:
        """A hold reached its bound: publish what it holds, in order, and stop holding.
        Its pending gaps end unfilled now (``hold_overflow`` "unfilled") or their rows
        are published when they come, out of order ("late")."""
        hold = self._holds.pop(stream)
        self._hold_ended(hold)
        self.hold_overflows += 1
        late = self.hold_overflow == "late"
        log.warning("%s: %s held past its bound (%s): releasing; %s", self.symbol, stream, why,
                    "later backfilled events arrive out of order" if late else
                    "the gaps still pending end unfilled")  # fmt: skip
        if not late:
            reason = (f"held past its bound ({why}) before REST answered: live events went "
                      f"on; the gap's rows only reach the stop-loss book")  # fmt: skip
            for first, last in hold.gaps:
                gap = (stream, first, last)
                self._abandoned.add(gap)
                if self._ending == gap:
                    self._ending = None
                start = self._unpublished_from(gap)
                self._parts.pop(gap, None)
                hold.items.append(self._unfilled_event(stream, start, last, reason))
        hold.items.sort(key=key_of)  # stable: equal keys in arrival order
        for item in hold.items:
            self.publisher.publish(item)

    def _release(self, stream: str, hold: Hold) -> None:
        """Publish, in order, what is held below every gap still pending; the hold ends
        once no gap is pending."""
        if hold.gaps:
            self._flush_below(hold, min(first for first, _ in hold.gaps))
            return
        del self._holds[stream]
        hold.items.sort(key=key_of)
        self._hold_ended(hold)
        for item in hold.items:
            self.publisher.publish(item)

    def _flush_below(self, hold: Hold, bound: int) -> None:
        """Publish, in order, what ``hold`` keeps with an order key below ``bound``."""
        items = hold.items
        items.sort(key=key_of)
        n = 0
        for item in items:
            if key_of(item) >= bound:
                break
            self.publisher.publish(item)
            n += 1
        del items[:n]
        if self._hold_budget is not None:
            self._hold_budget.give_back(n)

    def _hold_ended(self, hold: Hold) -> None:
        """Give what ``hold`` keeps back to the gateway-wide bound (it is published now)."""
        if self._hold_budget is not None:
            self._hold_budget.give_back(len(hold.items))

    def _unpublished_from(self, gap: tuple[str, int, int]) -> int:
        """The first id of ``gap`` whose row was not published (its parts came before)."""
        part = self._parts.get(gap)
        return gap[1] if part is None else part[1]

    def _gap_ended(self, stream: str, first: int, last: int, ending: Any) -> None:
        """Publish a gap's ending (`GapFilled` / `GapUnfilled`) after its rows, and release
        what its hold kept behind it."""
        gap = (stream, first, last)
        if self._ending == gap:
            self._ending = None  # out (or queued in order): a crash from here on is after it
        self._parts.pop(gap, None)
        hold = self._holds.get(stream)
        if hold is None or (first, last) not in hold.gaps:
            self.publisher.publish(ending)
            return
        hold.gaps.remove((first, last))
        hold.items.append(ending)  # keyed by its last id: after its rows
        if self._hold_budget is not None:
            self._hold_budget.take()
        self._release(stream, hold)

    def hold_deadline(self) -> float | None:
        """When the oldest hold must be released at the latest (None: nothing held)."""
        return min((h.deadline for h in self._holds.values()), default=None)

    def release_overdue(self) -> None:
        """Release every hold past its deadline (the actor calls it when one is due)."""
        now = trio.current_time()
        for stream in [s for s, h in self._holds.items() if h.deadline <= now]:
            self._overflow(stream, f"held {self.hold_max_seconds}s")

    def _candle_gap(self, gap: CandleGap) -> None:
        self.gaps += 1
        first, last = gap.from_open_time, gap.to_open_time - 1
        filling = self._unit_ns == 1_000_000 and self._backfill(
            BackfillRequest(self.symbol, "kline", first, last, gap.interval)
        )
        log.warning("%s: kline_%s candles %d..%d missing%s", self.symbol, gap.interval,
                    first, last, "; backfilling" if filling else "")  # fmt: skip
        if filling and self.hold_max_events > 0:
            self._start_hold(f"kline_{gap.interval}", first, last)
        self.publisher.publish(
            GapDetected(self.symbol, f"kline_{gap.interval}", first, last, filling)
        )
        if not filling:
            why = ("REST candles are fetched in milliseconds only" if self._unit_ns != 1_000_000
                   else self._no_backfill_reason())  # fmt: skip
            self._unfilled(f"kline_{gap.interval}", first, last, why)

    def _no_backfill_reason(self) -> str:
        if self._request_backfill is None:
            return "no REST endpoint (rest_url is empty)"
        return "the backfill queue is full"

    def _unfilled(self, stream: str, first: int, last: int, reason: str,
                  start: int | None = None) -> None:
        """``start..last`` of gap ``first..last`` will not be served (``start``: after
        the rows already published)."""
        if start is None:
            start = self._unpublished_from((stream, first, last))
        self._gap_ended(stream, first, last, self._unfilled_event(stream, start, last, reason))

    def _unfilled_event(self, stream: str, first: int, last: int, reason: str) -> GapUnfilled:
        log.warning("%s: %s %d..%d not backfilled: %s", self.symbol, stream, first, last, reason)
        return GapUnfilled(self.symbol, stream, first, last, reason)

    def _on_depth(self, event: DepthUpdate) -> None:
        book = self.book
        if book is None:
            book = self.book = OrderBookSync(self.symbol)
        if book.on_diff(event) is not SyncState.SYNCED:
            self._want_snapshot()

    def _want_snapshot(self) -> None:
        # One request in flight; after a failure, none before the backoff has passed.
        if self._snapshot_pending or self.book is None:
            return
        if trio.current_time() >= self._snapshot_retry_at:
            self._snapshot_pending = self._backfill(BackfillRequest(self.symbol, "depth", 0, 0))
            if self._snapshot_pending:
                self.book.snapshot_requested()

    def _snapshot_failed(self, why: str) -> None:
        """No usable snapshot: ask again only after `SNAPSHOT_RETRY`'s growing wait."""
        self.snapshot_failures += 1
        wait = SNAPSHOT_RETRY.ceiling(self.snapshot_failures - 1)
        self._snapshot_retry_at = trio.current_time() + wait
        log.warning("%s: depth snapshot failed (%s); next try in %.0fs at the earliest",
                    self.symbol, why, wait)  # fmt: skip

    def _backfill(self, request: BackfillRequest) -> bool:
        return self._request_backfill is not None and self._request_backfill(request)

    def on_backfill(self, result: BackfillResult) -> None:
        """Apply rows fetched over REST: publish them, and let them fire crossed stops."""
        req = result.request
        if req.kind == "depth":
            self._snapshot_pending = False
            snap = result.events[0] if result.events else None
            if not isinstance(snap, DepthSnapshot) or self.book is None:
                self._snapshot_failed(result.error or "no snapshot")
                return
            state = self.book.on_snapshot(snap.last_update_id, snap.bids, snap.asks)
            if state is SyncState.NEEDS_SNAPSHOT:  # older than the buffered diffs
                self._snapshot_failed(f"snapshot {snap.last_update_id} older than the diffs")
                return
            self.snapshot_failures = 0
            if state is SyncState.SYNCED:
                log.info("%s: order book synced at %d", self.symbol, snap.last_update_id)
            return
        rows = result.events
        if req.prices_only:  # its gap ended long ago: the prices are for the stops only
            self._check_rows(rows)
            self._check_stop_prices(result)
            return
        stream = _stream_of(req)
        gap = (stream, req.first, req.last)
        self.backfilled += len(rows)
        self._ending = gap  # until its ending is out (crash-safe)
        trades = req.kind == "aggTrade" or req.kind == "trade"
        # A gap its hold still waits for: rows go behind it (or out now when it is the
        # oldest gap held); else (released "late") now, not behind a newer hold of the
        # stream that would keep them after their ending.
        pending = trades and bool(rows) and self._rows_to(stream, req, rows)
        if gap in self._abandoned:  # its gap already ended
            self._ending = None
            if result.final:
                self._abandoned.discard(gap)
            self._check_rows(rows)
            self._check_stop_prices(result)
            if req.interval is not None:
                self.candles.buffer(req.interval).backfill(
                    k for k in rows if isinstance(k, Kline))  # fmt: skip
            return
        if not trades:
            hold = self._holds.get(stream)
            pending = hold is not None and (req.first, req.last) in hold.gaps
        publish = self.publisher.publish
        if trades and rows:
            self._check_rows(rows)
            for ev in rows:
                self._emit(stream, ev, live=False) if pending else publish(ev)
        elif req.interval is not None and rows:
            buf = self.candles.buffer(req.interval)
            for candle in buf.backfill(k for k in rows if isinstance(k, Kline)):
                closed = CandleClosed(self.symbol, candle, 0)
                if pending:
                    self._emit(stream, closed, live=False)
                    self._emit(stream, candle, live=False)
                else:
                    publish(closed)
                    publish(candle)
        if not result.final:  # a page of a long gap: the rest follows
            part = self._parts.setdefault(gap, [0, req.first])
            if rows:
                part[0] += len(rows)
                part[1] = key_of(rows[-1]) + 1
            self._ending = None
            return
        reason = result.error or "not served"
        if self._check_stop_prices(result):
            reason += f"; stops checked against {result.stop_rows} aggregate trades"
        # The gap ends here, after its rows: filled, or the exact part not served.
        if result.missing_from is None and result.error is None:
            done = self._parts.get(gap)
            count = len(rows) + (done[0] if done is not None else 0)
            self._gap_ended(stream, req.first, req.last,
                            GapFilled(self.symbol, stream, req.first, req.last, count))  # fmt: skip
        else:
            self._unfilled(stream, req.first, req.last, reason, result.missing_from)

    def _rows_to(self, stream: str, req: BackfillRequest, rows: Sequence[Any]) -> bool:
        """Whether backfilled trade ``rows`` of ``req``'s gap go behind its stream's hold.
        Not when the gap is the oldest held (what is held before them is published first)
        or when the hold no longer waits for it; a page that would take the gateway past
        its hold bound releases the hold first (`_overflow`)."""
        hold = self._holds.get(stream)
        if hold is None or (req.first, req.last) not in hold.gaps:
            return False
        if min(first for first, _ in hold.gaps) == req.first:
            self._flush_below(hold, key_of(rows[0]))
            return False
        budget = self._hold_budget
        if budget is not None and not budget.fits(len(rows)):
            budget.overflows += 1
            self._overflow(stream, f"{budget.limit} events held by all symbols")
            return False
        return True

    def backfill_need(self, request: BackfillRequest) -> Need:
        """What this symbol still wants of a trade or aggTrade request: its rows while its
        gap is pending; once the gap ended unfilled, prices only if a stop is armed."""
        if not request.prices_only and (
            (_stream_of(request), request.first, request.last) not in self._abandoned
        ):
            return Need.ROWS
        return Need.PRICES if self.stops.armed_count else Need.NOTHING

    def backfill_crashed(self, result: BackfillResult) -> None:
        """Applying ``result`` raised: end its gap unfilled unless its ending is out, and
        ignore the rest of it (the actor restarts)."""
        req = result.request
        if req.kind == "depth":
            self._snapshot_pending = False
            return
        stream = _stream_of(req)
        key = (stream, req.first, req.last)
        if self._ending != key:
            return  # its ending was published before the crash
        if not result.final:
            self._abandoned.add(key)  # its later parts only reach the stop-loss book
        self._unfilled(stream, req.first, req.last,
                       "the symbol's actor raised while applying the REST answer")  # fmt: skip

    def _check_rows(self, rows: Sequence[Any]) -> None:
        """Let backfilled trades fire the stops their price range crosses (once each)."""
        prices = [ev.price for ev in rows if type(ev) in _TRADES]
        if prices:
            now = trio.current_time()
            self._fire(self.stops.check_range(min(prices), max(prices), now), rows[0])

    def _check_stop_prices(self, result: BackfillResult) -> bool:
        """Let the aggregate trades that priced an unserved plain-trade range fire the
        stops they cross; True if there were any."""
        if result.stop_prices is None:
            return False
        low, high = result.stop_prices
        self._fire(self.stops.check_range(low, high, trio.current_time()),
                   Trade(self.symbol, -1, low, 0.0, 0, False, 0, 0))  # fmt: skip
        return True

    # Slow path (actor task and owner API) --------------------------------------

    def request_due_closes(self) -> None:
        """Ask the hook runner to close every triggered position whose turn has come."""
        now = trio.current_time()
        asked = False
        for trig in self.stops.pending_closes(now):
            pid = trig.position.id
            self.stops.mark_closing(pid, now)
            if self._request_close is not None:
                self._request_close(CloseRequest(self.symbol, trig))
                asked = True
            else:  # no hook: closing is immediate
                self.stops.close_succeeded(pid, now)
        mailbox = self.mailbox
        if asked and self.live and mailbox is not None and not mailbox.closed:
            # From the hot path: the actor's wait must end by this close's retry time, or
            # a request the hook runner never answers (lost in a crash, a full queue)
            # would wait for the next unrelated message.
            mailbox.put_nowait(_WAKE)

    def on_close_result(self, result: CloseResult) -> None:
        """Record a close hook's outcome; a failure schedules a retry."""
        now = trio.current_time()
        if result.error is None:
            self.stops.close_succeeded(result.position_id, now)
        else:
            retry_at = self.stops.close_failed(result.position_id, result.error, now)
            log.warning(
                "close hook failed for %s position %s (%s); retry in %.3fs",
                self.symbol, result.position_id, result.error, retry_at - now,
            )  # fmt: skip

    def catch_up_overflow(self) -> None:
        """Check stops against the extremes of trades dropped while the actor was down."""
        if self.overflow_low <= self.overflow_high:
            low, high = self.overflow_low, self.overflow_high
            self.overflow_low, self.overflow_high = math.inf, -math.inf
            now = trio.current_time()
            triggers = self.stops.check_range(low, high, now)
            if triggers:
                self._fire(triggers, Trade(self.symbol, -1, low, 0.0, 0, False, 0, 0))

    def quarantine(self) -> int:
        """Stop handling events for good: those queued now and those the router delivers
        later are counted in ``dropped``. Returns how many queued events that was.

        For an actor that will not run again (its supervisor gave up on it): stops are no
        longer checked, candles no longer updated. A stop that already fired still gets
        its close hook called (once: a failed close is not retried, the position stays
        CLOSING), and close results are still recorded (`post_result`), so positions
        read true.
        """
        self.live = False
        self.quarantined = True
        self._abandon_holds()
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            return 0
        mailbox.close()  # from now on _queue counts every event as dropped
        items = mailbox.drain_nowait(len(mailbox)) if len(mailbox) else []
        mailbox.mark_handled()
        dropped = 0
        for item in items:
            kind = type(item)
            if kind is CloseResult:
                self.on_close_result(item)
            elif kind is BackfillResult:
                self._quarantined_result(item)
            elif item is not _WAKE and kind is not FallbackPrice:
                dropped += 1
        self.dropped += dropped
        self.request_due_closes()  # the crash may have come between a trigger and its close
        return dropped

    def _abandon_holds(self) -> None:
        """Quarantine: what is held is published in order, each pending gap ends
        unfilled, and its REST result, when it comes, is ignored."""
        for stream, hold in list(self._holds.items()):
            for first, last in list(hold.gaps):
                self._abandoned.add((stream, first, last))
                self._unfilled(stream, first, last, "the symbol was quarantined")
            if self._holds.get(stream) is hold:
                self._release(stream, hold)

    def _quarantined_result(self, result: BackfillResult) -> None:
        """A REST result for a quarantined symbol: its gap ends unfilled (once)."""
        req = result.request
        if req.kind == "depth" or req.prices_only:  # a prices-only gap ended already
            return
        gap = (_stream_of(req), req.first, req.last)
        if gap in self._abandoned:
            if result.final:
                self._abandoned.discard(gap)
            return
        if not result.final:
            self._abandoned.add(gap)
        self._unfilled(gap[0], req.first, req.last, "the symbol was quarantined")

    def post_result(self, item: BackfillResult | CloseResult) -> None:
        """Hook runner or backfill to this symbol: queue ``item`` for the actor. Once
        quarantined, close results are recorded at once and gaps end unfilled."""
        if self.quarantined:
            if type(item) is CloseResult:
                self.on_close_result(item)
            elif type(item) is BackfillResult:
                self._quarantined_result(item)
            return
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            return  # the symbol is gone
        if not mailbox.put_nowait(item) and type(item) is BackfillResult:
            self._result_lost(item)

    def _result_lost(self, result: BackfillResult) -> None:
        """A full mailbox refused a REST result: its rows still reach the stop-loss book,
        and its gap ends now (or its snapshot is asked for again later)."""
        req = result.request
        if req.kind == "depth":
            self._snapshot_pending = False
            self._snapshot_failed("the symbol's mailbox was full")
            return
        self._check_rows(result.events)
        self._check_stop_prices(result)
        if req.prices_only:  # its gap ended already
            return
        gap = (_stream_of(req), req.first, req.last)
        if gap in self._abandoned:  # its gap already ended
            if result.final:
                self._abandoned.discard(gap)
            return
        if not result.final:
            self._abandoned.add(gap)
        self._unfilled(gap[0], req.first, req.last,
                       "the symbol's mailbox was full: the fetched rows were dropped")  # fmt: skip

    # Warm-up and the REST price fallback (slow path) ---------------------------------

    def warm_up(self, interval: str, klines: list[Kline]) -> int:
        """Seed ``interval``'s buffer with closed REST candles (no events published: they
        are history from before the gateway opened); returns how many were kept."""
        return len(self.candles.buffer(interval).backfill(klines))

    def live_trades(self) -> int:
        """Trades the hot path handled so far (backfilled rows are not counted there)."""
        counts = self.counts
        return counts.get("Trade", 0) + counts.get("AggTrade", 0)

    def post_fallback_price(self, price: float, live_trades: int = -1) -> bool:
        """REST fallback to this symbol: queue ``price`` (polled when ``live_trades`` had
        been handled) for the actor's stop checks; False if the symbol is gone,
        quarantined or its mailbox is full."""
        mailbox = self.mailbox
        if self.quarantined or mailbox is None or mailbox.closed:
            return False
        return mailbox.put_nowait(FallbackPrice(price, live_trades))

    def on_fallback_price(self, item: FallbackPrice) -> None:
        """Check the armed stops against a REST price (fired positions never fire again),
        unless a live trade came since it was polled: the stream speaks again."""
        if item.live_trades >= 0 and item.live_trades != self.live_trades():
            self.stale_fallbacks += 1
            return
        price = item.price
        if self.stops.crosses(price):
            triggers = self.stops.check_range(price, price, trio.current_time())
            self._fire(triggers, Trade(self.symbol, -1, price, 0.0, 0, False, 0, 0))

    def open_position(self, position: Position) -> None:
        """Arm a stop-loss for ``position``; it is checked against the very next trade."""
        self.stops.open(position)

    def snapshot(self) -> SymbolStats:
        """Counters and latency percentiles, for stats and summaries (the supervisor's
        and the price fallback's fields are the gateway's to fill in)."""
        return SymbolStats(
            symbol=self.symbol, last_price=self.last_price, events=dict(self.counts),
            handled=self.handled,
            dropped=self.dropped,  # counted in _queue (refused, no mailbox) and quarantine
            crashes=self.crashes, quarantined=self.quarantined, gaps=self.gaps,
            duplicates=self.duplicates, backfilled=self.backfilled,
            held=sum(len(h.items) for h in self._holds.values()),
            hold_overflows=self.hold_overflows, stale_fallbacks=self.stale_fallbacks,
            snapshot_failures=self.snapshot_failures,
            order_book=self.book.state.value if self.book is not None else None,
            restarts=self.restarts,
            candles_closed={i: len(self.candles.buffer(i)) for i in self.candles.intervals},
            stops_fired=self.stops.fired,
            latency_us=LatencyStats(
                exchange_to_receive=_pcts(self.exchange_latency),
                receive_to_handled=_pcts(self.handle_latency),
                receive_to_stop_decision=_pcts(self.stop_latency),
            ),
        )  # fmt: skip


def _pcts(rec: LatencyRecorder) -> Percentiles | None:
    if not rec.count:
        return None
    p = rec.percentiles((50, 90, 99, 99.9))
    return Percentiles(p50=p[50] / 1000, p90=p[90] / 1000, p99=p[99] / 1000,
                       p99_9=p[99.9] / 1000, max=rec.max / 1000, count=rec.count)  # fmt: skip


async def symbol_actor(mailbox: Mailbox[Any], state: SymbolState, ctx: ActorContext) -> None:
    """Run one symbol: catch up on what queued while down, then go live.

    Raises `SymbolHandlerError` when the router reports that the hot-path handler
    crashed, so that the supervisor restarts this actor with its state intact.
    """
    state.restarts = ctx.restarts
    state.mailbox = mailbox
    state.stops.recover(trio.current_time())
    state.catch_up_overflow()
    state.request_due_closes()
    while True:  # events queued during the restart, through the same handler
        try:
            item = mailbox.receive_nowait()
        except trio.WouldBlock:
            break
        _handle_item(state, item)
    state.live = True
    ctx.started()
    try:
        while True:
            retry_at = state.stops.next_due()
            hold_at = state.hold_deadline()
            at = min(math.inf if retry_at is None else retry_at,
                     math.inf if hold_at is None else hold_at)  # fmt: skip
            item = None
            with trio.move_on_at(at):
                item = await mailbox.receive()
            if item is None:
                state.request_due_closes()
                state.release_overdue()
                continue
            _handle_item(state, item)
    finally:
        state.live = False


def _handle_item(state: SymbolState, item: Any) -> None:
    if item is _WAKE:
        return  # the loop takes the new hold deadline into account
    kind = type(item)
    if kind is Crash:
        raise SymbolHandlerError(
            f"{state.symbol}: handler raised {item.error!r} on {type(item.event).__name__}"
        ) from item.error
    if kind is CloseResult:
        state.on_close_result(item)
    elif kind is BackfillResult:
        try:
            state.on_backfill(item)
        except Exception:
            state.backfill_crashed(item)  # its gap still ends, once; then the actor restarts
            raise
    elif kind is FallbackPrice:
        state.on_fallback_price(item)
    else:
        state.handle(item)

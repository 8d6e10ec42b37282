"""The symbol actor: one per symbol, driving its sans-I/O machine.

`SymbolRuntime` is what the supervisor keeps of a symbol across restarts of its actor:
its `SymbolMachine` (candles, stop-loss book, holds, order book: every decision), its
mailbox, the clocks and the latency recorders. It feeds the machine each input with the
current times and carries out what the machine answers: events to the `Publisher`,
`CloseRequest` s to the hook runner, `BackfillRequest` s to the backfiller.

The hot path is `deliver`, called synchronously by the router while the actor is live
(a task switch per event would cost more than the whole handling; see
docs/architecture.md). If the machine raises there, the event becomes a dead letter: the
crash is queued for the actor task, which raises it so that the supervisor restarts the
actor with the same runtime and mailbox. While the actor is down, events queue in its
bounded mailbox; dropped trades still reach the stop-loss book through their lowest and
highest price. An actor that keeps crashing past its restart intensity is quarantined
(`SymbolRuntime.quarantine`) or ends the gateway (`SymbolFailed`), per the
``on_symbol_failure`` setting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from time import time_ns
from typing import Any

import attrs
import trio

from actors import ActorContext, Mailbox
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, FallbackPrice
from gateway.core.events import AggTrade, Trade
from gateway.core.holds import HoldBudget
from gateway.core.hook_protocol import CloseRequest, CloseResult
from gateway.core.latency import HotPathLatency, LatencyRecorder
from gateway.core.symbol_machine import WAKE, SymbolMachine
from gateway.errors import GatewayError
from gateway.runtime.publish import Publisher
from gateway.stats import LatencyStats, Percentiles, SymbolStats

__all__ = ["Crash", "SymbolFailed", "SymbolHandlerError", "SymbolRuntime", "symbol_actor"]

log = logging.getLogger(__name__)

_TRADES = (Trade, AggTrade)


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
    """Hot path to actor task: the machine raised on ``event``."""

    event: Any
    error: Exception


class SymbolRuntime:
    """One symbol's machine and everything around it that touches the world."""

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
        self.machine = SymbolMachine(
            symbol, candle_buffer=candle_buffer, event_time_unit_ns=event_time_unit_ns,
            can_backfill=request_backfill is not None, close_hook=request_close is not None,
            hold_max_events=hold_max_events, hold_max_seconds=hold_max_seconds,
            hold_overflow=hold_overflow, hold_budget=hold_budget,
        )  # fmt: skip
        self._request_close = request_close
        self._request_backfill = request_backfill
        self.mailbox: Mailbox[Any] | None = None
        self.live = False
        #: Stopped for good (past its restart intensity): everything for it is dropped.
        self.quarantined = False
        self.dropped = 0
        self.crashes = 0
        self.restarts = 0
        #: exchange event time -> receive, receive -> handled, receive -> stop decision
        self.latency = HotPathLatency()
        self._unit_ns = event_time_unit_ns
        #: The monotonic clock the machine's times come from (trio's; the actor looks its
        #: clock object up once when it starts, rather than per event).
        self.clock: Callable[[], float] = trio.current_time

    # The hot path -------------------------------------------------------------

    def deliver(self, event: Any) -> None:
        """Router entry point: handle now if the actor is live, else queue; never raises."""
        if self.live:
            try:
                kind = type(event)
                if (kind is Trade or kind is AggTrade) and self.machine.take_trade(event, kind):
                    # The usual live trade (`SymbolMachine.take_trade`): `handle`, shortened.
                    decided = time_ns()
                    # Handled when published, or when decided if nobody takes trades.
                    handled = time_ns() if self.publisher.publish(event) else decided
                    if rns := event.receive_ns:
                        et = event.event_time
                        self.latency.record(rns, handled, decided,
                                            et * self._unit_ns if et else 0)  # fmt: skip
                    return
                self.handle(event)
            except Exception as exc:  # noqa: BLE001 - isolate this symbol; actor restarts
                self.live = False
                self.crashes += 1
                self._queue(Crash(event, exc))
                self.machine.dead_letter(event, repr(exc))
                self._carry_out()
            return
        self._queue(event)

    def handle(self, event: Any) -> None:
        """Feed one market event to the machine, carry out its answer, record latency.

        The hot path, inline. A trade's stop-loss decision is timed when the machine
        returns; an event the machine drops (a duplicate, a stale kline) is not timed."""
        machine = self.machine
        now_ns = time_ns()
        try:
            applied = machine.on_event(event, self.clock(), now_ns)
            kind = type(event)
            decided = time_ns() if applied and (kind is Trade or kind is AggTrade) else 0
            out = machine.out
            if machine.requests:
                self._carry_out()
            elif out:
                publish = self.publisher.publish
                if len(out) == 1:
                    publish(out.pop())
                else:
                    items = out[:]
                    out.clear()
                    for item in items:
                        publish(item)
        except Exception:
            self._carry_out()  # what it decided before raising still happens
            raise
        rns = event.receive_ns
        if rns and applied:
            et = event.event_time  # None for bookTicker and partial depth
            self.latency.record(rns, time_ns(), decided, et * self._unit_ns if et else 0)

    def _carry_out(self) -> None:
        """Pass on what the machine asked for, then publish what it decided, in order.

        Requests first: a backfill the backfiller refuses ends its gap at once, and the
        machine puts that ending right after the gap's detection, before anything the
        same input decided after it."""
        machine = self.machine
        out, requests, publish = machine.out, machine.requests, self.publisher.publish
        while requests or out:
            asked = requests[:]
            requests.clear()
            for request in asked:
                if request is WAKE:
                    self._wake()
                elif type(request) is CloseRequest:
                    if self._request_close is not None:
                        self._request_close(request)
                elif type(request) is BackfillRequest and not (
                    self._request_backfill is not None and self._request_backfill(request)
                ):
                    machine.backfill_refused(request, self.clock())
            items = out[:]
            out.clear()
            for item in items:
                publish(item)

    def _wake(self) -> None:
        """The machine's deadline moved earlier: end the actor's wait so it sees it."""
        mailbox = self.mailbox
        if mailbox is not None and not mailbox.closed:
            mailbox.put_nowait(WAKE)

    def _queue(self, item: Any) -> None:
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            self.dropped += 1
            return
        if not mailbox.put_nowait(item):
            self.dropped += 1
            if type(item) in _TRADES:
                self.machine.unchecked(item.price)

    # The slow path (the actor task, and results posted to it) -----------------------

    def feed(self, item: Any) -> None:
        """Handle one mailbox item in the actor task; a `Crash` is raised here."""
        if item is WAKE:
            return  # the loop takes the new deadline into account
        kind = type(item)
        machine = self.machine
        if kind is Crash:
            raise SymbolHandlerError(
                f"{self.symbol}: handler raised {item.error!r} on {type(item.event).__name__}"
            ) from item.error
        if kind is CloseResult:
            machine.on_close_result(item, self.clock())
        elif kind is BackfillResult:
            self.on_backfill(item)
            return
        elif kind is FallbackPrice:
            machine.on_fallback_price(item, self.clock(), time_ns())
        else:
            self.handle(item)
            return
        self._carry_out()

    def on_backfill(self, result: BackfillResult) -> None:
        """Apply REST rows through the machine; if that raises, the gap still ends once
        (`SymbolMachine.backfill_crashed`) and the error goes on to restart the actor."""
        machine = self.machine
        try:
            machine.on_backfill(result, self.clock(), time_ns())
        except Exception:
            machine.backfill_crashed(result)
            self._carry_out()
            raise
        self._carry_out()

    def on_timer(self) -> None:
        """The machine's deadline passed: due close retries, overdue holds."""
        self.machine.on_timer(self.clock())
        self._carry_out()

    def post_result(self, item: BackfillResult | CloseResult) -> None:
        """Hook runner or backfill to this symbol: queue ``item`` for the actor. Once
        quarantined, close results are recorded at once and gaps end unfilled."""
        machine = self.machine
        if self.quarantined:
            if type(item) is CloseResult:
                machine.on_close_result(item, self.clock())
            elif type(item) is BackfillResult:
                machine.on_quarantined_result(item)
            self._carry_out()
            return
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            return  # the symbol is gone
        if not mailbox.put_nowait(item) and type(item) is BackfillResult:
            machine.result_lost(item, self.clock(), time_ns())
            self._carry_out()

    def post_fallback_price(self, price: float, live_trades: int = -1) -> bool:
        """REST fallback to this symbol: queue ``price`` (polled when ``live_trades`` had
        been handled) for the actor's stop checks; False if the symbol is gone,
        quarantined or its mailbox is full."""
        mailbox = self.mailbox
        if self.quarantined or mailbox is None or mailbox.closed:
            return False
        return mailbox.put_nowait(FallbackPrice(price, live_trades))

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
        machine = self.machine
        machine.quarantine()
        self._carry_out()
        mailbox = self.mailbox
        if mailbox is None or mailbox.closed:
            return 0
        mailbox.close()  # from now on _queue counts every event as dropped
        items = mailbox.drain_nowait(len(mailbox)) if len(mailbox) else []
        mailbox.mark_handled()
        dropped = 0
        now = self.clock()
        for item in items:
            kind = type(item)
            if kind is CloseResult:
                machine.on_close_result(item, now)
            elif kind is BackfillResult:
                machine.on_quarantined_result(item)
            elif item is not WAKE and kind is not FallbackPrice:
                dropped += 1
        self.dropped += dropped
        machine.request_due_closes(now)  # a crash may have come between a trigger and its close
        self._carry_out()
        return dropped

    def snapshot(self) -> SymbolStats:
        """Counters and latency percentiles, for stats and summaries (the supervisor's
        and the price fallback's fields are the gateway's to fill in)."""
        m = self.machine
        return SymbolStats(
            symbol=self.symbol, last_price=m.last_price, events=dict(m.counts),
            handled=m.handled,
            dropped=self.dropped,  # counted in _queue (refused, no mailbox) and quarantine
            crashes=self.crashes, quarantined=self.quarantined, gaps=m.gaps,
            duplicates=m.duplicates, backfilled=m.backfilled, held=m.holds.held(),
            hold_overflows=m.holds.overflows, stale_fallbacks=m.stale_fallbacks,
            snapshot_failures=m.snapshot_failures,
            order_book=m.book.state.value if m.book is not None else None,
            restarts=self.restarts,
            candles_closed={i: len(m.candles.buffer(i)) for i in m.candles.intervals},
            stops_fired=m.stops.fired,
            latency_us=LatencyStats(
                exchange_to_receive=_pcts(self.latency.exchange),
                receive_to_handled=_pcts(self.latency.handled),
                receive_to_stop_decision=_pcts(self.latency.stop),
            ),
        )  # fmt: skip


def _pcts(rec: LatencyRecorder) -> Percentiles | None:
    if not rec.count:
        return None
    p = rec.percentiles((50, 90, 99, 99.9))
    return Percentiles(p50=p[50] / 1000, p90=p[90] / 1000, p99=p[99] / 1000,
                       p99_9=p[99.9] / 1000, max=rec.max / 1000, count=rec.count)  # fmt: skip


async def symbol_actor(mailbox: Mailbox[Any], state: SymbolRuntime, ctx: ActorContext) -> None:
    """Run one symbol: catch up on what queued while down, then go live.

    Raises `SymbolHandlerError` when the hot path reports that the machine crashed, so
    that the supervisor restarts this actor with its runtime intact.
    """
    state.restarts = ctx.restarts
    state.mailbox = mailbox
    state.clock = trio.lowlevel.current_clock().current_time  # one lookup, not per event
    machine = state.machine
    machine.recover(state.clock(), time_ns())
    state._carry_out()
    while True:  # events queued during the restart, through the same handler
        try:
            item = mailbox.receive_nowait()
        except trio.WouldBlock:
            break
        state.feed(item)
    state.live = True
    ctx.started()
    try:
        while True:
            at = machine.deadline()
            item = None
            with trio.move_on_at(math.inf if at is None else at):
                item = await mailbox.receive()
            if item is None:
                state.on_timer()
                continue
            state.feed(item)
    finally:
        state.live = False

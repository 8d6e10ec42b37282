"""How a symbol machine applies REST answers: backfilled rows, in order, ending each gap once.

`RestAnswers` is the part of `gateway.core.symbol_machine.SymbolMachine` that takes a
`BackfillResult` for a trade, aggTrade or kline gap: rows go out behind the stream's
hold (or at once when nothing newer waits), fire the stops their prices cross, and the
gap ends in `GapFilled` or `GapUnfilled`. A result that comes too late (its gap ended),
is lost (a full mailbox) or crashes its machine still ends its gap exactly once. A depth
snapshot syncs the order book, or is asked for again after a growing wait.
Pure, like the machine: outputs go to ``out`` and ``requests``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gateway.core.backfill_protocol import BackfillResult, DepthSnapshot, stream_of
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import AggTrade, CandleClosed, GapFilled, Kline, Trade
from gateway.core.holds import Gap, Holds, key_of
from gateway.core.orderbook import OrderBookSync, SyncState

if TYPE_CHECKING:
    from gateway.core.candles import CandleBook
    from gateway.core.stop_loss import StopLossBook, StopTrigger

__all__ = ["SNAPSHOT_RETRY", "RestAnswers"]

log = logging.getLogger("gateway.core.symbol_machine")  # one logger for the machine

#: Wait between depth snapshot requests that failed for good (the backfiller already
#: retried each with jittered backoff): 1 s, 2 s, 4 s ... at most a minute, never giving up.
SNAPSHOT_RETRY = ReconnectPolicy(initial=1.0, factor=2.0, cap=60.0, max_attempts=None)

_TRADES = (Trade, AggTrade)


class RestAnswers:
    """Applying `BackfillResult` s (mixed into `SymbolMachine`, whose state it uses)."""

    symbol: str
    out: list[Any]
    holds: Holds
    stops: StopLossBook
    candles: CandleBook
    backfilled: int
    book: OrderBookSync | None
    snapshot_pending: bool
    snapshot_failures: int
    snapshot_retry_at: float

    #: The machine's own (publishes `StopTriggered` and asks for the closes): declared
    #: here for the type checker only, never a do-nothing default.
    _fire: Callable[[list[StopTrigger], int, float, int], None]

    def on_backfill(self, result: BackfillResult, now: float, now_ns: int) -> None:
        """Apply what REST returned: publish the rows in order, let them fire crossed
        stops, end the gap; a depth snapshot syncs the order book."""
        if result.request.kind == "depth":
            self._on_snapshot(result, now)
        else:
            self._on_rows(result, now, now_ns)

    def _on_snapshot(self, result: BackfillResult, now: float) -> None:
        self.snapshot_pending = False
        snap = result.events[0] if result.events else None
        if not isinstance(snap, DepthSnapshot) or self.book is None:
            self._snapshot_failed(result.error or "no snapshot", now)
            return
        state = self.book.on_snapshot(snap.last_update_id, snap.bids, snap.asks)
        if state is SyncState.NEEDS_SNAPSHOT:  # older than the buffered diffs
            self._snapshot_failed(f"snapshot {snap.last_update_id} older than the diffs", now)
            return
        self.snapshot_failures = 0
        if state is SyncState.SYNCED:
            log.info("%s: order book synced at %d", self.symbol, snap.last_update_id)

    def _snapshot_failed(self, why: str, now: float) -> None:
        """No usable snapshot: ask again only after `SNAPSHOT_RETRY`'s growing wait."""
        self.snapshot_failures += 1
        wait = SNAPSHOT_RETRY.ceiling(self.snapshot_failures - 1)
        self.snapshot_retry_at = now + wait
        log.warning("%s: depth snapshot failed (%s); next try in %.0fs at the earliest",
                    self.symbol, why, wait)  # fmt: skip

    def _on_rows(self, result: BackfillResult, now: float, now_ns: int) -> None:
        req = result.request
        rows = result.events
        if req.prices_only:  # its gap ended long ago: the prices are for the stops only
            self._check_rows(rows, now, now_ns)
            self._check_stop_prices(result, now, now_ns)
            return
        holds = self.holds
        stream = stream_of(req)
        gap = (stream, req.first, req.last)
        self.backfilled += len(rows)
        holds.ending = gap  # until its ending is out (crash-safe)
        trades = req.kind == "aggTrade" or req.kind == "trade"
        # A gap its hold still waits for: rows go behind it (or out now when it is the
        # oldest gap held); else (released "late") now, not behind a newer hold of the
        # stream that would keep them after their ending.
        pending = trades and bool(rows) and holds.rows_wait(stream, req, rows)
        if gap in holds.abandoned:  # its gap already ended
            holds.ending = None
            if result.final:
                holds.abandoned.discard(gap)
            self._check_rows(rows, now, now_ns)
            self._check_stop_prices(result, now, now_ns)
            if req.interval is not None:
                self.candles.buffer(req.interval).backfill(
                    k for k in rows if isinstance(k, Kline))  # fmt: skip
            return
        if not trades:
            pending = holds.waits_for(gap)
        out = self.out
        if trades and rows:
            self._check_rows(rows, now, now_ns)
            if pending:
                for ev in rows:
                    holds.emit(stream, ev, live=False)
            else:
                out.extend(rows)
        elif req.interval is not None and rows:
            buf = self.candles.buffer(req.interval)
            for candle in buf.backfill(k for k in rows if isinstance(k, Kline)):
                closed = CandleClosed(self.symbol, candle, 0)
                if pending:
                    holds.emit(stream, closed, live=False)
                    holds.emit(stream, candle, live=False)
                else:
                    out.append(closed)
                    out.append(candle)
        if not result.final:  # a page of a long gap: the rest follows
            part = holds.parts.setdefault(gap, [0, req.first])
            if rows:
                part[0] += len(rows)
                part[1] = key_of(rows[-1]) + 1
            holds.ending = None
            return
        reason = result.error or "not served"
        if self._check_stop_prices(result, now, now_ns):
            reason += f"; stops checked against {result.stop_rows} aggregate trades"
        # The gap ends here, after its rows: filled, or the exact part not served.
        if result.missing_from is None and result.error is None:
            done = holds.parts.get(gap)
            count = len(rows) + (done[0] if done is not None else 0)
            holds.gap_ended(stream, req.first, req.last,
                            GapFilled(self.symbol, stream, req.first, req.last, count))  # fmt: skip
        else:
            holds.unfilled(stream, req.first, req.last, reason, result.missing_from)

    def backfill_crashed(self, result: BackfillResult) -> None:
        """Applying ``result`` raised: end its gap unfilled unless its ending is out, and
        ignore the rest of it (the caller restarts the machine's actor)."""
        req = result.request
        if req.kind == "depth":
            self.snapshot_pending = False
            return
        stream = stream_of(req)
        key = (stream, req.first, req.last)
        if self.holds.ending != key:
            return  # its ending was published before the crash
        if not result.final:
            self.holds.abandoned.add(key)  # its later parts only reach the stop-loss book
        self.holds.unfilled(stream, req.first, req.last,
                            "the symbol's actor raised while applying the REST answer")  # fmt: skip

    def _check_rows(self, rows: Sequence[Any], now: float, now_ns: int) -> None:
        """Let backfilled trades fire the stops their price range crosses (once each)."""
        prices = [ev.price for ev in rows if type(ev) in _TRADES]
        if prices:
            self._fire(self.stops.check_range(min(prices), max(prices), now),
                       rows[0].receive_ns, now, now_ns)  # fmt: skip

    def _check_stop_prices(self, result: BackfillResult, now: float, now_ns: int) -> bool:
        """Let the aggregate trades that priced an unserved plain-trade range fire the
        stops they cross; True if there were any."""
        if result.stop_prices is None:
            return False
        low, high = result.stop_prices
        self._fire(self.stops.check_range(low, high, now), 0, now, now_ns)
        return True

    def _ended_already(self, gap: Gap, result: BackfillResult) -> bool:
        """Whether ``gap`` ended before ``result`` came; remember it ended while parts
        may still come."""
        holds = self.holds
        if gap in holds.abandoned:
            if result.final:
                holds.abandoned.discard(gap)
            return True
        if not result.final:
            holds.abandoned.add(gap)
        return False

    def on_quarantined_result(self, result: BackfillResult) -> None:
        """A REST result for a quarantined symbol: its gap ends unfilled (once)."""
        req = result.request
        if req.kind == "depth" or req.prices_only:  # a prices-only gap ended already
            return
        gap = (stream_of(req), req.first, req.last)
        if not self._ended_already(gap, result):
            self.holds.unfilled(gap[0], req.first, req.last, "the symbol was quarantined")

    def result_lost(self, result: BackfillResult, now: float, now_ns: int) -> None:
        """A REST result could not reach the machine in order (a full mailbox): its rows
        still reach the stop-loss book, and its gap ends now (or its snapshot is asked for
        again later)."""
        req = result.request
        if req.kind == "depth":
            self.snapshot_pending = False
            self._snapshot_failed("the symbol's mailbox was full", now)
            return
        self._check_rows(result.events, now, now_ns)
        self._check_stop_prices(result, now, now_ns)
        if req.prices_only:  # its gap ended already
            return
        gap = (stream_of(req), req.first, req.last)
        if not self._ended_already(gap, result):
            self.holds.unfilled(gap[0], req.first, req.last,
                                "the symbol's mailbox was full: the fetched rows were dropped")

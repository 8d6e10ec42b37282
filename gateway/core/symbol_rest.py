"""How a symbol machine applies REST answers: backfilled rows, in order, ending each gap once.

`RestAnswers` is the part of `gateway.core.symbol_machine.SymbolMachine` that takes a
`BackfillResult` for a trade, aggTrade or kline gap: rows go out behind the stream's
hold (or at once when nothing newer waits), fire the stops their prices cross, and the
gap ends in `GapFilled` or `GapUnfilled`. A result that comes too late (its gap ended),
is lost (a full mailbox) or crashes its machine still ends its gap exactly once.
Pure, like the machine: outputs go to ``out`` and ``requests``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.core.backfill_protocol import BackfillResult, stream_of
from gateway.core.events import AggTrade, CandleClosed, GapFilled, Kline, Trade
from gateway.core.holds import Gap, Holds, key_of

if TYPE_CHECKING:
    from gateway.core.candles import CandleBook
    from gateway.core.stop_loss import StopLossBook, StopTrigger

__all__ = ["RestAnswers"]

_TRADES = (Trade, AggTrade)


class RestAnswers:
    """Applying `BackfillResult` s (mixed into `SymbolMachine`, whose state it uses)."""

    symbol: str
    out: list[Any]
    holds: Holds
    stops: StopLossBook
    candles: CandleBook
    backfilled: int
    snapshot_pending: bool

    def _fire(self, triggers: list[StopTrigger], receive_ns: int, now: float,
              now_ns: int) -> None: ...  # fmt: skip

    def _snapshot_failed(self, why: str, now: float) -> None: ...

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

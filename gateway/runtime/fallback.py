"""Stops protected during outages: poll the REST price of symbols whose live trades stopped.

While a symbol has armed stops and no live trade was handled for ``fallback_after``
seconds (the stream is down, reconnecting, or a zombie), this actor polls
``GET /api/v3/ticker/price`` every ``fallback_interval`` seconds through the gateway's
`Backfiller` (same client, retries and weight budget) and posts each price to the
symbol's mailbox, where the actor runs the usual stop checks on it. The stop-loss book
fires a position once, so a stop fired here never fires again on the live stream or its
backfill. Liveness is read from the symbol's trade counters at each check, so the hot
path pays nothing; the start and end of a fallback are logged once each.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import trio

from gateway.runtime.backfill import Backfiller, RestUnavailable
from gateway.runtime.symbol import SymbolRuntime

log = logging.getLogger(__name__)


class _Watch:
    """What the fallback knows of one symbol: its last trade count and when it changed."""

    __slots__ = ("active", "failed", "in_flight", "last_seen", "polls", "trades")

    def __init__(self, trades: int, now: float) -> None:
        self.trades = trades
        self.last_seen = now
        self.active = False
        self.in_flight = False
        self.failed = False  # a poll of this fallback failed: reported once per fallback
        self.polls = 0


class PriceFallback:
    """The REST price fallback for every symbol of one gateway; `run` is the actor."""

    def __init__(
        self,
        states: Mapping[str, SymbolRuntime],
        rest: Backfiller,
        *,
        after: float,
        interval: float,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self._states = states
        self._rest = rest
        self.after = after
        self.interval = interval
        self._on_error = on_error
        self._watch: dict[str, _Watch] = {}

    def snapshot(self, symbol: str) -> tuple[int, bool]:
        """Per-symbol stats: REST price polls so far, and whether the fallback is on now."""
        w = self._watch.get(symbol)
        return (w.polls if w else 0), bool(w and w.active)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check every symbol each ``interval`` seconds until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self.check(nursery)
                await trio.sleep(self.interval)

    def check(self, nursery: trio.Nursery) -> None:
        """One round: note live trades, start or end fallbacks, start due polls."""
        now = trio.current_time()
        for symbol in [s for s in self._watch if s not in self._states]:
            del self._watch[symbol]  # removed symbols
        for symbol, state in self._states.items():
            trades = state.machine.live_trades()
            w = self._watch.get(symbol)
            if w is None:
                w = self._watch[symbol] = _Watch(trades, now)
            if not state.machine.stops.armed_count or state.quarantined:
                # Unarmed: no polls; its quiet time counts from when a stop is armed.
                if w.active:
                    self._end(symbol, w, "no armed stops")
                w.trades, w.last_seen = trades, now
                continue
            if trades != w.trades:
                w.trades, w.last_seen = trades, now
                if w.active:
                    self._end(symbol, w, "a live trade arrived")
                continue
            if now - w.last_seen < self.after:
                continue
            if not w.active:
                w.active = True
                log.warning("%s: no live trade for %.1fs with %d armed stops: checking them "
                            "against the REST price every %.1fs", symbol, now - w.last_seen,
                            state.machine.stops.armed_count, self.interval)  # fmt: skip
            if not w.in_flight:
                w.in_flight = True
                nursery.start_soon(self._poll, symbol, state, w)

    def _end(self, symbol: str, w: _Watch, why: str) -> None:
        w.active = w.failed = False
        log.warning("%s: REST price fallback ended (%s) after %d polls", symbol, why, w.polls)

    async def _poll(self, symbol: str, state: SymbolRuntime, w: _Watch) -> None:
        """One REST price, posted to the symbol's actor (its mailbox, never run here)."""
        asked = state.machine.live_trades()
        try:
            price = await self._rest.ticker_price(symbol)
        except RestUnavailable as exc:
            log.warning("%s: REST price fallback poll failed: %s", symbol, exc)
            if self._on_error is not None and not w.failed:
                self._on_error(symbol, exc)  # once per fallback, not once per poll
            w.failed = True
            return
        finally:
            w.in_flight = False
        w.polls += 1
        if w.active and math.isfinite(price):
            state.post_fallback_price(price, asked)

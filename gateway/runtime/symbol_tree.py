"""The gateway's symbol actors: one supervisor per symbol under ``symbols``, so a symbol
that keeps crashing fails alone; starting, warming up, quarantining, killing, stopping.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable

import attrs
import trio

from actors import (
    ChildReport,
    ChildSpec,
    ChildStatus,
    Overflow,
    Restart,
    Subtree,
    Supervisor,
    supervisor_spec,
)
from gateway.config import GatewayConfig
from gateway.core.events import SymbolQuarantined
from gateway.core.holds import HoldBudget
from gateway.core.streams import StreamKind, parse_stream
from gateway.errors import GatewayError
from gateway.runtime.backfill import Backfiller, RestUnavailable
from gateway.runtime.hooks import HookRunner
from gateway.runtime.listing import check_symbols
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router
from gateway.runtime.symbol import SymbolFailed, SymbolRuntime, symbol_actor

__all__ = ["SymbolTree"]

#: The logger these records always came from (moved out of `gateway.api`).
log = logging.getLogger("gateway.api")


class SymbolTree:
    """The ``symbols`` supervisor (``supervisor``: run it in the gateway's nursery) and
    each running symbol's `SymbolRuntime` in ``states`` (shared with the gateway)."""

    def __init__(
        self, config: GatewayConfig, states: dict[str, SymbolRuntime], *,
        publisher: Publisher, router: Router, hooks: HookRunner,
        backfiller: Backfiller | None, hold_budget: HoldBudget,
        seeded: Callable[[str], random.Random | None],
        end: Callable[[GatewayError], None],
    ) -> None:  # fmt: skip
        self.config = config
        self.states = states
        self.supervisor = Supervisor(
            "symbols", max_restarts=config.max_restarts, period=config.restart_period,
            rng=seeded("symbols"),
        )  # fmt: skip
        self._publisher = publisher
        self._router = router
        self._hooks = hooks
        self._backfiller = backfiller
        self._hold_budget = hold_budget
        self._seeded = seeded
        #: Ends `open_gateway` with an error (``on_symbol_failure = "raise"``).
        self._end = end
        self._unit_ns = 1000 if config.time_unit.upper() == "MICROSECOND" else 1_000_000

    async def check_listed(self, symbols: list[str], key: str) -> None:
        """`check_symbols` against this gateway's REST endpoint, bounded by ``rest_timeout``
        (nothing with ``check_symbols = False``); raises `ConfigError` for one not listed."""
        if not self.config.check_symbols:
            return
        budget = self._backfiller.budget if self._backfiller is not None else None
        await check_symbols(
            self.config.rest_url, symbols, limit=self.config.rest_timeout, key=key,
            observe_weight=budget.observe if budget is not None else None,
            ca_file=self.config.ca_file,
        )  # fmt: skip

    async def start(self, symbol: str) -> None:
        """Start ``symbol``'s actor under its own supervisor and route its streams to it
        (nothing if it runs already)."""
        if symbol in self.states:
            return
        state = SymbolRuntime(
            symbol, self._publisher, candle_buffer=self.config.candle_buffer,
            event_time_unit_ns=self._unit_ns, request_close=self._hooks.request,
            request_backfill=self._backfiller.request if self._backfiller else None,
            hold_max_events=self.config.hold_max_events,
            hold_max_seconds=self.config.hold_max_seconds,
            hold_overflow=self.config.hold_overflow, hold_budget=self._hold_budget,
        )  # fmt: skip
        self.states[symbol] = state
        actor = ChildSpec(
            name=f"symbol:{symbol}", actor=symbol_actor, state_factory=lambda: state,
            mailbox_bound=self.config.mailbox_size, overflow=Overflow.DROP_NEWEST,
            restart=Restart.PERMANENT,
        )  # fmt: skip
        # One supervisor per symbol, temporary under "symbols": a symbol that exceeds its
        # restart intensity fails alone, and `failed` applies on_symbol_failure.
        subtree = supervisor_spec(
            f"symbol:{symbol}", [actor], max_restarts=self.config.max_restarts,
            period=self.config.restart_period, restart=Restart.TEMPORARY,
            on_failed=lambda _report, error: self.failed(symbol, error),
            rng=self._seeded(f"symbol:{symbol}"),
        )  # fmt: skip
        await self.supervisor.start_child(subtree)
        self._router.attach(state)

    async def stop(self, symbol: str) -> None:
        """Stop routing to ``symbol`` and stop its actor (its positions go with it)."""
        self._router.detach(symbol)
        await self.supervisor.stop_child(f"symbol:{symbol}")
        self.states.pop(symbol, None)

    async def warm_up(self, names: Iterable[str]) -> None:
        """Fill the kline buffers of the streams ``names`` with the last ``warmup_candles``
        closed REST candles, concurrently; a failure goes to the error callbacks."""
        count, rest = self.config.warmup_candles, self._backfiller
        if not count or rest is None:
            return
        wanted: dict[tuple[str, str], None] = {}
        for name in names:
            stream = parse_stream(name)
            kline = stream.kind is StreamKind.KLINE and not stream.tz_offset  # UTC on REST
            if kline and stream.symbol and stream.interval:
                wanted[(stream.symbol, stream.interval)] = None

        async def one(symbol: str, interval: str) -> None:
            try:
                klines = await rest.recent_klines(symbol, interval, count)
            except RestUnavailable as exc:
                log.warning("%s: warm-up of kline_%s failed, its buffer starts empty: %s",
                            symbol, interval, exc)  # fmt: skip
                self._publisher.report_error("warmup", exc, symbol)
                return
            kept = self.states[symbol].machine.warm_up(interval, klines)
            log.info("%s: warm-up: %d closed kline_%s candles", symbol, kept, interval)

        # Bounded: armed stops have neither live prices nor the fallback until it ends.
        limit = 2 * self.config.rest_timeout
        with trio.move_on_after(limit) as bound:
            async with trio.open_nursery() as nursery:
                for symbol, interval in wanted:
                    nursery.start_soon(one, symbol, interval)
        if bound.cancelled_caught:
            late = RestUnavailable(f"warm-up from {rest.rest_url} took longer than {limit:g} s; "
                                   "the buffers not filled by then start empty")  # fmt: skip
            log.warning("%s", late)
            self._publisher.report_error("warmup", late)

    def report(self, symbol: str) -> ChildReport | None:
        """The supervisor's report on ``symbol``'s actor (`Gateway.actor_report`): its
        inner child's, marked FAILED once its own supervisor gave up; None if unknown."""
        name = f"symbol:{symbol}"
        outer = self.supervisor.report().get(name)
        try:
            subtree = self.supervisor.child_state(name)
        except KeyError:
            return outer
        inner: ChildReport | None = None
        if isinstance(subtree, Subtree) and subtree.supervisor is not None:
            inner = subtree.supervisor.report().get(name)
        if inner is None:
            return outer
        if outer is not None and outer.status is ChildStatus.FAILED:
            return attrs.evolve(inner, status=ChildStatus.FAILED)
        return inner

    def kill(self, symbol: str, reason: str) -> bool:
        """Crash ``symbol``'s actor on purpose (`Gateway.kill_symbol`); False when it has
        no run to kill (restarting, failed, stopped, removed meanwhile)."""
        name = f"symbol:{symbol}"
        try:  # NoSuchChild (a KeyError): removed meanwhile
            subtree = self.supervisor.child_state(name)
            inner = subtree.supervisor if isinstance(subtree, Subtree) else None
            return inner is not None and inner.kill(name, reason)
        except KeyError:
            return False

    def failed(self, symbol: str, error: Exception) -> None:
        """``symbol``'s supervisor gave up: quarantine it alone, or end the gateway."""
        state = self.states.get(symbol)
        report = self.report(symbol)
        restarts = report.restarts if report is not None else 0
        if self.config.on_symbol_failure == "raise":
            failure = SymbolFailed(symbol, restarts)
            failure.__cause__ = error
            self._end(failure)  # ends open_gateway with it
            return
        dropped = state.quarantine() if state is not None else 0
        armed = state.machine.stops.armed_count if state is not None else 0
        log.error(
            "%s: quarantined after %d restarts (%d queued events dropped; %d armed stops no "
            "longer checked): %s", symbol, restarts, dropped, armed, error,
        )  # fmt: skip
        self._publisher.publish(SymbolQuarantined(symbol, restarts, error))
        self._publisher.report_error("symbol", error, symbol)

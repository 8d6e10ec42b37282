"""The public API for trio code: `open_gateway` and the `Gateway` handle it yields.

`open_gateway` lives in `gateway._open`; the machinery under `gateway.runtime`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable

import attrs
import trio

from actors import ChildReport
from gateway.config import GatewayConfig
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, Need
from gateway.core.events import (
    AggTrade,
    CandleClosed,
    GatewayErrorEvent,
    Kline,
    MiniTicker,
    RollingTicker,
    StopTriggered,
    Ticker,
    Trade,
)
from gateway.core.holds import HoldBudget
from gateway.core.hook_protocol import CloseResult
from gateway.core.orderbook import OrderBookSync
from gateway.core.stop_loss import Position, PositionStatus, Side
from gateway.core.streams import canonical_symbol, parse_stream
from gateway.errors import ConfigError, GatewayError, PositionError, UnknownSymbol
from gateway.runtime.connections import Connections
from gateway.runtime.gateway_stats import collect_stats
from gateway.runtime.hooks import CloseHook, HookRunner
from gateway.runtime.publish import Callback, Publisher, Subscription
from gateway.runtime.rotation import Rotation
from gateway.runtime.router import Router
from gateway.runtime.services import rest_parts, services_supervisor
from gateway.runtime.symbol import SymbolRuntime
from gateway.runtime.symbol_tree import SymbolTree
from gateway.stats import GatewayStats


class Gateway:
    """A running gateway: subscriptions, callbacks, positions and snapshots.

    Obtain one from `open_gateway`; it is valid inside that ``async with`` block.
    """

    def __init__(self, config: GatewayConfig, close_hook: CloseHook | None) -> None:
        # Resolved once: ``testnet`` means its hosts; REST goes where the stream URL
        # points, never elsewhere.
        config = attrs.evolve(config, url=config.resolved_url(),
                              rest_url=config.resolved_rest_url())  # fmt: skip
        self.config = config
        self._router = Router()
        self._publisher = Publisher(config.callback_buffer)
        #: The dispatcher, hook runner, backfiller and fallback, each restarted alone.
        self._services = services_supervisor(config.max_restarts, config.restart_period,
                                             self._seeded("services"))  # fmt: skip
        #: Every connection, in opening order, and the supervisor that runs them.
        self._links = Connections(config.max_restarts, config.restart_period,
                                  self._seeded("connections"), self._fail)  # fmt: skip
        self._connections = self._links.all
        self._hooks = HookRunner(
            close_hook, self._publisher, self._deliver, timeout=config.close_hook_timeout
        )
        self._states: dict[str, SymbolRuntime] = {}
        #: Live events held behind gaps by every symbol together (one memory bound).
        self._hold_budget = HoldBudget(config.hold_max_total)
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        #: The REST backfiller and the price fallback (None without REST, or turned off).
        self._backfiller, self._fallback = rest_parts(
            config, self._states, self._publisher, deliver=self._deliver,
            need=self._backfill_need, rng=self._seeded("rest"),
        )  # fmt: skip
        #: The symbol actors (in ``_states``) and their ``symbols`` supervisor.
        self._symbols = SymbolTree(
            config, self._states, publisher=self._publisher, router=self._router,
            hooks=self._hooks, backfiller=self._backfiller, hold_budget=self._hold_budget,
            seeded=self._seeded, end=self._fail,
        )  # fmt: skip
        self._supervisor = self._symbols.supervisor
        #: Opens connections, places streams on them, rotates them make-before-break.
        self._rotation = Rotation(config, self._router, self._publisher, self._links,
                                  self._seeded("gateway") or random.Random(),
                                  self._running)  # fmt: skip

    # Subscriptions and callbacks ---------------------------------------------------

    def subscribe(
        self,
        symbols: Iterable[str] | str | None = None,
        kinds: Iterable[type] | type | None = None,
        buffer: int | None = None,
    ) -> Subscription:
        """A bounded receive channel of events for ``symbols`` and ``kinds`` (None: all).

        A slow subscriber loses its own oldest events (latest-value kinds conflate per
        symbol); it never slows a symbol actor. Close it (or use ``with``) when done.
        ``receive_batch(n)`` takes up to ``n`` queued events per wake-up (bursts: a REST
        page of backfilled rows is published at once). Raises `InvalidStreamName` for a
        symbol that cannot be spelled as one (``BTC USDT``).
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        if symbols is not None:
            symbols = [canonical_symbol(s) for s in symbols]
        if isinstance(kinds, type):
            kinds = [kinds]
        return self._publisher.subscribe(symbols, kinds, buffer or self.config.subscriber_buffer)

    def on(self, kind: type, callback: Callback) -> None:
        """Call ``callback(event)`` (sync or async) for every event of ``kind``, in the
        dispatcher task; one that raises is logged and counted, never fatal. Raises
        nothing."""
        self._publisher.add_callback(kind, callback)

    def on_trade(self, callback: Callback) -> None:
        """Callback for every trade and aggregate trade (see `on`). Raises nothing."""
        self.on(Trade, callback)
        self.on(AggTrade, callback)

    def on_kline(self, callback: Callback) -> None:
        """Callback for every kline update (check ``is_closed`` for final candles). Raises
        nothing."""
        self.on(Kline, callback)

    def on_candle_closed(self, callback: Callback) -> None:
        """Callback once per closed candle (a `CandleClosed` with ``.candle``). Raises nothing."""
        self.on(CandleClosed, callback)

    def on_ticker(self, callback: Callback) -> None:
        """Callback for every 24h, rolling-window and mini ticker. Raises nothing."""
        for kind in (Ticker, RollingTicker, MiniTicker):
            self.on(kind, callback)

    def on_stop_loss(self, callback: Callback) -> None:
        """Callback once per fired stop-loss (`StopTriggered`). Raises nothing."""
        self.on(StopTriggered, callback)

    def on_error(self, callback: Callback) -> None:
        """Callback with each error the gateway survives, and the final one if it does not.
        Raises nothing."""
        self._publisher.error_callbacks.append(callback)

    # Positions ---------------------------------------------------------------------------

    def open_position(
        self,
        symbol: str,
        side: Side | str,
        entry_price: float,
        *,
        quantity: float = 0.0,
        stop_pct: float | None = None,
        stop_price: float | None = None,
        id: str | None = None,
    ) -> str:
        """Arm a stop-loss for a position; returns its id. Checked on every trade from now.

        Raises `UnknownSymbol` for a symbol the gateway does not have, `PositionError`
        for a side other than LONG / SHORT, bad stop values, an id already used, or on a
        quarantined symbol (its stops would never be checked).
        """
        state = self._state(symbol)
        if state.quarantined:
            raise PositionError(
                f"{state.symbol} is quarantined (its actor kept crashing): a stop there would "
                "never be checked; remove_symbols and add_symbols start it again"
            )
        if not isinstance(side, Side):
            try:
                side = Side[str(side).upper()]
            except KeyError:
                raise PositionError(f"side must be LONG or SHORT, got {side!r}") from None
        pid = id or f"{state.symbol}-{next(self._ids)}"
        state.machine.open_position(
            Position(pid, state.symbol, side, entry_price, quantity, stop_pct, stop_price)
        )
        return pid

    def adjust_stop(
        self,
        symbol: str,
        position_id: str,
        *,
        stop_pct: float | None = None,
        stop_price: float | None = None,
    ) -> None:
        """Move an armed position's stop (exactly one of ``stop_pct`` / ``stop_price``);
        it is checked against the last price at once.

        Raises `UnknownSymbol`, or `PositionError` for an unknown id, a stop no longer
        armed (a fired stop stays fired) or bad stop values.
        """
        self._state(symbol).machine.stops.adjust_stop(
            position_id, stop_pct=stop_pct, stop_price=stop_price
        )

    def close_position(self, symbol: str, position_id: str) -> bool:
        """Cancel an armed position's stop (the user closed it): True; False if it was
        already cancelled.

        Raises `UnknownSymbol`, or `PositionError` for an unknown id or a stop that
        already fired (closing that position is the close hook's job now).
        """
        return self._state(symbol).machine.stops.cancel(position_id)

    def positions(self, symbol: str | None = None) -> list[PositionStatus]:
        """Snapshots of positions (all symbols, or one); raises `UnknownSymbol`."""
        states = [self._state(symbol)] if symbol else list(self._states.values())
        return [p for s in states for p in s.machine.stops.positions]

    # Snapshots ---------------------------------------------------------------------------

    def candles(self, symbol: str, interval: str, n: int | None = None) -> list[Kline]:
        """Closed candles of ``symbol`` at ``interval``, oldest first (the last ``n``;
        none for an interval not subscribed); raises `UnknownSymbol`."""
        buf = self._state(symbol).machine.candles.find(interval)
        if buf is None:
            return []
        return list(buf.closed) if n is None else buf.last(n)

    def candle(self, symbol: str, interval: str) -> Kline | None:
        """``symbol``'s latest candle at ``interval``: the one still open, else the last
        closed (None before the first); raises `UnknownSymbol`."""
        buf = self._state(symbol).machine.candles.find(interval)
        if buf is None:
            return None
        return buf.open_candle if buf.open_candle is not None else buf.last_closed

    def order_book(self, symbol: str) -> OrderBookSync | None:
        """``symbol``'s local order book (kept when a diff-depth stream is subscribed).

        Read it (``state``, ``best_bid()``, ``best_ask()``, ``top(n)``); do not feed it.
        None without a diff-depth stream. Raises `UnknownSymbol`.
        """
        return self._state(symbol).machine.book

    def last_prices(self) -> dict[str, float | None]:
        """The last trade price per symbol (None before its first trade). Raises nothing."""
        return {s: st.machine.last_price for s, st in self._states.items()}

    def stats(self) -> GatewayStats:
        """Per-symbol counters and latency, per-connection state, router, REST, holds and
        callback counters, as frozen values (``to_dict()``: the JSON form).

        Nothing in it carries a credential: connections report endpoints as host:port
        and their errors already masked. Raises nothing.
        """
        return collect_stats(
            symbols=self._symbols, fallback=self._fallback, links=self._links,
            router=self._router, backfiller=self._backfiller, hold_budget=self._hold_budget,
            publisher=self._publisher, services=self._services,
        )  # fmt: skip

    def actor_report(self, symbol: str) -> ChildReport | None:
        """The supervisor's report on ``symbol``'s actor (status, restarts, dead letters).

        None for a symbol this gateway does not run. A symbol whose actor exceeded its
        restart intensity reports `ChildStatus.FAILED` (and ``stats()`` says ``"failed"``,
        with ``"quarantined": True`` under ``on_symbol_failure = "quarantine"``);
        ``restarts`` counts the restarts before that. Raises nothing.
        """
        return self._symbols.report(canonical_symbol(symbol))

    def _seeded(self, name: str) -> random.Random | None:
        """A random source for ``name``'s jitter: seeded from ``jitter_seed`` if set."""
        seed = self.config.jitter_seed
        return None if seed is None else random.Random(f"{seed}:{name}")

    def kill_symbol(self, symbol: str, reason: str = "killed on request") -> bool:
        """Crash ``symbol``'s actor on purpose (`actors.Supervisor.kill`): its supervisor
        restarts it with its state, events that arrive meanwhile queue and are handled
        after, and the restart counts toward ``max_restarts`` like a bug's. For operators
        and fault drills (``gateway soak --chaos`` crashes actors this way).

        Returns False when the actor has no run to kill (restarting, failed, stopped).
        Raises `UnknownSymbol`.
        """
        return self._symbols.kill(self._state(symbol).symbol, reason)

    def _state(self, symbol: str) -> SymbolRuntime:
        """``symbol``'s runtime, in any spelling; raises `UnknownSymbol` if not running."""
        try:
            return self._states[canonical_symbol(symbol)]
        except KeyError:
            raise UnknownSymbol(symbol, tuple(self._states)) from None

    # Dynamic symbols --------------------------------------------------------------------

    async def add_symbols(
        self, symbols: Iterable[str], streams: Iterable[str] | None = None
    ) -> None:
        """Start actors for new symbols and subscribe their streams (suffixes) live.

        Spellings such as ``eth/usdt`` mean ``ETHUSDT``; new symbols are checked against
        the exchange's listing like at the start. Raises `ConfigError` for a symbol the
        exchange does not list or an empty ``streams``, `InvalidStreamName` for a bad
        suffix or spelling, `SubscriptionError` if the exchange refuses the SUBSCRIBE.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        suffixes = list(streams) if streams is not None else list(self.config.streams)
        if not suffixes:
            raise ConfigError("add_symbols: streams must name at least one stream suffix "
                              f"(e.g. 'trade'), got {suffixes!r}")  # fmt: skip
        await self.add_streams(
            f"{canonical_symbol(sym).lower()}@{suffix}" for sym in symbols for suffix in suffixes
        )

    async def add_streams(self, names: Iterable[str]) -> None:
        """Subscribe full stream names live, starting actors for symbols not seen before
        (checked against the exchange's listing first; their kline buffers warmed up
        with ``warmup_candles``).

        Raises `InvalidStreamName` for a bad name, `ConfigError` for a symbol the
        exchange does not list, `SubscriptionError` if the exchange refuses it.
        """
        parsed = [parse_stream(_canonical_stream(n)) for n in names]
        new = [s.symbol for s in parsed if s.symbol is not None and s.symbol not in self._states]
        await self._symbols.check_listed(list(dict.fromkeys(new)), "add_symbols")
        for stream in parsed:
            if stream.symbol is not None:
                await self._symbols.start(stream.symbol)
        await self._symbols.warm_up(s.name for s in parsed)
        await self._rotation.subscribe([s.name for s in parsed])

    async def remove_symbols(self, symbols: Iterable[str]) -> None:
        """Unsubscribe symbols' streams and stop their actors (their positions go with
        them). Raises `UnknownSymbol` (before anything is removed) for a symbol this
        gateway does not run, `SubscriptionError` if the exchange refuses the UNSUBSCRIBE.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        wanted = [canonical_symbol(sym) for sym in symbols]
        for sym in wanted:
            if sym not in self._states:
                raise UnknownSymbol(sym, tuple(self._states))
        for sym in wanted:
            await self._rotation.unsubscribe_symbol(sym)
            await self._symbols.stop(sym)

    # Lifecycle --------------------------------------------------------------------------

    def _backfill_need(self, request: BackfillRequest) -> Need:
        """What ``request``'s symbol still wants of it (nothing once the symbol is gone)."""
        state = self._states.get(request.symbol)
        return Need.NOTHING if state is None else state.machine.backfill_need(request)

    def _deliver(self, symbol: str, item: BackfillResult | CloseResult) -> None:
        """Post a result to ``symbol``'s actor (dropped if the symbol is gone)."""
        state = self._states.get(symbol)
        if state is not None:
            state.post_result(item)

    def _running(self) -> trio.Nursery:
        """`open_gateway`'s nursery, where the gateway starts tasks of its own."""
        assert self._nursery is not None
        return self._nursery

    def _fail(self, error: GatewayError) -> None:
        """End `open_gateway` with ``error``: a connection that had been live gave up on
        the exchange, or a symbol failed under ``on_symbol_failure = "raise"``."""
        self._running().start_soon(_raise, error)


def _canonical_stream(name: str) -> str:
    """``BTC/USDT@trade`` as ``btcusdt@trade``: the symbol part's common spellings
    (see `canonical_symbol`); market-wide ``!`` names as they are."""
    if not isinstance(name, str) or name.startswith("!"):
        return name
    symbol, at, rest = name.partition("@")
    return f"{canonical_symbol(symbol).lower()}{at}{rest}" if at else name


async def _raise(error: GatewayError) -> None:
    """Raise ``error`` in the gateway's nursery, which ends `open_gateway` with it."""
    raise error


# Last: `gateway._open` builds on `Gateway` above (``from gateway.api import open_gateway``).
from gateway._open import open_gateway  # noqa: E402

__all__ = ["CloseHook", "Gateway", "GatewayErrorEvent", "open_gateway"]

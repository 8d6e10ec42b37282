"""The public API for trio code: `open_gateway` and the `Gateway` handle it yields."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from actors import (
    ChildReport,
    ChildSpec,
    ChildStatus,
    Overflow,
    Restart,
    RestartIntensityExceeded,
    Subtree,
    Supervisor,
    supervisor_spec,
)
from gateway.config import GatewayConfig, PositionConfig, evolve_config
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, Need
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import AggTrade, Kline, MiniTicker, RollingTicker, Ticker, Trade
from gateway.core.holds import HoldBudget
from gateway.core.hook_protocol import CloseResult
from gateway.core.notices import (
    CandleClosed,
    GatewayErrorEvent,
    StopTriggered,
    StreamRefused,
    SymbolQuarantined,
)
from gateway.core.orderbook import OrderBookSync
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.stop_loss import Position, PositionStatus, Side
from gateway.core.streams import StreamKind, canonical_symbol, parse_stream, shard_streams
from gateway.errors import (
    ConfigError,
    ConnectionFailed,
    GatewayError,
    PositionError,
    SubscriptionError,
    UnknownSymbol,
)
from gateway.runtime.backfill import Backfiller, RestUnavailable
from gateway.runtime.connection import Connection
from gateway.runtime.connections import Connections
from gateway.runtime.exception_groups import collapse, leaves
from gateway.runtime.fallback import PriceFallback
from gateway.runtime.hooks import CloseHook, HookRunner
from gateway.runtime.listing import check_symbols
from gateway.runtime.publish import Callback, Publisher, Subscription, invoke
from gateway.runtime.router import FrameTap, Router
from gateway.runtime.services import service_spec, services_supervisor
from gateway.runtime.symbol import SymbolFailed, SymbolRuntime, symbol_actor
from gateway.stats import (
    CallbackStats,
    GatewayStats,
    RefusedStream,
    RouterStats,
    ServiceStats,
)

log = logging.getLogger(__name__)


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
        self._supervisor = Supervisor(
            "symbols", max_restarts=config.max_restarts, period=config.restart_period,
            rng=self._seeded("symbols"),
        )  # fmt: skip
        #: The dispatcher, hook runner, backfiller and fallback, each restarted alone.
        self._services = services_supervisor(config.max_restarts, config.restart_period,
                                             self._seeded("services"))  # fmt: skip
        #: Every connection, in opening order, and the supervisor that runs them.
        self._links = Connections(config.max_restarts, config.restart_period,
                                  self._seeded("connections"), self._connection_failed)  # fmt: skip
        self._connections = self._links.all
        self._hooks = HookRunner(
            close_hook, self._publisher, self._deliver, timeout=config.close_hook_timeout
        )
        self._states: dict[str, SymbolRuntime] = {}
        #: Live events held behind gaps by every symbol together (one memory bound).
        self._holds = HoldBudget(config.hold_max_total)
        self._ids = itertools.count(1)
        self._unit_ns = 1000 if config.time_unit.upper() == "MICROSECOND" else 1_000_000
        self._connect_limiter = RollingWindowLimiter(300, 300.0)
        self._rng = self._seeded("gateway") or random.Random()
        self._nursery: trio.Nursery | None = None
        self._backfiller = (
            Backfiller(
                config.rest_url, self._deliver, timeout=config.rest_timeout,
                max_ids=config.backfill_max_ids, weight_per_minute=config.rest_weight_per_minute,
                retry=ReconnectPolicy(0.5, 2.0, 30.0, config.rest_retries),
                ca_file=config.ca_file, need=self._backfill_need,
                rng=self._seeded("rest"),
            )
            if config.rest_url
            else None
        )  # fmt: skip
        self._fallback = (
            PriceFallback(
                self._states, self._backfiller, after=config.fallback_after,
                interval=config.fallback_interval,
                on_error=lambda sym, exc: self._publisher.report_error("fallback", exc, sym),
            )
            if self._backfiller is not None and config.fallback_after > 0
            else None
        )  # fmt: skip

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
        """Callback for every trade and aggregate trade."""
        self.on(Trade, callback)
        self.on(AggTrade, callback)

    def on_kline(self, callback: Callback) -> None:
        """Callback for every kline update (check ``is_closed`` for final candles)."""
        self.on(Kline, callback)

    def on_candle_closed(self, callback: Callback) -> None:
        """Callback once per closed candle (a `CandleClosed` with ``.candle``)."""
        self.on(CandleClosed, callback)

    def on_ticker(self, callback: Callback) -> None:
        """Callback for every 24h, rolling-window and mini ticker."""
        for kind in (Ticker, RollingTicker, MiniTicker):
            self.on(kind, callback)

    def on_stop_loss(self, callback: Callback) -> None:
        """Callback once per fired stop-loss (`StopTriggered`)."""
        self.on(StopTriggered, callback)

    def on_error(self, callback: Callback) -> None:
        """Callback with each error the gateway survives, and the final one if it does not."""
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
        """The last trade price per symbol (None before its first trade)."""
        return {s: st.machine.last_price for s, st in self._states.items()}

    def stats(self) -> GatewayStats:
        """Per-symbol counters and latency, per-connection state, router, REST, holds and
        callback counters, as frozen values (``to_dict()``: the JSON form).

        Nothing in it carries a credential: connections report endpoints as host:port
        and their errors already masked.
        """
        symbols = {}
        for sym, state in self._states.items():
            snap = state.snapshot()
            child = self.actor_report(sym)
            if child is not None:
                snap = attrs.evolve(snap, restarts=child.restarts,
                                    status=child.status.value,  # "failed" once quarantined
                                    dead_letters=len(child.dead_letters))  # fmt: skip
            if self._fallback is not None:
                polls, active = self._fallback.snapshot(sym)
                snap = attrs.evolve(snap, fallback_polls=polls, fallback_active=active)
            symbols[sym] = snap
        return GatewayStats(
            symbols=symbols,
            connections=tuple(c.snapshot(self._links.restarts(c)) for c in self._connections),
            router=RouterStats(
                frames=self._router.frames, malformed=self._router.malformed,
                unknown=self._router.unknown, unrouted=self._router.unrouted,
                tap_errors=self._router.tap_errors,
            ),
            refused={
                name: RefusedStream(code=code, message=msg, connection=c.conn_id)
                for c in self._connections
                for name, (code, msg) in c.refused.items()
            },
            rest=self._backfiller.snapshot() if self._backfiller is not None else None,
            holds=self._holds.snapshot(),
            callbacks=CallbackStats(
                calls=self._publisher.callback_calls, errors=self._publisher.callback_errors,
                dropped=self._publisher.callback_queue.dropped,
            ),
            services={
                name: ServiceStats(status=r.status.value, restarts=r.restarts,
                                   last_error=r.last_error)
                for name, r in self._services.report().items()
            },
        )  # fmt: skip

    def actor_report(self, symbol: str) -> ChildReport | None:
        """The supervisor's report on ``symbol``'s actor (status, restarts, dead letters).

        None for a symbol this gateway does not run. A symbol whose actor exceeded its
        restart intensity reports `ChildStatus.FAILED` (and ``stats()`` says ``"failed"``,
        with ``"quarantined": True`` under ``on_symbol_failure = "quarantine"``);
        ``restarts`` counts the restarts before that.
        """
        name = f"symbol:{canonical_symbol(symbol)}"
        outer = self._supervisor.report().get(name)
        try:
            subtree = self._supervisor.child_state(name)
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
        name = f"symbol:{self._state(symbol).symbol}"
        try:  # NoSuchChild (a KeyError): removed meanwhile
            subtree = self._supervisor.child_state(name)
            inner = subtree.supervisor if isinstance(subtree, Subtree) else None
            return inner is not None and inner.kill(name, reason)
        except KeyError:
            return False

    def _state(self, symbol: str) -> SymbolRuntime:
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
        await self._check_listed(list(dict.fromkeys(new)), "add_symbols")
        for stream in parsed:
            if stream.symbol is not None:
                await self._start_symbol(stream.symbol)
        await self._warm_up(s.name for s in parsed)
        await self._subscribe([s.name for s in parsed])

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
            for conn in self._connections:
                # Refused streams too: they are no longer asked for again.
                mine = [n for n in (*conn.streams, *conn.refused)
                        if parse_stream(n).symbol == sym]  # fmt: skip
                if mine:
                    await conn.unsubscribe(mine)
            self._router.detach(sym)
            await self._supervisor.stop_child(f"symbol:{sym}")
            self._states.pop(sym, None)

    async def _subscribe(self, names: list[str]) -> None:
        limit = self.config.max_streams_per_connection
        for conn in self._connections:
            room = limit - len(conn.streams)
            if room > 0 and names:
                await conn.subscribe(names[:room])
                names = names[room:]
        for group in shard_streams(names, limit) if names else []:
            await self._links.start(self._new_connection(group))

    # Lifecycle --------------------------------------------------------------------------

    async def _check_listed(self, symbols: list[str], key: str) -> None:
        """`check_symbols` against this gateway's REST endpoint, bounded by ``rest_timeout``
        (nothing with ``check_symbols = False``)."""
        if not self.config.check_symbols:
            return
        budget = self._backfiller.budget if self._backfiller is not None else None
        await check_symbols(
            self.config.rest_url, symbols, limit=self.config.rest_timeout, key=key,
            observe_weight=budget.observe if budget is not None else None,
            ca_file=self.config.ca_file,
        )  # fmt: skip

    async def _start_symbol(self, symbol: str) -> None:
        if symbol in self._states:
            return
        state = SymbolRuntime(
            symbol, self._publisher, candle_buffer=self.config.candle_buffer,
            event_time_unit_ns=self._unit_ns, request_close=self._hooks.request,
            request_backfill=self._backfiller.request if self._backfiller else None,
            hold_max_events=self.config.hold_max_events,
            hold_max_seconds=self.config.hold_max_seconds,
            hold_overflow=self.config.hold_overflow, hold_budget=self._holds,
        )  # fmt: skip
        self._states[symbol] = state
        actor = ChildSpec(
            name=f"symbol:{symbol}", actor=symbol_actor, state_factory=lambda: state,
            mailbox_bound=self.config.mailbox_size, overflow=Overflow.DROP_NEWEST,
            restart=Restart.PERMANENT,
        )  # fmt: skip
        # One supervisor per symbol, temporary under "symbols": a symbol that exceeds its
        # restart intensity fails alone, and _symbol_failed applies on_symbol_failure.
        subtree = supervisor_spec(
            f"symbol:{symbol}", [actor], max_restarts=self.config.max_restarts,
            period=self.config.restart_period, restart=Restart.TEMPORARY,
            on_failed=lambda _report, error: self._symbol_failed(symbol, error),
            rng=self._seeded(f"symbol:{symbol}"),
        )  # fmt: skip
        await self._supervisor.start_child(subtree)
        self._router.attach(state)

    async def _warm_up(self, names: Iterable[str]) -> None:
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
            kept = self._states[symbol].machine.warm_up(interval, klines)
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

    def _symbol_failed(self, symbol: str, error: Exception) -> None:
        """``symbol``'s supervisor gave up: quarantine it alone, or end the gateway."""
        state = self._states.get(symbol)
        report = self.actor_report(symbol)
        restarts = report.restarts if report is not None else 0
        if self.config.on_symbol_failure == "raise":
            failure = SymbolFailed(symbol, restarts)
            failure.__cause__ = error
            assert self._nursery is not None
            self._nursery.start_soon(_raise, failure)  # ends open_gateway with it
            return
        dropped = state.quarantine() if state is not None else 0
        armed = state.machine.stops.armed_count if state is not None else 0
        log.error(
            "%s: quarantined after %d restarts (%d queued events dropped; %d armed stops no "
            "longer checked): %s", symbol, restarts, dropped, armed, error,
        )  # fmt: skip
        self._publisher.publish(SymbolQuarantined(symbol, restarts, error))
        self._publisher.report_error("symbol", error, symbol)

    def _backfill_need(self, request: BackfillRequest) -> Need:
        """What ``request``'s symbol still wants of it (nothing once the symbol is gone)."""
        state = self._states.get(request.symbol)
        return Need.NOTHING if state is None else state.machine.backfill_need(request)

    def _deliver(self, symbol: str, item: BackfillResult | CloseResult) -> None:
        """Post a result to ``symbol``'s actor (dropped if the symbol is gone)."""
        state = self._states.get(symbol)
        if state is not None:
            state.post_result(item)

    def _new_connection(self, streams: list[str], conn_id: str | None = None) -> Connection:
        c = self.config
        conn_id = conn_id or f"conn-{len(self._connections) + 1}"
        conn = Connection(
            conn_id, c.url, streams, self._router,
            policy=ReconnectPolicy(
                c.reconnect.initial, c.reconnect.factor, c.reconnect.cap, c.reconnect.max_attempts
            ),
            connect_limiter=self._connect_limiter, control_rate=c.control_rate,
            silence_timeout=c.silence_timeout, connect_timeout=c.connect_timeout,
            max_age=c.max_connection_age, time_unit=c.time_unit, rng=self._rng,
            on_error=lambda exc: self._publisher.report_error("connection", exc),
            on_rotate=self._rotate,
            on_refused=lambda name, code, msg: self._stream_refused(conn_id, name, code, msg),
            stream_silence_factor=c.stream_silence_factor,
            trade_silence_floor=c.trade_silence_floor, ca_file=c.ca_file,
        )  # fmt: skip
        self._connections.append(conn)
        return conn

    def _connection_failed(self, error: ConnectionFailed) -> None:
        """A connection that had been live gave up on the exchange: the gateway ends."""
        assert self._nursery is not None
        self._nursery.start_soon(_raise, error)

    def _stream_refused(self, conn_id: str, name: str, code: int | None, message: str) -> None:
        """The exchange refused one stream: tell subscribers and error callbacks."""
        symbol = parse_stream(name).symbol
        self._publisher.publish(StreamRefused(symbol, name, code, message, conn_id))
        error = SubscriptionError(code, f"stream {name} refused: {message}")
        self._publisher.report_error("stream", error, symbol)

    def _rotate(self, old: Connection) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._rotate_to_new, old)

    async def _rotate_to_new(self, old: Connection) -> None:
        """Make-before-break: a new connection is live and subscribed before the old one
        closes; the overlap's duplicate trades are dropped by id in the symbol actors."""
        assert self._nursery is not None
        new = self._new_connection(list(old.streams), old.conn_id)
        new.inherit(old)
        try:
            await self._links.start(new)
        except ConnectionFailed as exc:  # the old connection still streams: keep it
            self._connections.remove(new)  # its attempts reached on_error as ConnectionLost
            old.rotating = False
            log.warning("[%s] rotation failed, keeping the old connection: %s", old.conn_id, exc)
            return
        late = [n for n in old.streams if n not in new.streams]  # added during the overlap
        if late:
            await new.subscribe(late)
        await self._links.stop(old)
        log.info("[%s] rotated: new connection live, old one closed", new.conn_id)


@asynccontextmanager
async def open_gateway(
    config: GatewayConfig | None = None,
    *,
    close_hook: CloseHook | None = None,
    on_error: Callback | None = None,
    frame_tap: FrameTap | None = None,
    on_start: Callable[[Gateway], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[Gateway]:
    """Open a gateway: start symbol actors, connect, subscribe; yield the `Gateway`.

    Waits until every connection is live and subscribed; with ``warmup_candles = N``
    each subscribed kline buffer first holds the last N closed REST candles (a REST
    failure goes to the error callbacks and that buffer starts empty). Leaving the block stops
    everything. A connection that exhausts its reconnect attempts raises
    `ConnectionFailed` here (after the error callbacks saw it). A symbol actor that
    crashes more than ``max_restarts`` times within ``restart_period`` seconds is, per
    ``on_symbol_failure``: ``"quarantine"`` (the default) stopped alone, with a
    `SymbolQuarantined` event and its `RestartIntensityExceeded` to the error
    callbacks, while the other symbols run on; ``"raise"``: the gateway ends with
    `SymbolFailed` (a `GatewayError`; ``__cause__`` is the `RestartIntensityExceeded`)
    after the error callbacks saw it.
    ``close_hook(StopTriggered)`` closes a position whose stop fired (sync or async,
    retried until it succeeds: make it idempotent); ``on_error`` is registered before
    anything connects. ``frame_tap(frame, receive_ns)`` sees every raw frame before it
    is decoded (for recording; see `Router`). ``on_start(gateway)`` is called once,
    before anything connects: a supervisor or a CLI can watch ``gateway.stats().connections``
    (state, attempts, last error) while it is still connecting, before the block is
    entered. ``overrides`` replace config fields
    (e.g. ``symbols=["BTCUSDT"]``).
    """
    if config is None:
        config = GatewayConfig()
    if overrides:  # converted and checked exactly like TOML: "A,B", dicts, ConfigError
        config = evolve_config(config, **overrides)
    if not config.all_symbols():
        raise ConfigError("symbols: at least one symbol is required")
    if not config.stream_names():
        raise ConfigError(f"streams: no stream to open for {', '.join(config.all_symbols())}; "
                          f"got streams={config.streams!r}")  # fmt: skip
    gw = Gateway(config, close_hook)
    gw._router.frame_tap = frame_tap
    gw._router.on_tap_error = lambda exc: gw._publisher.report_error("frame_tap", exc)
    if on_error is not None:
        gw.on_error(on_error)
    if on_start is not None:
        on_start(gw)
    await gw._check_listed(list(config.all_symbols()), "symbols")  # bounded: rest_timeout
    try:
        async with trio.open_nursery() as nursery:
            gw._nursery = nursery
            services = gw._services
            await nursery.start(services.run)
            await services.start_child(service_spec("callbacks", gw._publisher))
            await services.start_child(service_spec("hooks", gw._hooks))
            if gw._backfiller is not None:
                await services.start_child(service_spec("backfill", gw._backfiller))
            await nursery.start(gw._supervisor.run)
            await nursery.start(gw._links.supervisor.run)
            symbols = config.all_symbols()
            for pos in config.positions:
                if pos.symbol.upper() not in symbols:
                    raise ConfigError(f"positions: symbol {pos.symbol!r} is not in symbols")
            for sym in symbols:
                await gw._start_symbol(sym)
            for pos in config.positions:
                _open_configured(gw, pos)
            await gw._warm_up(config.stream_names())
            if gw._fallback is not None:
                await services.start_child(service_spec("fallback", gw._fallback))
            for group in shard_streams(config.stream_names(), config.max_streams_per_connection):
                await gw._links.start(gw._new_connection(group))
            try:
                yield gw
            finally:
                # Close every socket gracefully while the readers still run, then stop.
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    async with trio.open_nursery() as closing:
                        for conn in gw._connections:
                            closing.start_soon(conn.stop)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = _ending_error(group)
        if isinstance(error, GatewayError | RestartIntensityExceeded):
            await _final_error(gw, error)
        raise error from error.__cause__  # keep the cause; hide the group around it


def _canonical_stream(name: str) -> str:
    """``BTC/USDT@trade`` as ``btcusdt@trade``: the symbol part's common spellings
    (see `canonical_symbol`); market-wide ``!`` names as they are."""
    if not isinstance(name, str) or name.startswith("!"):
        return name
    symbol, at, rest = name.partition("@")
    return f"{canonical_symbol(symbol).lower()}{at}{rest}" if at else name


def _ending_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What leaves `open_gateway`: a lone error as itself; several gateway errors (two
    connections failing together) as the first, the others noted; a mix with the
    caller's own errors, or any cancellation, as the group."""
    found = leaves(group)
    if len(found) == 1 or any(isinstance(e, trio.Cancelled) for e in found):
        return collapse(group)
    if all(isinstance(e, GatewayError) for e in found):
        first = found[0]
        for other in found[1:]:
            first.add_note(f"also: {type(other).__name__}: {other}")
        return first
    return group


async def _raise(error: GatewayError) -> None:
    """Raise ``error`` in the gateway's nursery, which ends `open_gateway` with it."""
    raise error


async def _final_error(gw: Gateway, error: Exception) -> None:
    """Give the error callbacks the error that ends the gateway, before it reaches the caller."""
    for cb in gw._publisher.error_callbacks:
        try:
            with trio.move_on_after(5):
                await invoke(cb, error)
        except Exception:
            log.exception("error callback raised while reporting %r", error)


def _open_configured(gw: Gateway, pos: PositionConfig) -> None:
    gw.open_position(
        pos.symbol, pos.side.name, pos.entry_price, quantity=pos.quantity,
        stop_pct=pos.stop_pct, stop_price=pos.stop_price, id=pos.id,
    )  # fmt: skip


__all__ = ["CloseHook", "Gateway", "GatewayErrorEvent", "open_gateway"]

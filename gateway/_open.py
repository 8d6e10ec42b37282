"""`open_gateway`: the async context manager that builds a `Gateway`, starts its services,
symbol actors and connections in one nursery, and decides what error leaves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors import RestartIntensityExceeded
from gateway.api import Gateway
from gateway.config import GatewayConfig, PositionConfig, evolve_config
from gateway.core.streams import shard_streams
from gateway.errors import ConfigError, GatewayError
from gateway.runtime.exception_groups import collapse, leaves
from gateway.runtime.hooks import CloseHook
from gateway.runtime.publish import Callback, invoke
from gateway.runtime.router import FrameTap
from gateway.runtime.services import service_spec

__all__ = ["open_gateway"]

#: The logger these records always came from (moved out of `gateway.api`).
log = logging.getLogger("gateway.api")


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
    await gw._symbols.check_listed(list(config.all_symbols()), "symbols")  # bounded: rest_timeout
    try:
        async with trio.open_nursery() as nursery:
            gw._nursery = nursery
            services = gw._services
            await nursery.start(services.run)
            await services.start_child(service_spec("callbacks", gw._publisher))
            await services.start_child(service_spec("hooks", gw._hooks))
            if gw._backfiller is not None:
                await services.start_child(service_spec("backfill", gw._backfiller))
            await nursery.start(gw._symbols.supervisor.run)
            await nursery.start(gw._links.supervisor.run)
            symbols = config.all_symbols()
            for pos in config.positions:
                if pos.symbol.upper() not in symbols:
                    raise ConfigError(f"positions: symbol {pos.symbol!r} is not in symbols")
            for sym in symbols:
                await gw._symbols.start(sym)
            for pos in config.positions:
                _open_configured(gw, pos)
            await gw._symbols.warm_up(config.stream_names())
            if gw._fallback is not None:
                await services.start_child(service_spec("fallback", gw._fallback))
            for group in shard_streams(config.stream_names(), config.max_streams_per_connection):
                await gw._links.start(gw._rotation.new_connection(group))
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


async def _final_error(gw: Gateway, error: Exception) -> None:
    """Give the error callbacks the error that ends the gateway, before it reaches the caller."""
    for cb in gw._publisher.error_callbacks:
        try:
            with trio.move_on_after(5):
                await invoke(cb, error)
        except Exception:
            log.exception("error callback raised while reporting %r", error)


def _open_configured(gw: Gateway, pos: PositionConfig) -> None:
    """Arm the stop of a position from the config (``positions``), as `open_position` does;
    raises what it raises."""
    gw.open_position(
        pos.symbol, pos.side.name, pos.entry_price, quantity=pos.quantity,
        stop_pct=pos.stop_pct, stop_price=pos.stop_price, id=pos.id,
    )  # fmt: skip

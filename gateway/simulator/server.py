"""`open_simulator`: the embedded exchange as an async context manager."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import attrs
import trio

from gateway.core.streams import Stream, combined_url, parse_stream
from gateway.simulator.clock import make_clock
from gateway.simulator.config import Pacing, SimulatorConfig
from gateway.simulator.connection import WebSocketSide
from gateway.simulator.control import SimulatorControl
from gateway.simulator.hub import Hub
from gateway.simulator.market import Market
from gateway.simulator.pacing import run_pacing
from gateway.simulator.replay import Recording, load_recording, load_rest_depths, run_replay
from gateway.simulator.rest import RestSide, build_app, serve_rest

__all__ = ["Simulator", "open_simulator"]

logger = logging.getLogger(__name__)


@attrs.frozen(slots=True)
class Simulator:
    """A running exchange: where to connect, and the handles to drive and observe it."""

    config: SimulatorConfig
    ws_url: str  #: e.g. ``ws://127.0.0.1:PORT`` (append ``/stream?streams=…`` or ``/ws/…``)
    rest_url: str | None  #: e.g. ``http://127.0.0.1:PORT`` (None when ``rest=False``)
    control: SimulatorControl
    market: Market
    recording: Recording | None = None
    #: With ``tls=True``: the PEM file of the throwaway CA to trust (removed on exit).
    ca_file: str | None = None

    @property
    def port(self) -> int:
        """The WebSocket port."""
        return int(self.ws_url.rsplit(":", 1)[1])

    def stream_url(self, streams: Iterable[Stream | str] = (), time_unit: str | None = None) -> str:
        """The combined-stream URL for ``streams`` on this exchange."""
        return combined_url(self.ws_url, streams, time_unit)


def _build_config(config: SimulatorConfig | None, options: dict[str, Any]) -> SimulatorConfig:
    if config is None:
        return SimulatorConfig.from_kwargs(**options)
    if options:
        SimulatorConfig.from_kwargs(**{**attrs.asdict(config, recurse=False), **options})
        return attrs.evolve(config, **options)
    return config


def _create_symbol(market: Market, stream: str) -> None:
    symbol = parse_stream(stream).symbol
    if symbol is not None:
        market.symbol(symbol)


@asynccontextmanager
async def open_simulator(
    config: SimulatorConfig | None = None, **options: Any
) -> AsyncIterator[Simulator]:
    """Run an exchange on loopback for the duration of the block.

    Takes a `SimulatorConfig`, keyword options (the config's field names), or both (the
    options override the config). Yields once both servers listen; on exit every
    connection is dropped and both servers stop. Raises `ConfigError` for bad options.
    """
    cfg = _build_config(config, options)
    recording = load_recording(cfg.replay_file) if cfg.replay_file else None
    clock = make_clock(cfg.clock, cfg.virtual_epoch)
    market = Market(
        symbols=cfg.symbols, seed=cfg.seed, start_price=cfg.start_price,
        tick_size=cfg.tick_size, volatility=cfg.volatility, book_levels=cfg.book_levels,
        agg_history=cfg.agg_history, kline_history=cfg.kline_history, now_us=clock.now_us(),
        trade_history=cfg.trade_history,
    )  # fmt: skip
    hub = Hub(cfg.client_buffer_frames)
    hub.on_new_stream = partial(_create_symbol, market)
    shutdown = trio.Event()
    replay_done = trio.Event()
    try:
        async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
            tls = None
            if cfg.tls:
                from gateway.simulator.tls import throwaway_tls  # cryptography: only if used

                tls = stack.enter_context(throwaway_tls(cfg.host))
            ws = WebSocketSide(cfg, hub, clock.now_us, tls.context if tls else None)
            port = await nursery.start(ws.serve)
            rest_url = None
            rest_side = RestSide()
            if cfg.replay_rest_file:
                rest_side.recorded_depth = load_rest_depths(cfg.replay_rest_file)
            if cfg.rest:  # the WebSocket port answers REST too (http://HOST:PORT)
                ws.rest_app = build_app(cfg, market, clock, rest_side)
                rest_port = await nursery.start(
                    partial(serve_rest, cfg, market, clock, shutdown, side=rest_side, tls=tls)
                )
                rest_url = f"{'https' if tls else 'http'}://{cfg.host}:{rest_port}"
            control = SimulatorControl(cfg, market, hub, ws, clock, replay_done, rest_side)
            if recording is not None and cfg.pacing is Pacing.REPLAY:
                nursery.start_soon(partial(
                    run_replay, recording, hub, speed=cfg.replay_speed,
                    wait_for_subscriber=cfg.replay_wait_for_subscriber, loop=cfg.replay_loop,
                    done=replay_done,
                ))  # fmt: skip
            nursery.start_soon(run_pacing, cfg, market, hub, clock)
            sim = Simulator(cfg, f"{'wss' if tls else 'ws'}://{cfg.host}:{port}", rest_url,
                            control, market, recording, tls.ca_file if tls else None)  # fmt: skip
            logger.info("simulator on %s (REST %s)", sim.ws_url, rest_url)
            try:
                yield sim
            finally:
                shutdown.set()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # show the caller a lone error (from its own block, usually) as itself
        if len(group.exceptions) == 1:
            lone = group.exceptions[0]
            raise lone from lone.__cause__  # keep its own cause, not the group around it
        raise

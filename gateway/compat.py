"""The older layer's names on top of the gateway, so its examples port with trio only.

    layer = WebSocketLayer(testnet=False)
    await layer.subscribe_trades("BTCUSDT")
    layer.register_trade_callback(on_trade)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(layer.run)
        ...
        await layer.close()

`run` opens the gateway with every subscription made so far and returns after
`close`; subscriptions made while it runs are applied live. ``api_key`` and
``api_secret`` are accepted and dropped at once (public streams need none), so no
repr, log line or error can show them; a bad ``url`` raises `ConfigError` here.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from gateway.api import Gateway, open_gateway
from gateway.config import TESTNET_REST_URL, TESTNET_URL, GatewayConfig
from gateway.core.events import Kline, MiniTicker, RollingTicker, Ticker, Trade
from gateway.core.redact import redact_url
from gateway.core.streams import kline, ticker, trade
from gateway.runtime.publish import Callback


class WebSocketLayer:
    """Compatibility facade with the older ``WebSocketLayer`` API, on trio."""

    def __init__(
        self,
        api_key: str = "",
        api_secret: str = "",
        testnet: bool = False,
        *,
        url: str | None = None,
        config: GatewayConfig | None = None,
    ) -> None:
        # Keys are accepted for compatibility; public market streams need none. Not kept,
        # so they cannot leak through a repr, a log line or an error.
        del api_key, api_secret
        base = config or GatewayConfig()
        if testnet:
            base = attrs.evolve(base, url=TESTNET_URL, rest_url=TESTNET_REST_URL, testnet=True)
        if url is not None:
            base = attrs.evolve(base, url=url)
        self.config = base
        self.testnet = testnet
        self._streams: dict[str, None] = {}
        self._callbacks: list[tuple[type, Callback]] = []
        self._error_callbacks: list[Callback] = []
        self._gateway: Gateway | None = None
        self._stop = trio.Event()
        self._ready = trio.Event()
        self._running = False

    def __repr__(self) -> str:
        return (
            f"WebSocketLayer(url={redact_url(self.config.url)!r}, testnet={self.testnet}, "
            f"streams={len(self._streams)}, running={self._running})"
        )

    @property
    def url(self) -> str:
        """The stream endpoint `run` connects to (credentials included: show `repr(layer)`)."""
        return self.config.url

    @property
    def gateway(self) -> Gateway | None:
        """The running gateway (None before `run` or after `close`)."""
        return self._gateway

    @property
    def is_running(self) -> bool:
        """True between the start of `run` and its return."""
        return self._running

    async def _add(self, name: str) -> None:
        if name in self._streams:
            return
        self._streams[name] = None
        if self._gateway is not None:
            await self._gateway.add_streams([name])

    async def subscribe_trades(self, symbol: str) -> None:
        """Subscribe to ``<symbol>@trade``."""
        await self._add(trade(symbol).name)

    async def subscribe_kline(self, symbol: str, interval: str = "1m") -> None:
        """Subscribe to ``<symbol>@kline_<interval>``."""
        await self._add(kline(symbol, interval).name)

    async def subscribe_ticker(self, symbol: str) -> None:
        """Subscribe to ``<symbol>@ticker`` (24h statistics)."""
        await self._add(ticker(symbol).name)

    def register_trade_callback(self, callback: Callback) -> None:
        """``callback(trade)`` for every trade (sync or async)."""
        self._register(Trade, callback)

    def register_kline_callback(self, callback: Callback) -> None:
        """``callback(kline)`` for every kline update (``is_final`` marks closed candles)."""
        self._register(Kline, callback)

    def register_ticker_callback(self, callback: Callback) -> None:
        """``callback(ticker)`` for every ticker."""
        for kind in (Ticker, MiniTicker, RollingTicker):
            self._register(kind, callback)

    def register_error_callback(self, callback: Callback) -> None:
        """``callback(exception)`` for every error the layer survives, and the final one."""
        self._error_callbacks.append(callback)
        if self._gateway is not None:
            self._gateway.on_error(callback)

    def _register(self, kind: type, callback: Callback) -> None:
        self._callbacks.append((kind, callback))
        if self._gateway is not None:
            self._gateway.on(kind, callback)

    async def run(self) -> None:
        """Stream until `close` is called (or the reconnect attempts run out: raises)."""
        if not self._streams:
            raise RuntimeError("subscribe to at least one stream before run()")
        config = attrs.evolve(
            self.config, symbols=(), streams=(), extra_streams=tuple(self._streams)
        )
        self._stop = trio.Event()
        self._running = True
        try:
            async with open_gateway(config) as gw:
                self._gateway = gw
                for kind, cb in self._callbacks:
                    gw.on(kind, cb)
                for cb in self._error_callbacks:
                    gw.on_error(cb)
                self._ready.set()
                await self._stop.wait()
        finally:
            self._gateway = None
            self._running = False
            self._ready = trio.Event()

    async def wait_ready(self) -> None:
        """Wait until `run` has connected and subscribed everything."""
        await self._ready.wait()

    async def close(self) -> None:
        """Stop `run` (idempotent)."""
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        """The gateway's statistics while running (`GatewayStats.to_dict`, the plain
        dicts this layer always returned), else an empty dict."""
        return self._gateway.stats().to_dict() if self._gateway is not None else {}

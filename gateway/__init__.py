"""An actor-based, multi-symbol Binance market-data gateway for trio.

Everything a user needs is here (pinned by tests/test_exports.py): `open_gateway` and
the `Gateway` it yields, its configuration, every event it delivers, the errors it
raises, the stats it reports, and the embedded exchange's entry points. The
subpackages (``gateway.core``, ``gateway.runtime``, ``gateway.app``) are its parts.
"""

import typing as _typing

from actors import RestartIntensityExceeded
from gateway._version import __version__
from gateway.api import Gateway, open_gateway
from gateway.compat import WebSocketLayer
from gateway.config import GatewayConfig, PositionConfig, ReconnectConfig, load_config
from gateway.core.events import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    CandleClosed,
    DepthUpdate,
    GapDetected,
    GapFilled,
    GapUnfilled,
    GatewayErrorEvent,
    Kline,
    MarketEvent,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    StopTriggered,
    StreamRefused,
    SymbolQuarantined,
    Ticker,
    Trade,
)
from gateway.core.frames import Event, ServerShutdown
from gateway.core.orderbook import OrderBookSync, SyncState
from gateway.core.stop_loss import PositionStatus, Side, StopState
from gateway.core.streams import Stream, StreamKind, parse_stream
from gateway.errors import (
    ConfigError,
    ConnectionFailed,
    ConnectionLost,
    DecodeError,
    GatewayError,
    InternalError,
    InvalidStreamName,
    PositionError,
    SubscriptionError,
    UnknownSymbol,
)
from gateway.runtime.hooks import CloseHook
from gateway.runtime.publish import Callback, Subscription
from gateway.runtime.symbol import SymbolFailed
from gateway.stats import (
    CallbackStats,
    ConnectionStats,
    GatewayStats,
    HoldStats,
    LatencyStats,
    Percentiles,
    RefusedStream,
    RestStats,
    RouterStats,
    ServiceStats,
    SymbolStats,
)

if _typing.TYPE_CHECKING:
    from gateway.simulator import Simulator, SimulatorConfig, open_simulator

#: Imported on first use: the embedded exchange (its REST side) costs ~70 ms to import.
_SIMULATOR = frozenset({"Simulator", "SimulatorConfig", "open_simulator"})


def __getattr__(name: str) -> _typing.Any:
    if name in _SIMULATOR:
        import gateway.simulator

        return getattr(gateway.simulator, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")


__all__ = [
    "AggTrade",
    "AvgPrice",
    "BlockTrade",
    "BookTicker",
    "Callback",
    "CallbackStats",
    "CandleClosed",
    "CloseHook",
    "ConfigError",
    "ConnectionFailed",
    "ConnectionLost",
    "ConnectionStats",
    "DecodeError",
    "DepthUpdate",
    "Event",
    "GapDetected",
    "GapFilled",
    "GapUnfilled",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayErrorEvent",
    "GatewayStats",
    "HoldStats",
    "InternalError",
    "InvalidStreamName",
    "Kline",
    "LatencyStats",
    "MarketEvent",
    "MiniTicker",
    "OrderBookSync",
    "PartialDepth",
    "Percentiles",
    "PositionConfig",
    "PositionError",
    "PositionStatus",
    "ReconnectConfig",
    "ReferencePrice",
    "RefusedStream",
    "RestStats",
    "RestartIntensityExceeded",
    "RollingTicker",
    "RouterStats",
    "ServerShutdown",
    "ServiceStats",
    "Side",
    "Simulator",
    "SimulatorConfig",
    "StopState",
    "StopTriggered",
    "Stream",
    "StreamKind",
    "StreamRefused",
    "Subscription",
    "SubscriptionError",
    "SymbolFailed",
    "SymbolQuarantined",
    "SymbolStats",
    "SyncState",
    "Ticker",
    "Trade",
    "UnknownSymbol",
    "WebSocketLayer",
    "__version__",
    "load_config",
    "open_gateway",
    "open_simulator",
    "parse_stream",
]

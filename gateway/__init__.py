"""An actor-based, multi-symbol Binance market-data gateway for trio."""

from gateway import core
from gateway._version import __version__
from gateway.api import Gateway, open_gateway
from gateway.compat import WebSocketLayer
from gateway.config import GatewayConfig, PositionConfig, ReconnectConfig, load_config
from gateway.core import streams
from gateway.core.codec import ControlEncoder, decode_frame
from gateway.core.events import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    ControlError,
    ControlReply,
    DepthUpdate,
    Event,
    EventArray,
    Kline,
    MarketEvent,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdown,
    Ticker,
    Trade,
    UnknownEvent,
)
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
)
from gateway.runtime.publish import (
    CandleClosed,
    GatewayErrorEvent,
    StopTriggered,
    StreamRefused,
    Subscription,
    SymbolQuarantined,
)
from gateway.runtime.symbol import SymbolFailed

__all__ = [
    "AggTrade",
    "AvgPrice",
    "BlockTrade",
    "BookTicker",
    "CandleClosed",
    "ConfigError",
    "ConnectionFailed",
    "ConnectionLost",
    "ControlEncoder",
    "ControlError",
    "ControlReply",
    "DecodeError",
    "DepthUpdate",
    "Event",
    "EventArray",
    "Gateway",
    "GatewayConfig",
    "GatewayError",
    "GatewayErrorEvent",
    "InternalError",
    "InvalidStreamName",
    "Kline",
    "MarketEvent",
    "MiniTicker",
    "PartialDepth",
    "PositionConfig",
    "PositionError",
    "PositionStatus",
    "ReconnectConfig",
    "ReferencePrice",
    "RollingTicker",
    "ServerShutdown",
    "Side",
    "StopState",
    "StopTriggered",
    "Stream",
    "StreamKind",
    "StreamRefused",
    "Subscription",
    "SubscriptionError",
    "SymbolFailed",
    "SymbolQuarantined",
    "Ticker",
    "Trade",
    "UnknownEvent",
    "WebSocketLayer",
    "__version__",
    "core",
    "decode_frame",
    "load_config",
    "open_gateway",
    "parse_stream",
    "streams",
]

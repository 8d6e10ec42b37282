"""An actor-based, multi-symbol Binance market-data gateway for trio."""

from gateway import core
from gateway._version import __version__
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
from gateway.core.streams import Stream, StreamKind, parse_stream
from gateway.errors import (
    ConfigError,
    ConnectionFailed,
    DecodeError,
    GatewayError,
    InvalidStreamName,
    SubscriptionError,
)

__all__ = [
    "AggTrade",
    "AvgPrice",
    "BlockTrade",
    "BookTicker",
    "ConfigError",
    "ConnectionFailed",
    "ControlEncoder",
    "ControlError",
    "ControlReply",
    "DecodeError",
    "DepthUpdate",
    "Event",
    "EventArray",
    "GatewayError",
    "InvalidStreamName",
    "Kline",
    "MarketEvent",
    "MiniTicker",
    "PartialDepth",
    "ReferencePrice",
    "RollingTicker",
    "ServerShutdown",
    "Stream",
    "StreamKind",
    "SubscriptionError",
    "Ticker",
    "Trade",
    "UnknownEvent",
    "__version__",
    "core",
    "decode_frame",
    "parse_stream",
    "streams",
]

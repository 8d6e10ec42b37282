"""Typed market events: frozen, slotted attrs classes with readable field names.

Every event carries ``event_time`` (the exchange's, in the connection's time unit:
milliseconds unless the connection asked for microseconds) and ``receive_ns``
(local ``time.time_ns()`` when the frame arrived). Prices and quantities are floats.
Trades, aggregate trades and candles fetched over REST to fill a gap carry
``backfilled=True`` (last field, default False, so the codec's positional calls stand).
Trade, kline and ticker events also answer to the older layer's field names
(``timestamp``, ``timeframe``, ``is_final``, ``ts_close``, ``price_change_pct`` ...).
"""

from __future__ import annotations

from typing import Any

import attrs

Level = tuple[float, float]


class _TradeOldNames:
    """The older layer's name for a trade's time."""

    __slots__ = ()
    trade_time: int

    @property
    def timestamp(self) -> int:
        """Trade time (older layer's name)."""
        return self.trade_time


class _TickerOldNames:
    """The older layer's names for a ticker's last price and change percent."""

    __slots__ = ()
    last_price: float
    price_change_percent: float

    @property
    def price(self) -> float:
        """Last price (older layer's name)."""
        return self.last_price

    @property
    def price_change_pct(self) -> float:
        """Price change percent (older layer's name)."""
        return self.price_change_percent


@attrs.frozen(slots=True)
class Trade(_TradeOldNames):
    """One trade (``<symbol>@trade``)."""

    symbol: str
    trade_id: int
    price: float
    quantity: float
    trade_time: int
    is_buyer_maker: bool
    event_time: int
    receive_ns: int = 0
    #: Fetched over REST to fill a gap (``receive_ns`` is then 0), not received live.
    backfilled: bool = False


@attrs.frozen(slots=True)
class AggTrade(_TradeOldNames):
    """An aggregate trade (``<symbol>@aggTrade``): one taker fill at one price."""

    symbol: str
    agg_trade_id: int
    price: float
    quantity: float
    first_trade_id: int
    last_trade_id: int
    trade_time: int
    is_buyer_maker: bool
    event_time: int
    receive_ns: int = 0
    #: Fetched over REST to fill a gap (``receive_ns`` is then 0), not received live.
    backfilled: bool = False


@attrs.frozen(slots=True)
class BlockTrade:
    """A block trade (``<symbol>@blockTrade``); ids are their own id space."""

    symbol: str
    trade_id: int
    price: float
    quantity: float
    trade_time: int
    is_buyer_maker: bool
    event_time: int
    receive_ns: int = 0


@attrs.frozen(slots=True)
class Kline:
    """A candle update (``<symbol>@kline_<interval>``); final when ``is_closed``."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float
    taker_buy_volume: float
    taker_buy_quote_volume: float
    trade_count: int
    first_trade_id: int
    last_trade_id: int
    is_closed: bool
    event_time: int
    receive_ns: int = 0
    #: Fetched over REST to fill a gap (``receive_ns`` is then 0), not received live.
    backfilled: bool = False

    @property
    def timeframe(self) -> str:
        """Interval (older layer's name)."""
        return self.interval

    @property
    def is_final(self) -> bool:
        """Closed flag (older layer's name)."""
        return self.is_closed

    @property
    def ts_close(self) -> int:
        """Close time (older layer's name)."""
        return self.close_time


@attrs.frozen(slots=True)
class Ticker(_TickerOldNames):
    """24h rolling-window statistics (``<symbol>@ticker``)."""

    symbol: str
    price_change: float
    price_change_percent: float
    weighted_avg_price: float
    prev_close_price: float
    last_price: float
    last_quantity: float
    bid_price: float
    bid_quantity: float
    ask_price: float
    ask_quantity: float
    open_price: float
    high_price: float
    low_price: float
    volume: float
    quote_volume: float
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    trade_count: int
    event_time: int
    receive_ns: int = 0


@attrs.frozen(slots=True)
class RollingTicker(_TickerOldNames):
    """Rolling-window statistics (``<symbol>@ticker_<window>``, window 1h, 4h or 1d)."""

    symbol: str
    window: str
    price_change: float
    price_change_percent: float
    open_price: float
    high_price: float
    low_price: float
    last_price: float
    weighted_avg_price: float
    volume: float
    quote_volume: float
    open_time: int
    close_time: int
    first_trade_id: int
    last_trade_id: int
    trade_count: int
    event_time: int
    receive_ns: int = 0


@attrs.frozen(slots=True)
class MiniTicker:
    """24h rolling mini ticker (``<symbol>@miniTicker``)."""

    symbol: str
    close_price: float
    open_price: float
    high_price: float
    low_price: float
    volume: float
    quote_volume: float
    event_time: int
    receive_ns: int = 0

    @property
    def price(self) -> float:
        """Last (close) price (older layer's name)."""
        return self.close_price

    @property
    def price_change(self) -> float:
        """Change over the window (older layer's name)."""
        return self.close_price - self.open_price

    @property
    def price_change_pct(self) -> float:
        """Change over the window in percent (older layer's name)."""
        return (self.close_price / self.open_price - 1.0) * 100.0 if self.open_price else 0.0


@attrs.frozen(slots=True)
class BookTicker:
    """Best bid and ask (``<symbol>@bookTicker``); the exchange sends no event time."""

    symbol: str
    update_id: int
    bid_price: float
    bid_quantity: float
    ask_price: float
    ask_quantity: float
    event_time: int | None = None
    receive_ns: int = 0


@attrs.frozen(slots=True)
class AvgPrice:
    """The exchange's rolling average price (``<symbol>@avgPrice``)."""

    symbol: str
    interval: str
    price: float
    last_trade_time: int
    event_time: int
    receive_ns: int = 0


@attrs.frozen(slots=True)
class ReferencePrice:
    """Reference price (``<symbol>@referencePrice``); ``price`` is None when there is none."""

    symbol: str
    price: float | None
    engine_time: int
    event_time: int | None = None
    receive_ns: int = 0


@attrs.frozen(slots=True)
class PartialDepth:
    """Top-N book snapshot (``<symbol>@depth<N>``); the symbol comes from the stream name."""

    symbol: str
    levels: int
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    event_time: int | None = None
    receive_ns: int = 0


@attrs.frozen(slots=True)
class DepthUpdate:
    """Order-book diff (``<symbol>@depth``): absolute quantities, 0 removes a level."""

    symbol: str
    first_update_id: int
    final_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    event_time: int
    receive_ns: int = 0


@attrs.frozen(slots=True)
class ServerShutdown:
    """The exchange is about to close this connection; reconnect now."""

    event_time: int
    receive_ns: int = 0
    symbol: None = None


@attrs.frozen(slots=True)
class EventArray:
    """A market-wide array frame (``!miniTicker@arr``, ``!ticker_<w>@arr``), decoded."""

    stream: str | None
    events: tuple[MiniTicker | RollingTicker, ...]
    receive_ns: int = 0
    symbol: None = None


@attrs.frozen(slots=True)
class UnknownEvent:
    """A well-formed frame the codec does not know; ``raw`` is the parsed JSON."""

    stream: str | None
    raw: Any
    receive_ns: int = 0
    symbol: str | None = None


@attrs.frozen(slots=True)
class ControlReply:
    """The exchange's successful answer to a control request (``result`` is None for SUBSCRIBE)."""

    id: int | str | None
    result: Any
    receive_ns: int = 0
    symbol: None = None


@attrs.frozen(slots=True)
class ControlError:
    """The exchange's error answer to a control request."""

    id: int | str | None
    code: int | None
    message: str
    receive_ns: int = 0
    symbol: None = None


MarketEvent = (
    Trade | AggTrade | BlockTrade | Kline | Ticker | RollingTicker | MiniTicker | BookTicker
    | AvgPrice | ReferencePrice | PartialDepth | DepthUpdate
)  # fmt: skip
"""Per-symbol market data events."""

Event = MarketEvent | ServerShutdown | EventArray | UnknownEvent | ControlReply | ControlError
"""Anything `decode_frame` returns."""

MARKET_EVENT_TYPES: tuple[type, ...] = (
    Trade, AggTrade, BlockTrade, Kline, Ticker, RollingTicker, MiniTicker, BookTicker,
    AvgPrice, ReferencePrice, PartialDepth, DepthUpdate,
)  # fmt: skip

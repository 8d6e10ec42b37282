"""Every event a subscriber can receive, in one module: the exchange's market events and
the gateway's own (stops fired, candles closed, gaps and how they ended, streams refused,
symbols quarantined, errors survived). Frozen, slotted attrs values; no I/O.

Market events carry ``event_time`` (the exchange's, in the connection's time unit:
milliseconds unless the connection asked for microseconds) and ``receive_ns`` (local
``time.time_ns()`` when the frame arrived); prices and quantities are floats. Trades,
aggregate trades and candles fetched over REST to fill a gap carry ``backfilled=True``
(last field, default False). Trade, kline and ticker events also answer to the older
layer's field names (`gateway.core.old_names`). What the codec decodes that is no
symbol's event (control replies, ``serverShutdown``, arrays) is in `gateway.core.frames`.
"""

from __future__ import annotations

import attrs

from gateway.core.old_names import TickerOldNames, TradeOldNames
from gateway.core.positions import StopTrigger

Level = tuple[float, float]


@attrs.frozen(slots=True)
class Trade(TradeOldNames):
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
class AggTrade(TradeOldNames):
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
class Ticker(TickerOldNames):
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
class RollingTicker(TickerOldNames):
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


MarketEvent = (
    Trade | AggTrade | BlockTrade | Kline | Ticker | RollingTicker | MiniTicker | BookTicker
    | AvgPrice | ReferencePrice | PartialDepth | DepthUpdate
)  # fmt: skip
"""Per-symbol market data events."""

MARKET_EVENT_TYPES: tuple[type, ...] = (
    Trade, AggTrade, BlockTrade, Kline, Ticker, RollingTicker, MiniTicker, BookTicker,
    AvgPrice, ReferencePrice, PartialDepth, DepthUpdate,
)  # fmt: skip


# The gateway's own events -------------------------------------------------------------


@attrs.frozen(slots=True)
class StopTriggered:
    """A position's stop-loss fired (exactly once per position).

    Times are epoch: ``trade_time`` the crossing trade's exchange time in ms (None when
    not from a trade), ``receive_ns`` / ``handled_ns`` when its frame arrived and when the
    stop was decided, in ns (0 when rebuilt after a restart), ``triggered_at_epoch`` when
    the book fired it, in seconds.
    """

    symbol: str
    position_id: str
    side: str
    stop_price: float
    trigger_price: float
    trade_time: int | None
    receive_ns: int
    handled_ns: int
    triggered_at_epoch: float = 0.0

    @classmethod
    def from_trigger(
        cls, trigger: StopTrigger, receive_ns: int = 0, handled_ns: int = 0
    ) -> StopTriggered:
        """The event for a fired stop (times are 0 when rebuilt after a restart)."""
        pos = trigger.position
        return cls(
            pos.symbol, pos.id, pos.side.name, pos.stop_level, trigger.price,
            trigger.trade_time, receive_ns, handled_ns, trigger.triggered_at_epoch,
        )  # fmt: skip


@attrs.frozen(slots=True)
class CandleClosed:
    """A candle closed and entered its buffer (published once per candle).

    ``symbol``: the symbol, upper case. ``candle``: the closed `Kline` as buffered
    (``is_closed`` true; ``interval``, ``open_time``/``close_time`` in epoch ms,
    open/high/low/close, volumes, ``trade_count``; ``backfilled`` when it came over REST
    to fill a gap). ``receive_ns``: epoch ns (``time.time_ns()``) at which the frame that
    closed it arrived; 0 for a backfilled candle.
    """

    symbol: str
    candle: Kline
    receive_ns: int


@attrs.frozen(slots=True)
class GapDetected:
    """Ids or candles of a stream were skipped (usually around a reconnect).

    ``first``/``last`` are ids (trade, aggTrade) or open times (``kline_<i>``),
    inclusive; ``backfilling`` says whether REST backfill was asked for (when the
    backfiller's queue refused it, the `GapUnfilled` follows at once). Exactly one
    `GapFilled` or `GapUnfilled` for the same range follows, whichever it was.
    """

    symbol: str
    stream: str
    first: int
    last: int
    backfilling: bool


@attrs.frozen(slots=True)
class GapFilled:
    """A gap was filled completely over REST: its ``count`` events were published first.

    Follows the gap's `GapDetected` (same ``symbol``, ``stream``, ``first``, ``last``);
    a gap ends in exactly one `GapFilled` or one `GapUnfilled`.
    """

    symbol: str
    stream: str
    first: int
    last: int
    count: int


@attrs.frozen(slots=True)
class GapUnfilled:
    """Part of a gap, ``first..last`` inclusive, was not served, and why (``reason``).

    Follows the gap's `GapDetected`. If REST served the start of the gap, those events
    were published before this and ``first`` is the first id (or open time) not served;
    otherwise ``first..last`` is the whole gap (no REST, a plain-trade stream, a full
    queue, the ``backfill_max_ids`` budget, retries used up, history too short).
    """

    symbol: str
    stream: str
    first: int
    last: int
    reason: str


@attrs.frozen(slots=True)
class StreamRefused:
    """The exchange refused one stream (an error reply to SUBSCRIBE).

    The stream is removed from its connection's set; the connection and its other
    streams keep streaming. ``code``/``message`` are the exchange's.
    """

    symbol: str | None
    stream: str
    code: int | None
    message: str
    connection: str


@attrs.frozen(slots=True)
class SymbolQuarantined:
    """A symbol's actor exceeded its restart intensity and was stopped, alone.

    Published once, when ``on_symbol_failure = "quarantine"``; the other symbols keep
    running. ``error`` is the supervisor's `RestartIntensityExceeded` (its cause: the
    last crash); ``restarts``: how often the actor was restarted before. The symbol's
    streams stay subscribed; its events are counted as dropped and its stops are no
    longer checked (``remove_symbols`` then ``add_symbols`` starts it afresh).
    """

    symbol: str
    restarts: int
    error: BaseException


@attrs.frozen(slots=True)
class GatewayErrorEvent:
    """Something went wrong that the gateway survived (or a final error), for error callbacks."""

    source: str
    error: BaseException
    symbol: str | None = None

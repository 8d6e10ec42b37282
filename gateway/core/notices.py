"""The events the gateway itself makes (the exchange's are in `gateway.core.events`):
stops fired, candles closed, gaps detected and how they ended, streams refused,
symbols quarantined and errors survived. Plain frozen values, no I/O.
"""

from __future__ import annotations

import attrs

from gateway.core.events import Kline
from gateway.core.positions import StopTrigger

__all__ = [
    "CandleClosed",
    "GapDetected",
    "GapFilled",
    "GapUnfilled",
    "GatewayErrorEvent",
    "StopTriggered",
    "StreamRefused",
    "SymbolQuarantined",
]


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
    inclusive; ``backfilling`` says whether REST backfill was requested. Exactly one
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

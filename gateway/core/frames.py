"""What the codec decodes that is not one symbol's market event: the exchange's answers to
control requests, its ``serverShutdown`` notice, market-wide arrays and frames of a kind
we do not know. The connection acts on them; none is published to subscribers."""

from __future__ import annotations

from typing import Any

import attrs

from gateway.core.events import MarketEvent, MiniTicker, RollingTicker

__all__ = ["ControlError", "ControlReply", "Event", "EventArray", "ServerShutdown",
           "UnknownEvent"]  # fmt: skip


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


Event = MarketEvent | ServerShutdown | EventArray | UnknownEvent | ControlReply | ControlError
"""Anything `decode_frame` returns."""

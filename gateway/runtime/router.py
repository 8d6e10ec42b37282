"""The router: decodes each frame once and hands the event to its symbol's actor.

The router runs synchronously inside each connection's receive loop (see
docs/architecture.md for why: a per-frame task switch alone would cost a third of
the budget). It never blocks: a live symbol actor's hot-path handler is called
directly; a symbol whose actor is restarting gets the event queued in its bounded
mailbox. Malformed frames and unknown events are counted, logged once per kind, and
skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from gateway.core.codec import decode_generic
from gateway.core.codec_wire import fast_event
from gateway.core.frames import ControlError, ControlReply, EventArray, ServerShutdown, UnknownEvent
from gateway.errors import DecodeError

if TYPE_CHECKING:
    from gateway.runtime.symbol import SymbolRuntime

log = logging.getLogger(__name__)

_MAX_KINDS = 100  # distinct unknown event kinds counted by name

#: ``tap(frame, receive_ns)``: sees every raw frame before it is decoded (see `Router`).
FrameTap: TypeAlias = Callable[[str | bytes, int], None]


class NotMarket:
    """`Router.route` found no market event in a frame (malformed, unknown, unrouted): no
    proof that the connection's streams are alive."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_MARKET"


NOT_MARKET = NotMarket()

#: What `Router.route` hands back to its connection: None for a market event (already
#: delivered), a control reply or error, the exchange's `ServerShutdown`, or `NOT_MARKET`.
Notice: TypeAlias = ControlReply | ControlError | ServerShutdown | NotMarket | None


class Router:
    """Routes decoded events to symbol states; owns the malformed/unknown counters.

    ``frame_tap``, if set, is called by each connection with every raw frame (control
    replies included) and its receive time, before the frame is routed: recording uses
    it. It must be cheap. If it raises, the error is counted (``tap_errors``), logged
    once and given to ``on_tap_error``; the frame is still routed and nothing else
    happens. Connections read it when a session starts, so set it before connecting;
    when it is None the receive loop has no per-frame cost for it.
    """

    def __init__(self, frame_tap: FrameTap | None = None) -> None:
        self.frame_tap = frame_tap
        self.on_tap_error: Callable[[Exception], None] | None = None
        self.tap_errors = 0
        self._symbols: dict[str, SymbolRuntime] = {}
        self.frames = 0
        self.malformed = 0
        self.unknown = 0
        self.unrouted = 0
        self.unknown_kinds: Counter[str] = Counter()
        self._logged: set[str] = set()

    def attach(self, state: SymbolRuntime) -> None:
        """Start routing ``state.symbol``'s events to ``state``."""
        self._symbols[state.symbol] = state

    def detach(self, symbol: str) -> None:
        """Stop routing ``symbol`` (its events are then counted as unrouted)."""
        self._symbols.pop(symbol, None)

    def state_of(self, symbol: str) -> SymbolRuntime | None:
        """The state ``symbol`` is routed to, if any (for periodic checks, not per frame)."""
        return self._symbols.get(symbol)

    def route(self, frame: str | bytes, receive_ns: int) -> Notice:
        """Decode one frame and deliver a market event to its symbol; what is not one goes
        back to the calling connection (`Notice`). Never raises for bad input, never
        blocks."""
        self.frames += 1
        event: Any = fast_event(frame, receive_ns)  # `decode_frame`, split in its two paths
        if event is None:
            try:
                event = decode_generic(frame, receive_ns)
            except DecodeError as exc:
                self.malformed += 1
                self._log_once("malformed", "dropping malformed frame (counted): %s", exc)
                return NOT_MARKET
        state = self._symbols.get(event.symbol) if event.symbol else None
        if state is not None and type(event) is not UnknownEvent:
            state.deliver(event)
            return None
        return self._route_slow(event)

    def _route_slow(self, event: Any) -> Notice:
        kind = type(event)
        if kind is ControlReply or kind is ControlError or kind is ServerShutdown:
            return event  # type: ignore[no-any-return]
        if kind is EventArray:
            for inner in event.events:
                state = self._symbols.get(inner.symbol)
                if state is not None:
                    state.deliver(inner)
            return None
        if kind is UnknownEvent:
            self.unknown += 1
            name = str(event.raw.get("e"))[:40] if isinstance(event.raw, dict) else "array"
            if name not in self.unknown_kinds and len(self.unknown_kinds) >= _MAX_KINDS:
                name = "(other)"  # a feed inventing names must not grow this without bound
            self.unknown_kinds[name] += 1
            self._log_once(f"unknown:{name}", "skipping unknown event kind %r (counted)", name)
            return NOT_MARKET
        self.unrouted += 1
        return NOT_MARKET

    def tap_failed(self, exc: Exception) -> None:
        """The frame tap raised on one frame: count, log once, report; never fatal."""
        self.tap_errors += 1
        self._log_once("tap", "frame_tap raised %r (counted; frames still routed)", exc)
        if self.on_tap_error is not None:
            self.on_tap_error(exc)

    def _log_once(self, key: str, msg: str, *args: object) -> None:
        if key not in self._logged and len(self._logged) < 2 * _MAX_KINDS:
            self._logged.add(key)
            log.warning(msg, *args)

"""What happened during a run that the gateway's counters do not keep: every candle
close (the buffers hold only the newest), every stop-loss, every error."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

import trio

from gateway import CandleClosed, Gateway, GatewayErrorEvent, StopTriggered, Subscription

__all__ = ["RunTracker", "describe_candle", "describe_error", "describe_stop"]


def describe_candle(event: CandleClosed) -> str:
    """One line for a closed candle."""
    k = event.candle
    return (
        f"candle {event.symbol} {k.interval} closed O {k.open:.2f} H {k.high:.2f} "
        f"L {k.low:.2f} C {k.close:.2f} V {k.volume:.4g} trades {k.trade_count}"
    )


def describe_stop(event: StopTriggered) -> str:
    """One line for a fired stop-loss."""
    return (
        f"stop-loss {event.symbol} {event.position_id} {event.side} "
        f"stop {event.stop_price:.2f} fired at {event.trigger_price:.2f}"
    )


def describe_error(event: GatewayErrorEvent) -> str:
    """One line for an error the gateway reported (and survived, unless it was final)."""
    where = f" {event.symbol}" if event.symbol else ""
    return f"error {event.source}{where}: {event.error!r}"


class RunTracker:
    """Counts candle closes per symbol and interval, keeps stop-losses and errors.

    `run` drains a subscription for these (low-volume) kinds; ``on_line`` sees one
    line per event as it is taken (the plain output prints them).
    """

    def __init__(self, on_line: Callable[[str], None] | None = None, recent: int = 8) -> None:
        self.candles_closed: Counter[tuple[str, str]] = Counter()
        self.closed_total: Counter[str] = Counter()  #: per symbol, all intervals
        self.stops: list[StopTriggered] = []
        self.errors: list[str] = []
        self.recent: deque[str] = deque(maxlen=recent)
        self.on_line = on_line
        self._sub: Subscription | None = None

    def take(self, event: object) -> None:
        """Account for one event."""
        if isinstance(event, CandleClosed):
            self.candles_closed[event.symbol, event.candle.interval] += 1
            self.closed_total[event.symbol] += 1
            line = describe_candle(event)
        elif isinstance(event, StopTriggered):
            self.stops.append(event)
            line = describe_stop(event)
            self.recent.append(line)
        elif isinstance(event, GatewayErrorEvent):
            line = describe_error(event)
            self.errors.append(line)
            self.recent.append(line)
        else:
            return
        if self.on_line is not None:
            self.on_line(line)

    def closed(self, symbol: str, interval: str) -> int:
        """Candles of ``symbol`` at ``interval`` closed so far."""
        return self.candles_closed[symbol, interval]

    def note(self, line: str) -> None:
        """Keep a line of the run's own (the demo's, say) among the recent events."""
        self.recent.append(line)

    def attach(self, gw: Gateway) -> None:
        """Subscribe to ``gw``'s candle closes, stop-losses and errors (before it streams)."""
        kinds = (CandleClosed, StopTriggered, GatewayErrorEvent)
        self._sub = gw.subscribe(None, kinds, buffer=100_000)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take every event of the attached subscription until cancelled."""
        task_status.started()
        async for event in self._subscription():
            self.take(event)

    def take_pending(self) -> None:
        """Take the events already queued, without waiting (before a final summary)."""
        sub = self._subscription()
        while True:
            try:
                self.take(sub.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    def close(self) -> None:
        """Stop the subscription (idempotent)."""
        if self._sub is not None:
            self._sub.close()

    def _subscription(self) -> Subscription:
        if self._sub is None:
            raise RuntimeError("RunTracker.attach(gateway) first")
        return self._sub

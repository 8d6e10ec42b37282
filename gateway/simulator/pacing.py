"""Pacing: the task that drives the market at a rate, as fast as possible, or not at all.

At a rate, each tick (``tick_interval``) generates the trades due since the last one as
one burst, so a high rate costs one wake-up per tick, not one per message. As fast as
possible, bursts of ``max_burst`` trades follow each other as long as every client's
buffer has room (a client that takes no frames for a while is disconnected).
"""

from __future__ import annotations

import trio

from gateway.simulator.clock import EventClock
from gateway.simulator.config import Pacing, SimulatorConfig
from gateway.simulator.hub import Hub
from gateway.simulator.market import Market

__all__ = ["run_pacing"]

_SLOW_CLIENT_TIMEOUT = 5.0


async def run_pacing(config: SimulatorConfig, market: Market, hub: Hub, clock: EventClock) -> None:
    """Drive ``market`` per ``config.pacing`` until cancelled (returns at once for manual
    and replay pacing, where the market only moves on request)."""
    if config.pacing is Pacing.RATE:
        await _at_rate(config, market, hub, clock)
    elif config.pacing is Pacing.MAX:
        await _as_fast_as_possible(config, market, hub, clock)


async def _at_rate(config: SimulatorConfig, market: Market, hub: Hub, clock: EventClock) -> None:
    tick, rate = config.tick_interval, config.rate
    last = next_at = trio.current_time()
    due = 0.0
    while True:
        now = trio.current_time()
        due = min(due + rate * (now - last), rate * 0.25 + 1)  # no catch-up storm after a pause
        last = now
        n = int(due)
        before = market.trades_total
        hub.publish(market.generate(clock.now_us(), n, hub.subscribers), now)
        due -= market.trades_total - before
        next_at += tick
        if next_at < now:
            next_at = now + tick
        await trio.sleep_until(next_at)


async def _as_fast_as_possible(
    config: SimulatorConfig, market: Market, hub: Hub, clock: EventClock
) -> None:
    while True:
        if not hub.subscribers:
            await hub.changed.wait()
            continue
        await hub.wait_room(_SLOW_CLIENT_TIMEOUT)
        out = market.generate(clock.now_us(), config.max_burst, hub.subscribers)
        hub.publish(out, trio.current_time())
        await trio.lowlevel.checkpoint()

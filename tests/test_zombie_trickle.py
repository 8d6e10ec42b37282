"""A zombie connection that still forwards a trickle of non-market frames (unknown
events) is replaced: only market frames are proof of life (found by the chaos soak)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from gateway import Gateway, Trade, open_gateway
from gateway.simulator import Simulator, open_simulator
from tests._simclient import bounded


@asynccontextmanager
async def zombie_after_armed() -> AsyncIterator[tuple[Simulator, Gateway]]:
    """A flowing exchange and gateway; after 10 s of market time (both trade streams
    armed) the exchange goes zombie on the gateway's connection."""
    async with open_simulator(symbols=("BTCUSDT", "ETHUSDT"), clock="virtual",
                              rate=200.0) as sim, open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, symbols=["BTCUSDT", "ETHUSDT"],
        streams=("trade", "aggTrade"), silence_timeout=5.0, trade_silence_floor=5.0,
    ) as gw:  # fmt: skip
        await trio.sleep(10)  # market time passing, under the MockClock
        sim.control.zombie()
        yield sim, gw


@bounded(200)
async def test_a_zombie_with_a_trickle_of_unknown_events_is_replaced(
    autojump_clock: object,
) -> None:
    async with zombie_after_armed() as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=100) as sub:
            with trio.move_on_after(60) as scope:
                for _ in range(20):  # the trickle: one unknown event every 3 s
                    sim.control.send_unknown_event("BTCUSDT")
                    with trio.move_on_after(3):
                        await sub.receive()
                        break
        assert not scope.cancelled_caught, "no live trade within 60 s of the zombie"
        assert gw._connections[0].snapshot().zombie_replacements == 1


@bounded(200)
async def test_a_zombie_without_a_trickle_is_replaced_within_seconds(
    autojump_clock: object,
) -> None:
    """The control case of the finding above: the same zombie, no trickle."""
    async with zombie_after_armed() as (_sim, gw):
        t0 = trio.current_time()
        with gw.subscribe("BTCUSDT", Trade, buffer=100) as sub, trio.fail_after(30):
            await sub.receive()
        assert trio.current_time() - t0 < 30
        assert gw._connections[0].snapshot().zombie_replacements == 1

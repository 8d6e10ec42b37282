"""A gateway against the embedded exchange on loopback, and ways to read what it published.

Shared by the end-to-end tests (`test_gateway.py`, `test_failure_table.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from gateway import Gateway, open_gateway
from gateway.simulator import Simulator, open_simulator

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


@asynccontextmanager
async def exchange_and_gateway(
    sim_options: dict[str, Any] | None = None, **gateway_options: Any
) -> AsyncIterator[tuple[Simulator, Gateway]]:
    """A manually paced, virtual-clock exchange and a gateway connected to it."""
    options = {"symbols": SYMBOLS, "seed": 7, "clock": "virtual", "pacing": "manual"}
    options.update(sim_options or {})
    async with open_simulator(**options) as sim:
        gateway_options.setdefault("symbols", options["symbols"])
        gateway_options.setdefault("reconnect", None)
        if gateway_options["reconnect"] is None:
            del gateway_options["reconnect"]
        async with open_gateway(url=sim.ws_url, rest_url=sim.rest_url, **gateway_options) as gw:
            yield sim, gw


def queued(sub: Any) -> list[Any]:
    """Whatever is queued in ``sub`` right now (empty list if nothing)."""
    try:
        return list(sub.drain_nowait(100_000))
    except trio.WouldBlock:
        return []


async def drain(sub: Any, count: int) -> list[Any]:
    """Receive exactly ``count`` events (bounded in time)."""
    out = []
    with trio.fail_after(60):
        while len(out) < count:
            out.append(await sub.receive())
    return out

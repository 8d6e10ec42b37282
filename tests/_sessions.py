"""The exchange and gateway of the connection-level tests (`test_connection.py`,
`test_control_channel.py`, `test_watchdog.py`, `test_rotation.py`): three symbols on a
seeded, manually paced, virtual-clock exchange, and a gateway on it that reports every
error to a list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from gateway import Gateway, Trade, open_gateway
from gateway.simulator import Simulator, open_simulator

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
SIM = {"symbols": SYMBOLS, "seed": 11, "clock": "virtual", "pacing": "manual"}


@asynccontextmanager
async def exchange(**options: Any) -> AsyncIterator[Simulator]:
    async with open_simulator(**{**SIM, **options}) as sim:
        yield sim


@asynccontextmanager
async def gateway(sim: Simulator, errors: list[BaseException], **options: Any) -> AsyncIterator[
    Gateway
]:
    options.setdefault("symbols", SYMBOLS)
    options.setdefault("check_symbols", False)  # symbols beyond the listing stream on demand
    async with open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, on_error=errors.append, **options
    ) as gw:
        yield gw


async def streams_again(sim: Simulator, gw: Gateway, symbol: str = "BTCUSDT") -> None:
    """A trade injected now reaches a subscriber: the gateway is up and streaming."""
    await gw._connections[0].wait_live()
    with gw.subscribe(symbol, Trade, buffer=100) as sub:
        tid = sim.control.inject_trade(symbol, 123.0, 1.0)
        with trio.fail_after(30):
            trade = await sub.receive()
    assert (trade.trade_id, trade.price) == (tid, 123.0)

"""Review findings on connections: each test failed before its fix."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from gateway import AggTrade, StreamRefused, open_gateway
from gateway.runtime.connection import REFUSED_RETRY
from gateway.simulator import open_simulator
from tests._loopback import drain

SYMBOLS = ("BTCUSDT", "ETHUSDT")
SIM = {"symbols": SYMBOLS, "seed": 11, "clock": "virtual", "pacing": "manual"}


async def test_a_refused_stream_of_a_removed_symbol_is_never_asked_for_again(
    autojump_clock: MockClock,
) -> None:
    errors: list[Any] = []
    async with open_simulator(**SIM) as sim, open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, on_error=errors.append, symbols=SYMBOLS,
        streams=("aggTrade",), check_symbols=False,
    ) as gw:  # fmt: skip
        with gw.subscribe("ETHUSDT", StreamRefused, buffer=10) as refused:
            with gw.subscribe("ETHUSDT", AggTrade, buffer=10) as sub:
                sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                await drain(sub, 1)
            sim.control.refuse_streams(["ethusdt@aggTrade"])
            sim.control.close_connections(abrupt=True)
            await drain(refused, 1)
        conn = gw._connections[0]
        await gw.remove_symbols(["ETHUSDT"])
        sim.control.accept_streams(["ethusdt@aggTrade"])
        await trio.sleep(REFUSED_RETRY.ceiling(2) + 5)
        assert "ethusdt@aggTrade" not in conn.streams
        assert "ethusdt@aggTrade" not in conn.refused
        assert conn.snapshot().refusal_retries == 0

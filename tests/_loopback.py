"""A gateway against the embedded exchange on loopback, and ways to read what it published.

Shared by the end-to-end tests (`test_gateway.py`, `test_failure_table.py` and others),
with two loopback stand-ins for an exchange that is not there: a dead port, and a
listener that reads one HTTP request head.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from gateway import Gateway, open_gateway
from gateway.simulator import Simulator, open_simulator

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def exchange(sim_options: dict[str, Any] | None = None) -> AbstractAsyncContextManager[Simulator]:
    """A manually paced, seeded, virtual-clock exchange (``sim_options`` override)."""
    options: dict[str, Any] = {"symbols": SYMBOLS, "seed": 7, "clock": "virtual"}
    options.update({"pacing": "manual", **(sim_options or {})})
    return open_simulator(**options)


@asynccontextmanager
async def exchange_and_gateway(
    sim_options: dict[str, Any] | None = None, **gateway_options: Any
) -> AsyncIterator[tuple[Simulator, Gateway]]:
    """An `exchange` and a gateway connected to it."""
    async with exchange(sim_options) as sim:
        gateway_options.setdefault("symbols", sim.config.symbols)
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
    out: list[Any] = []
    with trio.fail_after(60):
        while len(out) < count:
            out.append(await sub.receive())
    return out


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def read_request_head(stream: trio.abc.ReceiveStream, limit: float = 5) -> bytes:
    """An HTTP request's head from ``stream``, up to the blank line (or what came before
    the peer stopped, or ``limit`` seconds passed)."""
    data = b""
    with trio.move_on_after(limit):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    return data


async def flow(sim: Any, seconds: float) -> None:
    """Let the manual-paced exchange trade and tick for ``seconds`` (4 steps a second)."""
    for _ in range(int(seconds * 4)):
        sim.control.generate(trades=2)
        sim.control.tick()
        await trio.sleep(0.25)

"""The gateway's WebSocket opener (`gateway.runtime.websocket.open_websocket`): a server
ping that arrives during our close handshake (trio-websocket #184) is skipped, as RFC 6455
allows, where plain trio-websocket fails. The gateway end to end under the same fault is
in tests/test_connection.py (section 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio_websocket
import wsproto.utilities
from trio.testing import MockClock

from gateway.runtime.websocket import open_websocket
from gateway.simulator import Simulator, open_simulator


@asynccontextmanager
async def exchange() -> AsyncIterator[Simulator]:
    async with open_simulator(symbols=("BTCUSDT",), seed=11, clock="virtual",
                              pacing="manual") as sim:  # fmt: skip
        yield sim


async def test_the_exchange_can_ping_during_a_close_and_it_trips_plain_trio_websocket(
    autojump_clock: MockClock,
) -> None:
    # The fault is real: unguarded trio-websocket 0.12.2 fails exactly as #184 says.
    async with exchange() as sim:
        sim.control.ping_before_close_reply(3)
        with pytest.RaisesGroup(
            pytest.RaisesExc(wsproto.utilities.LocalProtocolError, match="LOCAL_CLOSING"),
            flatten_subgroups=True,
        ):
            async with trio.open_nursery() as nursery:
                stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, "127.0.0.1", "/stream?streams=btcusdt@trade"
                )
                await ws.aclose()


async def test_our_websocket_skips_a_ping_that_arrives_during_its_close(
    autojump_clock: MockClock,
) -> None:
    # The same fault as above, on the gateway's own opener: the close completes cleanly.
    async with exchange() as sim:
        sim.control.ping_before_close_reply(3)
        async with trio.open_nursery() as nursery:
            stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
            ws = await open_websocket(
                nursery, stream, "127.0.0.1", "/stream?streams=btcusdt@trade", None
            )
            await ws.aclose()
        assert ws.closed is not None and ws.closed.code == 1000
        with trio.fail_after(10):
            await sim.control.wait_for(lambda st: st.closes_by_code.get(1000) == 1)

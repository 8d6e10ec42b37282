"""Review findings on REST over the WebSocket port: each test failed before its fix."""

from __future__ import annotations

import logging

import pytest
import trio

from gateway.simulator import open_simulator


async def test_a_head_request_is_answered_and_the_connection_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_simulator(symbols=("BTCUSDT",)) as sim:
        port = int(sim.ws_url.rsplit(":", 1)[1])
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with trio.fail_after(10):
            await stream.send_all(b"HEAD /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            first = await stream.receive_some(4096)
            await stream.send_all(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            second = b""
            while not second.endswith(b"{}"):
                chunk = await stream.receive_some(4096)
                assert chunk, "the connection was dropped after HEAD"
                second += chunk
        await stream.aclose()
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

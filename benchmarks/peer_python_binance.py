"""Peer baseline: python-binance's socket manager consuming the same loopback feed.

Run by ``benchmarks.throughput`` in its own process (python-binance is asyncio-based):
``python -m benchmarks.peer_python_binance URL WARMUP DURATION STREAM...`` prints
``{"rate": frames_per_second}``. The client is constructed directly rather than with
``AsyncClient.create`` (which pings the real REST API), and the manager's own
per-instance ``STREAM_URL`` is pointed at the loopback feed: no code is patched.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def measure(url: str, streams: list[str], warmup: float, duration: float) -> float:
    """Frames per second received through ``multiplex_socket`` after ``warmup`` seconds."""
    from binance import AsyncClient, BinanceSocketManager  # type: ignore[import-not-found]

    client = AsyncClient()
    manager = BinanceSocketManager(client, max_queue_size=10_000)
    manager.STREAM_URL = url.rstrip("/") + "/"
    count = 0
    try:
        async with manager.multiplex_socket(streams) as socket:
            deadline = time.perf_counter() + warmup
            while time.perf_counter() < deadline:
                await socket.recv()
            start, end = time.perf_counter(), time.perf_counter() + duration
            while time.perf_counter() < end:
                await socket.recv()
                count += 1
            elapsed = time.perf_counter() - start
    finally:
        await client.close_connection()
    return count / elapsed


def main(argv: list[str]) -> int:
    """Parse ``URL WARMUP DURATION STREAM...`` and print the rate as JSON."""
    url, warmup, duration, *streams = argv
    rate = asyncio.run(asyncio.wait_for(
        measure(url, streams, float(warmup), float(duration)), float(warmup) + float(duration) + 60
    ))  # fmt: skip
    print(json.dumps({"rate": rate}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

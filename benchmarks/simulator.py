"""How fast the simulator sends trade frames to one client, next to a bare trio-websocket
send loop of the same frames, measured in the same run.

    python -m benchmarks.simulator [--rounds 3] [--frames 200000] [--symbols 100]

The receiver runs in its own process and does the least possible work (a raw socket,
WebSocket headers walked, frames counted), so the sender is what is measured. Rates are
frames per second at the receiver after a warm-up; the table shows the median of the
rounds, interleaved (simulator, baseline, simulator, ...), and the ratio.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import sys
import time
import urllib.parse
from functools import partial

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from gateway.simulator import open_simulator
from gateway.simulator.encode import Frame
from gateway.simulator.market import Market

WARMUP = 20_000


def receive(url: str, count: int) -> None:
    """Receiver process: count ``count`` frames after a warm-up; print frames/s."""
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock.sendall((f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())  # fmt: skip
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    head, _, buf = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    seen = 0
    start = 0.0
    target_total = WARMUP + count
    pos = 0
    while seen < target_total:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit(f"connection closed after {seen} frames")
        buf = buf[pos:] + chunk if pos < len(buf) else chunk
        pos = 0
        n = len(buf)
        while pos + 2 <= n:
            length = buf[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if pos + 4 > n:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                header = 4
            elif length == 127:
                if pos + 10 > n:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                header = 10
            if pos + header + length > n:
                break
            if buf[pos] & 0x0F == 1:
                seen += 1
                if seen == WARMUP:
                    start = time.perf_counter()
            pos += header + length
    elapsed = time.perf_counter() - start
    sock.close()
    print(f"{count / elapsed:.0f}", flush=True)


async def _run_receiver(url: str, count: int) -> float:
    result = await trio.run_process(
        [sys.executable, "-m", "benchmarks.simulator", "--receive", url, str(count)],
        capture_stdout=True,
    )
    return float(result.stdout.decode().strip())


def _symbols(n: int) -> list[str]:
    return [f"SYM{i:03d}USDT" for i in range(n)]


async def simulator_round(symbols: list[str], count: int) -> float:
    """Frames/s the simulator sends (as fast as possible) to one client."""
    async with open_simulator(symbols=symbols, pacing="max", rest=False, max_burst=2000,
                              client_buffer_frames=200_000) as sim:  # fmt: skip
        url = sim.stream_url([f"{s.lower()}@trade" for s in symbols])
        return await _run_receiver(url, count)


async def baseline_round(frames: list[str], count: int) -> float:
    """Frames/s of a bare trio-websocket server sending the same texts in a loop."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                for text in frames:
                    await ws.send_message(text)
        except ConnectionClosed:
            return

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve_websocket, handler, "127.0.0.1", 0, None))
        rate = await _run_receiver(f"ws://127.0.0.1:{server.port}/stream", count)
        nursery.cancel_scope.cancel()
    return rate


def _frames(symbols: list[str], n: int) -> list[str]:
    market = Market(symbols=tuple(symbols), seed=0, now_us=1_767_225_600_000_000)
    wanted = {f"{s.lower()}@trade" for s in symbols}
    out = market.generate(1_767_225_600_100_000, n, wanted)
    return [Frame(*e).text(True, False).decode() for e in out if e[1] == "trade"]


async def main(rounds: int, count: int, n_symbols: int) -> None:
    symbols = _symbols(n_symbols)
    frames = _frames(symbols, 20_000)
    sim_rates, base_rates = [], []
    with trio.fail_after(60):
        for _ in range(rounds):
            sim_rates.append(await simulator_round(symbols, count))
            base_rates.append(await baseline_round(frames, count))
    sim, base = statistics.median(sim_rates), statistics.median(base_rates)
    print(f"trade frames to one client over loopback, {n_symbols} symbols, {count} frames "
          f"after {WARMUP} warm-up, median of {rounds} rounds")  # fmt: skip
    print(f"{'sender':<34}{'frames/s':>12}{'rounds':>40}")
    print(f"{'simulator (pacing=max)':<34}{sim:>12,.0f}{[round(r) for r in sim_rates]!s:>40}")
    print(f"{'bare trio-websocket send loop':<34}{base:>12,.0f}"
          f"{[round(r) for r in base_rates]!s:>40}")  # fmt: skip
    print(f"{'ratio simulator / baseline':<34}{sim / base:>12.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--receive", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.receive:
        receive(ns.receive[0], int(ns.receive[1]))
    else:
        trio.run(main, ns.rounds, ns.frames, ns.symbols)

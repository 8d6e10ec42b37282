"""A pre-rendered trade feed: the simulator's market, encoded once, served at almost no
cost per frame, so that the receiving side is what a benchmark measures.

Run: ``python -m benchmarks.feed_server --symbols 100 --pacing max`` (prints
``ws_url=ws://127.0.0.1:PORT``; Ctrl-C / SIGINT stops it).

Why: the embedded simulator generates each trade when it sends it (order book, candles,
encoding: about 30 µs of Python per trade), so on a 2-core machine it cannot send much
faster than 15-20k trades/s, below what a trio-websocket client can take (~57k/s).
This server renders ``--frames`` trade frames with the simulator's own `Market` and
encoders before it listens, then loops over them: in ``max`` pacing it writes batches
of 256 frames back to back, in ``rate`` pacing it writes the frames due every
``--tick`` seconds, in ``backlog`` pacing it writes every rendered frame in one go (a
blob of megabytes per pass, the way a socket's buffer fills after a network hiccup).
The event and trade times of each batch are patched to the send
time (a fixed-width placeholder replaced with one ``bytes.replace``), in the
connection's time unit (``?timeUnit=MICROSECOND`` or milliseconds), so exchange-to-
receive latency stays meaningful, and the trade ids are rewritten on every pass so that
each symbol's ids keep increasing by one (the gateway drops a repeated id as a
duplicate). SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS get their normal replies, and each
client gets the frames of the streams it subscribed to (or named in ``?streams=``)
and nothing else, so that a gateway spreading its streams over several connections
gets each frame once.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import time
import urllib.parse
from functools import partial

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from benchmarks.harness import symbol_names
from benchmarks.recorded_feed import Recorded
from gateway.simulator.connection import _send_bytes
from gateway.simulator.encode import Frame, ws_frame
from gateway.simulator.market import Market

#: Placeholder event time in µs: 16 digits, like a real µs timestamp (so lengths hold).
_TOKEN_US = 1_111_111_111_111_111
_BATCH = 256


#: Trade ids are sent as 13 digits (fixed width, so the frame lengths hold).
_ID_BASE = 10**12


class Wanted:
    """The symbols (indices) one client subscribed to; frames are sent once it has any."""

    def __init__(self, index: dict[str, int]) -> None:
        self._index = index
        self.symbols: set[int] = set()
        self.any = trio.Event()

    def __contains__(self, sym: int) -> bool:
        return sym in self.symbols

    def change(self, streams: object, add: bool) -> None:
        """Apply SUBSCRIBE (``add``) or UNSUBSCRIBE of ``streams`` (by symbol)."""
        for stream in streams if isinstance(streams, list) else ():
            sym = self._index.get(str(stream).partition("@")[0])
            if sym is not None:
                (self.symbols.add if add else self.symbols.discard)(sym)
        if self.symbols:
            self.any.set()


class Rendered:
    """Pre-rendered trade frames whose trade ids are rewritten on each pass over them.

    The gateway drops a trade whose id it has already seen (a duplicate), so a feed
    that loops over the same frames must keep every symbol's ids increasing and
    contiguous: pass ``k`` sends local id ``i`` of a symbol with ``count`` frames as
    ``_ID_BASE + k * count + i``. The rewrite is a slice per frame (~0.3 µs).
    """

    def __init__(self, frames: list[bytes], offsets: list[int], syms: list[int],
                 local: list[int], counts: list[int]) -> None:  # fmt: skip
        self.frames, self.offsets, self.syms, self.local, self.counts = (
            frames, offsets, syms, local, counts,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.frames)

    def span(self, start: int, end: int, loop: int, wanted: Wanted) -> bytes:
        """Frames ``start:end`` of pass ``loop`` of the symbols in ``wanted``, joined."""
        frames, offsets, syms, local, counts = (
            self.frames, self.offsets, self.syms, self.local, self.counts,
        )  # fmt: skip
        parts = []
        for i in range(start, end):
            if syms[i] not in wanted:
                continue
            f, off = frames[i], offsets[i]
            tid = _ID_BASE + loop * counts[syms[i]] + local[i]
            parts.append(b"%s%013d%s" % (f[:off], tid, f[off + 13 :]))
        return b"".join(parts)


def render(symbols: int, frames: int, seed: int, micros: bool) -> Rendered:
    """``frames`` complete WebSocket frames of combined trade events, round-robin over
    ``symbols`` symbols, with the placeholder time in them and rewritable trade ids."""
    names = symbol_names(symbols)
    market = Market(
        symbols=tuple(names), seed=seed, start_price=100.0, tick_size=0.01, volatility=0.0002,
        book_levels=100, agg_history=16, kline_history=4, now_us=_TOKEN_US,
    )  # fmt: skip
    wanted = {f"{s.lower()}@trade" for s in names}
    index = {s.lower(): i for i, s in enumerate(names)}
    out: list[bytes] = []
    offsets: list[int] = []
    syms: list[int] = []
    local: list[int] = []
    counts = [0] * len(names)
    for _ in range(frames):  # bounded: each round adds at least one frame
        if len(out) >= frames:
            break
        for stream, kind, record in market.generate(_TOKEN_US, 100, wanted):
            text = Frame(stream, kind, record).text(True, micros)
            start = text.index(b'"t":') + 4
            end = text.index(b",", start)
            sym = index[stream.partition("@")[0]]
            text = b"%s%013d%s" % (text[:start], _ID_BASE + counts[sym], text[end:])
            wire = ws_frame(text)
            offsets.append(len(wire) - len(text) + start)
            out.append(wire)
            syms.append(sym)
            local.append(counts[sym])
            counts[sym] += 1
            if len(out) >= frames:
                break
    return Rendered(out, offsets, syms, local, counts)


class Feed:
    """The rendered frames (per time unit) and how to pace them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._frames: dict[bool, Rendered | Recorded] = {}
        self._index = {s.lower(): i for i, s in enumerate(symbol_names(args.symbols))}

    def frames(self, micros: bool) -> Rendered | Recorded:
        """The rendered frames for a time unit (rendered on first use)."""
        if micros not in self._frames:
            a = self.args
            if a.frames_from == "recorded":
                names = [s.lower() for s in symbol_names(a.symbols)]
                token = _TOKEN_US if micros else _TOKEN_US // 1000
                self._frames[micros] = Recorded(names, a.frames, token, micros)
            else:
                self._frames[micros] = render(a.symbols, a.frames, a.seed, micros)
        return self._frames[micros]

    async def handler(self, request: WebSocketRequest) -> None:
        """Serve one client until it goes away."""
        micros = "timeunit=microsecond" in request.path.lower()
        wanted = Wanted(self._index)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
        wanted.change([s for v in query.get("streams", []) for s in v.split("/")], True)
        ws = await request.accept()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._replies, ws, wanted)
                await wanted.any.wait()
                await self._write(ws, self.frames(micros), micros, wanted)
        except* (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away: this connection is done, the server goes on

    async def _replies(self, ws: WebSocketConnection, wanted: Wanted) -> None:
        while True:
            message = await ws.get_message()
            try:
                request = orjson.loads(message)
                rid, method = request["id"], request["method"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
            if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                wanted.change(request.get("params"), method == "SUBSCRIBE")
            result = [] if method == "LIST_SUBSCRIPTIONS" else None
            await ws.send_message(orjson.dumps({"result": result, "id": rid}).decode())

    async def _write(
        self, ws: WebSocketConnection, frames: Rendered | Recorded, micros: bool, wanted: Wanted
    ) -> None:
        token = str(_TOKEN_US if micros else _TOKEN_US // 1000).encode()
        div = 1000 if micros else 1_000_000
        n = len(frames)
        if self.args.pacing == "backlog":
            # The whole rendered backlog in one write per pass, as a socket fills after a
            # network hiccup: the client finds thousands of frames waiting at once.
            for loop in itertools.count():
                now = str(time.time_ns() // div).encode()
                await _send_bytes(ws, frames.span(0, n, loop, wanted).replace(token, now))
            return
        if self.args.pacing == "max":
            for loop in itertools.count():
                for start in range(0, n, _BATCH):
                    batch = frames.span(start, min(start + _BATCH, n), loop, wanted)
                    now = str(time.time_ns() // div).encode()
                    await _send_bytes(ws, batch.replace(token, now))
            return
        tick, rate = self.args.tick, self.args.rate
        due = 0.0
        cursor = loop = 0
        last = next_at = trio.current_time()
        while True:
            now_t = trio.current_time()
            due = min(due + rate * (now_t - last), rate * 0.25 + 1)  # no catch-up storm
            last = now_t
            k = int(due)
            if k:
                due -= k
                parts = []
                while k:  # the chunk may wrap around into the next pass
                    end = min(cursor + k, n)
                    parts.append(frames.span(cursor, end, loop, wanted))
                    k -= end - cursor
                    cursor = end
                    if cursor == n:
                        cursor, loop = 0, loop + 1
                now = str(time.time_ns() // div).encode()
                await _send_bytes(ws, b"".join(parts).replace(token, now))
            next_at += tick
            if next_at < now_t:
                next_at = now_t + tick
            await trio.sleep_until(next_at)


async def serve(args: argparse.Namespace) -> None:
    """Render, listen on 127.0.0.1 (port 0: a free one), announce the URL, serve forever."""
    feed = Feed(args)
    feed.frames(args.micros_first)
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(serve_websocket, feed.handler, "127.0.0.1", args.port, None,
                    message_queue_size=64)
        )  # fmt: skip
        print(f"ws_url=ws://127.0.0.1:{server.port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--pacing", choices=["max", "rate", "backlog"], default="max")
    parser.add_argument("--rate", type=float, default=20_000.0, help="frames/s (rate pacing)")
    parser.add_argument("--tick", type=float, default=0.005, help="seconds between bursts")
    parser.add_argument("--frames", type=int, default=50_000, help="distinct frames rendered")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--frames-from", choices=["simulator", "recorded"], default="simulator",
        help="trade frames of the simulator's market, or the real recordings looped "
             "(benchmarks.recorded_feed: depth, book tickers, klines, aggregate trades)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--millis-first", dest="micros_first", action="store_false",
        help="render the millisecond frames before listening (default: microsecond)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        trio.run(serve, args)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        _, rest = group.split(KeyboardInterrupt)
        if rest is not None:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

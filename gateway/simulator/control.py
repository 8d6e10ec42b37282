"""`SimulatorControl`: what tests and the command line can do to a running exchange.

Market flow on request (manual pacing), exact trades, arbitrary frames, fault injection
and counters. Every method is synchronous and takes effect at once (frames are queued in
order with the market's own), except the ``wait_*`` helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import orjson
import trio

from gateway.simulator.clock import EventClock
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.connection import WebSocketSide
from gateway.simulator.encode import Frame
from gateway.simulator.hub import Hub, SimulatorStats, SubscribeFault
from gateway.simulator.market import Market
from gateway.simulator.rest import RestFault, RestRequest, RestSide

__all__ = ["MALFORMED_FRAME", "SimulatorControl"]

#: The frame `send_malformed` sends: a combined trade frame cut off mid-way.
MALFORMED_FRAME = '{"stream":"btcusdt@trade","data":{"e":"trade","E":17672256'


class SimulatorControl:
    """Faults, injections and stats of one running simulator (see module docstring)."""

    def __init__(
        self, config: SimulatorConfig, market: Market, hub: Hub, ws: WebSocketSide,
        clock: EventClock, replay_done: trio.Event, rest: RestSide | None = None,
    ) -> None:  # fmt: skip
        self._config, self._market, self._hub, self._ws = config, market, hub, ws
        self._rest = rest if rest is not None else RestSide()
        self._clock = clock
        self._replay_done = replay_done

    # --- market flow -------------------------------------------------------------------
    def generate(self, trades: int = 1, symbol: str | None = None) -> int:
        """Make at least ``trades`` random trades now (round-robin, or on ``symbol``);
        returns how many were made (a taker order fills one to three trades)."""
        before = self._market.trades_total
        out = self._market.generate(self._clock.now_us(), trades, self._hub.subscribers, symbol)
        self._hub.publish(out, trio.current_time())
        return self._market.trades_total - before

    def tick(self) -> None:
        """Run the time-driven work due now: candle closes, depth, tickers, open klines."""
        self._hub.publish(self._market.tick(self._clock.now_us(), self._hub.subscribers),
                          trio.current_time())  # fmt: skip

    def inject_trade(
        self, symbol: str, price: float, quantity: float, *, is_buy: bool | None = None
    ) -> int:
        """One trade at exactly ``price`` x ``quantity`` through the normal flow (the book
        moves there, klines and tickers include it); returns its trade id.

        Raises ValueError if the price is off the tick grid or the quantity not positive.
        """
        tid, out = self._market.inject_trade(symbol, price, quantity, self._clock.now_us(),
                                             self._hub.subscribers, is_buy)  # fmt: skip
        self._hub.publish(out, trio.current_time())
        return tid

    # --- frames ------------------------------------------------------------------------
    def send_raw(self, text: str | bytes, *, connection: int | None = None) -> int:
        """Send ``text`` as one text frame to every connection (or one); returns how many."""
        return self._hub.send_text(text, connection)

    def send_malformed(self, *, connection: int | None = None) -> int:
        """Send `MALFORMED_FRAME` (invalid JSON) to every connection (or one)."""
        return self._hub.send_text(MALFORMED_FRAME, connection)

    def send_unknown_event(self, symbol: str = "BTCUSDT", *, connection: int | None = None) -> int:
        """Send a well-formed event of a kind no client knows (``e: "futureEvent"``), raw or
        combined per connection, on stream ``<symbol>@futureStream``."""
        data = orjson.dumps({"e": "futureEvent", "E": self._clock.now_us() // 1000,
                             "s": symbol.upper(), "z": 1})  # fmt: skip
        frame = Frame(f"{symbol.lower()}@futureStream", "raw", (data, None))
        return self._hub.send_frame(frame, connection)

    def send_wrong_types(self, symbol: str = "BTCUSDT", *, connection: int | None = None) -> int:
        """Send a trade event of ``symbol`` whose fields have the wrong JSON types (the
        trade id a string, the price a number, the time a list): a decoder must reject
        it, not take it for a trade. Raw or combined per connection; returns how many."""
        data = orjson.dumps({"e": "trade", "E": self._clock.now_us() // 1000,
                             "s": symbol.upper(), "t": "not-an-id", "p": 1.5, "q": None,
                             "T": [1], "m": "yes", "M": True})  # fmt: skip
        frame = Frame(f"{symbol.lower()}@trade", "raw", (data, None))
        return self._hub.send_frame(frame, connection)

    def send_oversized(self, size: int | None = None, *, connection: int | None = None) -> int:
        """Send one text frame of ``size`` bytes (default: the configured
        ``max_message_size`` plus one KiB), a well-formed JSON object padded with spaces:
        bigger than a client accepts. Returns how many connections got it."""
        n = self._config.max_message_size + 1024 if size is None else size
        head = b'{"stream":"oversized","data":{"e":"oversized"}}'
        return self._hub.send_text(head + b" " * max(0, n - len(head)), connection)

    def send_server_shutdown(self, *, connection: int | None = None) -> int:
        """Send the ``serverShutdown`` event (as before a lifetime close with
        ``shutdown_notice``) to every connection (or one) now, without closing them;
        `expire_connections` does the close. Returns how many."""
        targets = self._hub.targets(connection)
        for s in targets:
            data = orjson.dumps({"e": "serverShutdown",
                                 "E": self._clock.now_us() // (1 if s.micros else 1000)})
            if s.combined:
                data = b'{"stream":"!serverShutdown","data":' + data + b"}"
            s.push_json(data)
        return len(targets)

    def expire_connections(self, *, connection: int | None = None) -> int:
        """Close every connection (or one) now as its 24-hour lifetime would: code 1000,
        "Connection lifetime expired". Returns how many."""
        return self.close_connections(1000, "Connection lifetime expired", connection=connection)

    # --- faults ------------------------------------------------------------------------
    def close_connections(
        self, code: int = 1000, reason: str = "", *, abrupt: bool = False,
        connection: int | None = None,
    ) -> int:  # fmt: skip
        """Close every connection (or one) with ``code``/``reason``, or drop the TCP
        connection without a close frame when ``abrupt``; returns how many."""
        targets = self._hub.targets(connection)
        for s in targets:
            s.request_close(code, reason, abrupt)
        return len(targets)

    def stall(self, seconds: float = math.inf, *, pings: bool = True) -> None:
        """Stop sending market frames for ``seconds`` (frames of the stall are lost);
        sockets stay open and pings continue, unless ``pings`` is False (a silent stall:
        no server ping either, so only the client's own silence check can notice)."""
        self._hub.stall_until = trio.current_time() + seconds
        if not pings:
            self._hub.pings_paused_until = self._hub.stall_until

    def resume(self) -> None:
        """End a stall (and its pause of pings) or a delay now."""
        self._hub.stall_until = self._hub.delay_until = self._hub.pings_paused_until = -1.0

    def delay_frames(self, seconds: float) -> None:
        """Hold every outgoing frame for ``seconds``, then send them all (a latency spike)."""
        self._hub.delay_until = trio.current_time() + seconds

    def duplicate_frames(self, count: int) -> None:
        """Send each of the next ``count`` market frames twice."""
        self._hub.duplicate_left += count

    def drop_trades(self, symbol: str, count: int) -> range:
        """Do not send the next ``count`` trades of ``symbol`` (and aggTrades holding them):
        a gap in the ids. REST (aggTrades, historicalTrades) still has them, for backfill.
        Returns the ids."""
        sym = self._market.symbol(symbol)
        ids = range(sym.next_trade_id, sym.next_trade_id + count)
        self._hub.drops.setdefault(sym.name, []).append(ids)
        return ids

    def close_on_subscribe(
        self, code: int = 1008, reason: str = "Too many requests", *, count: int = 1
    ) -> None:
        """Answer each of the next ``count`` SUBSCRIBE frames (any connection) by closing
        that connection with ``code``/``reason`` instead of a reply: Binance's rate
        penalty is 1008 "Too many requests"."""
        self._hub.subscribe_faults.extend([SubscribeFault("close", code, reason)] * count)

    def reset_on_subscribe(self, *, count: int = 1) -> None:
        """Drop the TCP connection (no close frame) on each of the next ``count``
        SUBSCRIBE frames, as a reset during (re)subscription."""
        self._hub.subscribe_faults.extend([SubscribeFault("reset")] * count)

    def ignore_subscribe(self, *, count: int = 1) -> None:
        """Subscribe but never reply to each of the next ``count`` SUBSCRIBE frames (the
        exchange's observed answer to a frame over ~4 KB)."""
        self._hub.subscribe_faults.extend([SubscribeFault("ignore")] * count)

    def refuse_streams(
        self, names: Iterable[str], code: int = 2, message: str = "Invalid request: invalid stream"
    ) -> None:
        """Refuse every SUBSCRIBE that names one of ``names`` with the error reply
        ``code``/``message`` (the whole request fails, as on the exchange)."""
        for name in names:
            self._hub.refused_streams[name] = (code, message)

    def accept_streams(self, names: Iterable[str] | None = None) -> None:
        """Stop refusing ``names`` (None: all)."""
        if names is None:
            self._hub.refused_streams.clear()
        for name in names or ():
            self._hub.refused_streams.pop(name, None)

    def ping_before_close_reply(self, count: int = 3) -> None:
        """Send ``count`` pings ahead of the reply to every client close frame (0: off):
        the peer's ping racing our close handshake (trio-websocket #184)."""
        self._hub.pings_before_close = count

    def deafen(self, *, connection: int | None = None) -> int:
        """Make every open connection (or one) deaf: it keeps sending market frames and
        pings but reads nothing (no control reply, pong or close reply). New
        connections are not affected. Returns how many."""
        targets = self._hub.targets(connection)
        for s in targets:
            s.deaf = True
        return len(targets)

    def zombie(self, *, connection: int | None = None) -> int:
        """Make every open connection (or one) a zombie: it stays open and answers pings
        and control requests but gets no market frame any more (unlike `stall`, which is
        global). New connections are not affected. Returns how many."""
        targets = self._hub.targets(connection)
        for s in targets:
            s.zombie = True
        return len(targets)

    def forget_stream(self, name: str, *, connection: int | None = None) -> int:
        """Silently drop stream ``name`` from every open connection (or one): no frame of
        it is sent and LIST_SUBSCRIPTIONS no longer lists it, as if the exchange lost the
        subscription. A new SUBSCRIBE brings it back. Returns how many connections had it."""
        targets = [s for s in self._hub.targets(connection) if name in s.streams]
        for s in targets:
            self._hub.unsubscribe(s, [name])
        return len(targets)

    def refuse_connections(self, seconds: float, status: int = 503) -> None:
        """Reject new handshakes with HTTP ``status`` for ``seconds``."""
        self._ws.refuse_until = trio.current_time() + seconds
        self._ws.refuse_status = status

    # --- REST faults -------------------------------------------------------------------
    def fail_rest(
        self, status: int = 500, count: int = 1, path: str | None = None,
        *, retry_after: float | None = None,
    ) -> None:  # fmt: skip
        """Answer the next ``count`` REST requests (to ``path`` only, e.g. ``"depth"`` or
        ``"/api/v3/depth"``; None: any) with HTTP ``status``, and a ``Retry-After``
        header of ``retry_after`` seconds if given (as a 429 or 418 has)."""
        if not 400 <= status <= 599 or count < 1:
            raise ValueError(f"fail_rest needs a 4xx/5xx status and count >= 1, got "
                             f"{status}, {count}")  # fmt: skip
        self._rest.faults.append(RestFault(status, count, _route(path), retry_after))

    def corrupt_rest(self, count: int = 1, path: str | None = None) -> None:
        """Answer the next ``count`` REST requests (to ``path``; None: any) with HTTP 200
        and a body of the wrong shape (short rows, a stray object)."""
        if count < 1:
            raise ValueError(f"corrupt_rest needs count >= 1, got {count}")
        self._rest.faults.append(RestFault(200, count, _route(path), None))

    def hang_rest(self, count: int = 1, path: str | None = None) -> None:
        """Never answer the next ``count`` REST requests (to ``path`` only) within any
        client's timeout: an hour passes first."""
        if count < 1:
            raise ValueError(f"hang_rest needs count >= 1, got {count}")
        self._rest.faults.append(RestFault(0, count, _route(path), None))

    def rest_down(self, seconds: float = math.inf) -> None:
        """Answer every REST request with 503 for ``seconds`` (the API is down behind its
        load balancer; `rest_up` ends it). A refused TCP connect is a dead port."""
        self._rest.down_until = trio.current_time() + seconds

    def rest_up(self) -> None:
        """End `rest_down` now."""
        self._rest.down_until = -math.inf

    def rest_requests(self, path: str | None = None) -> list[RestRequest]:
        """Every REST request received (to ``path`` only), oldest first, with its time
        and the status sent (the last 100,000)."""
        return self._rest.requests(_route(path))

    @property
    def rest_used_weight(self) -> int:
        """The REST weight used in the current minute (as ``X-MBX-USED-WEIGHT-1M`` says)."""
        return self._rest.used_weight

    def clear_faults(self) -> None:
        """End every lasting fault now: stalls and delays, queued SUBSCRIBE faults,
        refused streams and connections, pings before close replies, pending duplicates
        and trade drops, REST faults and downtime. Deaf and zombie connections stay so
        (close them to end that)."""
        self.resume()
        hub = self._hub
        hub.subscribe_faults.clear()
        hub.refused_streams.clear()
        hub.pings_before_close = 0
        hub.duplicate_left = 0
        hub.drops.clear()
        self._ws.refuse_until = -1.0
        self._rest.faults.clear()
        self.rest_up()

    # --- observing ---------------------------------------------------------------------
    def stats(self) -> SimulatorStats:
        """A snapshot of the counters."""
        return self._hub.stats()

    async def wait_for(self, predicate: Callable[[SimulatorStats], bool]) -> SimulatorStats:
        """Wait until ``predicate(stats)`` holds (checked on every connection or
        subscription change); bound it with ``trio.fail_after``."""
        while True:
            stats = self._hub.stats()
            if predicate(stats):
                return stats
            await self._hub.changed.wait()

    async def wait_replay_done(self) -> None:
        """Wait until the replay has published its last frame."""
        await self._replay_done.wait()


def _route(path: str | None) -> str | None:
    """``"/api/v3/depth"`` or ``"depth"`` as the route name ``"depth"``."""
    return None if path is None else path.removeprefix("/").removeprefix("api/v3/")

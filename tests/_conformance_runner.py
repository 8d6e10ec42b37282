"""One real Binance client against the embedded exchange, in its own process.

Run by `tests/_conformance.py` as ``python -m tests._conformance_runner CLIENT CONFIG``
(``CONFIG``: JSON with ``ws``, ``rest``, ``symbol``, ``ca_file``, ``timeout``). The
client is used as its users use it, unmodified: only its documented URL (and, for
TLS, certificate) settings point it at 127.0.0.1. What it receives is printed as JSON
lines on stdout (``{"kind": "trade" | "kline" | "book" | "rest" | "error" | ...}``);
the process ends when stdin is closed, or after ``timeout`` seconds at the latest.

Before any client is imported, `guard_network` makes every name lookup and every
connect to a non-loopback address fail (and report ``{"kind": "refused"}``), so a
client that reaches for the real exchange is caught, not silently sent there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, ClassVar

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_out_lock = threading.Lock()


def emit(kind: str, **data: Any) -> None:
    """One JSON line on stdout."""
    line = json.dumps({"kind": kind, **data}, default=str)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host).strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def guard_network() -> None:
    """Refuse (and report) any name lookup or connect that is not to loopback."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            emit("refused", host=str(host), call="getaddrinfo")
            raise socket.gaierror(socket.EAI_NONAME, f"conformance: {host!r} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            emit("refused", host=str(address[0]), call="connect")
            raise ConnectionRefusedError(f"conformance: {address[0]!r} is not loopback")

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def num(value: Any) -> str:
    """A price or quantity as a normalised decimal string ("95.5", not "95.50000000")."""
    d = Decimal(str(value))
    return format(d.normalize(), "f") if d else "0"


def levels(rows: Any) -> list[list[str]]:
    """Book levels (pairs of anything numeric) as normalised strings."""
    return [[num(p), num(q)] for p, q, *_ in rows]


async def rest_call(name: str, fn: Callable[[], Awaitable[Any]] | Callable[[], Any]) -> Any:
    """Run one REST call (async or blocking), reporting its result or its error."""
    try:
        result = fn()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await asyncio.wait_for(result, 15)
    except Exception as exc:  # noqa: BLE001 - reported to the test, which judges it
        emit("rest", call=name, ok=False, error=f"{type(exc).__name__}: {exc}")
        return None
    emit("rest", call=name, ok=True, data=result)
    return result


# --- python-binance -----------------------------------------------------------------------
async def python_binance(cfg: dict[str, Any]) -> None:
    from binance import AsyncClient, BinanceSocketManager, DepthCacheManager

    sym = cfg["symbol"]
    client = AsyncClient()  # create() would ping the real exchange before we can point it
    client.API_URL = cfg["rest"] + "/api"  # the documented way to use another endpoint
    try:
        await rest_call("ping", lambda: client.ping())
        await rest_call("get_recent_trades", lambda: client.get_recent_trades(symbol=sym, limit=10))
        await rest_call(
            "get_historical_trades", lambda: client.get_historical_trades(symbol=sym, limit=10)
        )
        await rest_call(
            "get_aggregate_trades", lambda: client.get_aggregate_trades(symbol=sym, limit=10)
        )
        await rest_call("get_ticker", lambda: client.get_ticker(symbol=sym))
        await rest_call("get_all_tickers", lambda: client.get_all_tickers())
        await rest_call("get_order_book", lambda: client.get_order_book(symbol=sym, limit=1000))
        await rest_call("get_klines", lambda: client.get_klines(symbol=sym, interval="1m", limit=5))
        emit("rest_done")

        bm = BinanceSocketManager(client)
        bm.STREAM_URL = cfg["ws"] + "/"  # documented: the manager's stream URL attribute

        async def trades() -> None:
            async with bm.trade_socket(sym) as ts:
                while True:
                    m = await ts.recv()
                    emit("trade", id=m["t"], price=num(m["p"]), qty=num(m["q"]))

        async def klines() -> None:
            async with bm.kline_socket(sym, interval="1m") as ks:
                while True:
                    k = (await ks.recv())["k"]
                    emit(
                        "kline",
                        t=k["t"],
                        o=num(k["o"]),
                        h=num(k["h"]),
                        l=num(k["l"]),
                        c=num(k["c"]),
                        v=num(k["v"]),
                        n=k["n"],
                        closed=k["x"],
                    )

        async def book() -> None:
            async with DepthCacheManager(
                client, symbol=sym, limit=1000, bm=bm, ws_interval=100
            ) as dcm:
                while True:
                    dc = await dcm.recv()
                    emit("book", bids=levels(dc.get_bids()), asks=levels(dc.get_asks()))

        await asyncio.gather(trades(), klines(), book())
    finally:
        await client.close_connection()


# --- binance-sdk-spot (the official connector) -------------------------------------------
async def binance_sdk_spot(cfg: dict[str, Any]) -> None:
    from binance_common.configuration import (
        ConfigurationRestAPI,
        ConfigurationWebSocketStreams,
    )
    from binance_sdk_spot.spot import Spot

    sym = cfg["symbol"]
    client = Spot(
        config_rest_api=ConfigurationRestAPI(base_path=cfg["rest"]),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=cfg["ws"]),
    )
    rest = client.rest_api

    def data(call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            d = call().data()
            if isinstance(d, list):
                return [x.to_dict() if hasattr(x, "to_dict") else x for x in d]
            return d.to_dict() if hasattr(d, "to_dict") else d

        return run

    def blocking(call: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: asyncio.get_running_loop().run_in_executor(None, data(call))

    await rest_call("ping", blocking(lambda: rest.ping()))
    await rest_call("get_trades", blocking(lambda: rest.get_trades(symbol=sym, limit=10)))
    await rest_call(
        "historical_trades", blocking(lambda: rest.historical_trades(symbol=sym, limit=10))
    )
    await rest_call("ticker24hr", blocking(lambda: rest.ticker24hr(symbol=sym)))
    await rest_call("depth", blocking(lambda: rest.depth(symbol=sym, limit=1000)))
    await rest_call("klines", blocking(lambda: rest.klines(symbol=sym, interval="1m", limit=5)))
    emit("rest_done")

    connection = await client.websocket_streams.create_connection()
    try:
        buffer: list[dict[str, Any]] = []
        book: dict[str, Any] = {}
        first_diff = asyncio.Event()

        def on_trade(m: Any) -> None:
            emit("trade", id=m.t, price=num(m.p), qty=num(m.q))

        def on_kline(m: Any) -> None:
            k = m.k
            emit(
                "kline",
                t=k.t,
                o=num(k.o),
                h=num(k.h),
                l=num(k.l),
                c=num(k.c),
                v=num(k.v),
                n=k.n,
                closed=k.x,
            )

        def on_depth(m: Any) -> None:
            buffer.append({"U": m.U, "u": m.u, "b": m.b, "a": m.a})
            first_diff.set()
            if book:
                apply_buffered(book, buffer)

        (await connection.trade(symbol=sym.lower())).on("message", on_trade)
        (await connection.kline(symbol=sym.lower(), interval="1m")).on("message", on_kline)
        (await connection.diff_book_depth(symbol=sym.lower(), update_speed="100ms")).on(
            "message", on_depth
        )
        # The SDK has no order-book helper: Binance's documented procedure (5.1) by hand.
        await first_diff.wait()
        for _ in range(20):
            snap = await asyncio.get_running_loop().run_in_executor(
                None, data(lambda: rest.depth(symbol=sym, limit=1000))
            )
            if snap["lastUpdateId"] >= buffer[0]["U"]:
                break
            await asyncio.sleep(0.2)
        book.update(id=snap["lastUpdateId"], bids=dict(snap["bids"]), asks=dict(snap["asks"]))
        apply_buffered(book, buffer)
        await asyncio.Event().wait()
    finally:
        await connection.close_connection(close_session=True)


def apply_buffered(book: dict[str, Any], buffer: list[dict[str, Any]]) -> None:
    """Binance's rule for applying diff events to a snapshot (reference 5.1), then report."""
    changed = False
    while buffer:
        ev = buffer.pop(0)
        if ev["u"] <= book["id"]:
            continue
        if ev["U"] > book["id"] + 1:
            emit("error", where="book", error=f"gap: U={ev['U']} after {book['id']}")
            return
        for side, rows in (("bids", ev["b"]), ("asks", ev["a"])):
            for p, q in rows:
                if Decimal(q) == 0:
                    book[side].pop(p, None)
                else:
                    book[side][p] = q
        book["id"] = ev["u"]
        changed = True
    if changed:
        emit(
            "book",
            id=book["id"],
            bids=levels(sorted(book["bids"].items(), key=lambda r: -Decimal(r[0]))),
            asks=levels(sorted(book["asks"].items(), key=lambda r: Decimal(r[0]))),
        )


# --- ccxt (REST) and ccxt.pro (WebSocket) ----------------------------------------------------
def ccxt_urls(cfg: dict[str, Any]) -> dict[str, Any]:
    """ccxt's documented ``urls`` override for Binance spot, REST and WebSocket."""
    return {
        "api": {
            "public": cfg["rest"] + "/api/v3",
            "private": cfg["rest"] + "/api/v3",
            "v1": cfg["rest"] + "/api/v1",
            "ws": {"spot": cfg["ws"] + "/ws", "margin": cfg["ws"] + "/ws"},
        }
    }


async def ccxt_rest(cfg: dict[str, Any]) -> None:
    import ccxt.async_support as ccxt

    ex = ccxt.binance({"urls": ccxt_urls(cfg), "options": {"fetchMarkets": {"types": ["spot"]}}})
    sym = "BTC/USDT"
    try:
        await rest_call("load_markets", lambda: _keys(ex.load_markets()))
        await rest_call("fetch_trades", lambda: ex.fetch_trades(sym, limit=10))
        for method in ("publicGetTrades",):  # historicalTrades: ccxt wants an apiKey
            await rest_call(
                f"fetch_trades/{method}",
                lambda m=method: ex.fetch_trades(sym, limit=10, params={"fetchTradesMethod": m}),
            )
        await rest_call("fetch_ticker", lambda: ex.fetch_ticker(sym))
        await rest_call("fetch_tickers", lambda: ex.fetch_tickers())
        await rest_call("fetch_order_book", lambda: ex.fetch_order_book(sym, limit=1000))
        await rest_call("fetch_ohlcv", lambda: ex.fetch_ohlcv(sym, "1m", limit=5))
        emit("rest_done")
    finally:
        await ex.close()


async def _keys(coro: Awaitable[dict[str, Any]]) -> list[str]:
    return sorted(await coro)


async def ccxt_pro(cfg: dict[str, Any]) -> None:
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binance({"urls": ccxt_urls(cfg), "options": {"fetchMarkets": {"types": ["spot"]}}})
    sym = "BTC/USDT"
    try:
        await rest_call("load_markets", lambda: _keys(ex.load_markets()))
        emit("rest_done")

        async def trades() -> None:
            while True:
                for t in await ex.watch_trades(sym):
                    emit("trade", id=int(t["id"]), price=num(t["price"]), qty=num(t["amount"]))

        async def klines() -> None:
            while True:
                for row in await ex.watch_ohlcv(sym, "1m"):
                    emit(
                        "kline",
                        t=row[0],
                        o=num(row[1]),
                        h=num(row[2]),
                        l=num(row[3]),
                        c=num(row[4]),
                        v=num(row[5]),
                    )

        async def book() -> None:
            while True:
                ob = await ex.watch_order_book(sym)
                emit("book", id=ob.get("nonce"), bids=levels(ob["bids"]), asks=levels(ob["asks"]))

        await asyncio.gather(trades(), klines(), book())
    finally:
        await ex.close()


# --- cryptofeed ----------------------------------------------------------------------------
async def cryptofeed(cfg: dict[str, Any]) -> None:
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import CANDLES, L2_BOOK, TRADES
    from cryptofeed.exchanges import Binance

    class LoopbackBinance(Binance):  # type: ignore[misc]
        """The Binance feed with loopback endpoints (cryptofeed's own extension point)."""

        websocket_endpoints: ClassVar = [WebsocketEndpoint(cfg["ws"])]
        rest_endpoints: ClassVar = [
            RestEndpoint(
                cfg["rest"],
                routes=Routes(
                    "/api/v3/exchangeInfo",
                    l2book="/api/v3/depth?symbol={}&limit={}",
                    authentication="/api/v3/userDataStream",
                ),
            )
        ]

    async def on_trade(t: Any, receipt: float) -> None:
        emit("trade", id=int(t.id), price=num(t.price), qty=num(t.amount))

    async def on_candle(c: Any, receipt: float) -> None:
        emit(
            "kline",
            t=int(c.start * 1000),
            o=num(c.open),
            h=num(c.high),
            l=num(c.low),
            c=num(c.close),
            v=num(c.volume),
            n=c.trades,
            closed=c.closed,
        )

    async def on_book(b: Any, receipt: float) -> None:
        book = b.book.to_dict()
        emit(
            "book",
            id=b.sequence_number,
            bids=levels(book["bid"].items()),
            asks=levels(book["ask"].items()),
        )

    loop = asyncio.get_running_loop()
    fh = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
    fh.add_feed(
        LoopbackBinance(
            symbols=["BTC-USDT"],
            channels=[TRADES, CANDLES, L2_BOOK],
            callbacks={TRADES: on_trade, CANDLES: on_candle, L2_BOOK: on_book},
            candle_closed_only=False,
        )
    )
    emit("rest_done")
    fh.run(start_loop=False, install_signal_handlers=False)
    try:
        await asyncio.Event().wait()
    finally:
        await fh.stop_async(loop=loop)


CLIENTS: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
    "python-binance": python_binance,
    "binance-sdk-spot": binance_sdk_spot,
    "ccxt": ccxt_rest,
    "ccxt.pro": ccxt_pro,
    "cryptofeed": cryptofeed,
}


async def _main(name: str, cfg: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def watch_stdin() -> None:
        sys.stdin.read()  # until the test closes it
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    run = asyncio.ensure_future(CLIENTS[name](cfg))
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait(
        {run, stopped}, timeout=cfg.get("timeout", 60), return_when=asyncio.FIRST_COMPLETED
    )
    if not done:
        emit("error", where="runner", error="timed out")
    if run in done and run.exception() is not None:
        exc = run.exception()
        emit("error", where="client", error="".join(traceback.format_exception(exc)))
    for task in (run, stopped):
        task.cancel()
    await asyncio.wait({run, stopped}, timeout=5)
    emit("exit")


def main() -> None:
    name, cfg = sys.argv[1], json.loads(sys.argv[2])
    if cfg.get("ca_file"):  # TLS: trust the simulator's CA (OpenSSL's and requests' settings)
        os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = cfg["ca_file"]
    guard_network()
    try:
        asyncio.run(_main(name, cfg))
    finally:
        sys.stdout.flush()
        os._exit(0)  # never wait on a client's leftover threads


if __name__ == "__main__":
    main()

"""python-binance (AsyncClient, BinanceSocketManager, DepthCacheManager), unmodified,
against the embedded exchange: only ``client.API_URL`` and ``bm.STREAM_URL`` point it at
127.0.0.1."""

from __future__ import annotations

from tests._conformance import (
    CORE_STREAMS,
    SYMBOL,
    aggs_of,
    assert_book_matches,
    assert_last_kline_matches,
    exchange,
    last_price,
    norm,
    open_client,
    require_client,
    rest_failures,
    streams_conform,
    trades_of,
    warm_up,
)

require_client("binance.ws.depthcache", "python-binance")

CALLS = ("ping", "get_recent_trades", "get_historical_trades", "get_aggregate_trades",
         "get_ticker", "get_all_tickers", "get_order_book", "get_klines")  # fmt: skip


async def test_python_binance_rest_and_streams() -> None:
    async with exchange() as sim:
        warm_up(sim)
        async with open_client("python-binance", sim) as client:
            await client.wait_for("REST calls", lambda: bool(client.of("rest_done")), 30)
            assert not rest_failures(client, CALLS), rest_failures(client, CALLS)
            # the market is quiet until the streams are up: REST must show it as it is
            want = trades_of(sim)[-10:]
            for call in ("get_recent_trades", "get_historical_trades"):
                rows = client.rest(call)["data"]
                assert [(t["id"], norm(t["price"]), norm(t["qty"])) for t in rows] == want
            rows = client.rest("get_aggregate_trades")["data"]
            assert [(t["a"], norm(t["p"]), norm(t["q"]), t["f"], t["l"]) for t in rows] == (
                aggs_of(sim)[-10:]
            )
            ticker = client.rest("get_ticker")["data"]
            assert (ticker["symbol"], norm(ticker["lastPrice"])) == (SYMBOL, last_price(sim))
            prices = {t["symbol"]: norm(t["price"]) for t in client.rest("get_all_tickers")["data"]}
            assert prices[SYMBOL] == last_price(sim) and "ETHUSDT" in prices
            book = client.rest("get_order_book")["data"]
            assert_book_matches(sim, book["lastUpdateId"], book)
            assert_last_kline_matches(sim, client.rest("get_klines")["data"][-1])
            await streams_conform(sim, client, CORE_STREAMS)

"""ccxt (REST, ``ccxt.async_support.binance``) and ccxt.pro (WebSocket,
``ccxt.pro.binance``), unmodified, against the embedded exchange: only the documented
``urls`` override (``urls['api']['public']``, ``urls['api']['ws']['spot']``) points them at
127.0.0.1, and ``options['fetchMarkets']`` keeps ``load_markets`` on spot (the futures APIs
are not simulated). The REST client is given the WebSocket port, which serves REST too."""

from __future__ import annotations

from tests._conformance import (
    CORE_STREAMS,
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

require_client("ccxt.pro", "ccxt")

REST_CALLS = ("load_markets", "fetch_trades", "fetch_trades/publicGetTrades", "fetch_ticker",
              "fetch_tickers", "fetch_order_book", "fetch_ohlcv")  # fmt: skip


async def test_ccxt_rest() -> None:
    async with exchange() as sim:
        warm_up(sim)
        async with open_client("ccxt", sim, rest_on_ws_port=True) as client:
            await client.wait_for("REST calls", lambda: bool(client.of("rest_done")), 30)
            assert not rest_failures(client, REST_CALLS), rest_failures(client, REST_CALLS)
            assert {"BTC/USDT", "ETH/USDT"} <= set(client.rest("load_markets")["data"])
            rows = client.rest("fetch_trades")["data"]  # ccxt's default: aggTrades
            assert [(int(t["id"]), norm(t["price"]), norm(t["amount"])) for t in rows] == [
                (a, p, q) for a, p, q, _f, _l in aggs_of(sim)[-10:]
            ]
            for method in ("publicGetTrades",):
                rows = client.rest(f"fetch_trades/{method}")["data"]
                assert [(int(t["id"]), norm(t["price"]), norm(t["amount"])) for t in rows] == (
                    trades_of(sim)[-10:]
                )
            ticker = client.rest("fetch_ticker")["data"]
            assert (ticker["symbol"], norm(ticker["last"])) == ("BTC/USDT", last_price(sim))
            tickers = client.rest("fetch_tickers")["data"]
            assert norm(tickers["BTC/USDT"]["last"]) == last_price(sim)
            assert "ETH/USDT" in tickers
            book = client.rest("fetch_order_book")["data"]
            assert_book_matches(sim, book["nonce"], book)
            assert_last_kline_matches(sim, client.rest("fetch_ohlcv")["data"][-1], trades=False)
        client.check_clean()


async def test_ccxt_pro_streams() -> None:
    async with exchange() as sim:
        warm_up(sim)
        async with open_client("ccxt.pro", sim) as client:
            await client.wait_for("load_markets", lambda: bool(client.of("rest_done")), 30)
            assert not rest_failures(client, ("load_markets",))
            await streams_conform(
                sim,
                client,
                CORE_STREAMS,
                kline_trades=False,
            )


async def test_ccxt_pro_streams_with_rest_on_the_websocket_port() -> None:
    async with exchange() as sim:
        warm_up(sim)
        async with open_client("ccxt.pro", sim, rest_on_ws_port=True) as client:
            await client.wait_for("load_markets", lambda: bool(client.of("rest_done")), 30)
            await streams_conform(sim, client, CORE_STREAMS,
                                  kline_trades=False, seconds=10)  # fmt: skip

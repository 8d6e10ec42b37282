"""The official connector, binance-sdk-spot (``Spot`` with its REST API and WebSocket
streams), unmodified, against the embedded exchange: only ``ConfigurationRestAPI``'s
``base_path`` and ``ConfigurationWebSocketStreams``' ``stream_url`` point it at 127.0.0.1.
It has no order-book helper, so the runner keeps the book by Binance's documented
procedure from what the SDK delivers."""

from __future__ import annotations

from tests._conformance import (
    CORE_STREAMS,
    SYMBOL,
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

require_client("binance_sdk_spot.spot", "binance-sdk-spot")

CALLS = ("ping", "get_trades", "historical_trades", "ticker24hr", "depth", "klines")


async def test_binance_sdk_spot_rest_and_streams() -> None:
    async with exchange() as sim:
        warm_up(sim)
        async with open_client("binance-sdk-spot", sim) as client:
            await client.wait_for("REST calls", lambda: bool(client.of("rest_done")), 30)
            assert not rest_failures(client, CALLS), rest_failures(client, CALLS)
            want = trades_of(sim)[-10:]
            for call in ("get_trades", "historical_trades"):
                rows = client.rest(call)["data"]
                assert [(t["id"], norm(t["price"]), norm(t["qty"])) for t in rows] == want
            ticker = client.rest("ticker24hr")["data"]
            assert (ticker["symbol"], norm(ticker["lastPrice"])) == (SYMBOL, last_price(sim))
            book = client.rest("depth")["data"]
            assert_book_matches(sim, book["lastUpdateId"], book)
            assert_last_kline_matches(sim, client.rest("klines")["data"][-1])
            await streams_conform(sim, client, CORE_STREAMS)

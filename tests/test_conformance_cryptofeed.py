"""cryptofeed (``FeedHandler`` with its ``Binance`` feed), unmodified, against the embedded
exchange: a subclass of the feed with loopback ``websocket_endpoints`` /
``rest_endpoints`` (cryptofeed's own extension point) points it at 127.0.0.1, and, as
cryptofeed only speaks ``wss://``, the simulator runs with TLS and the client trusts its
CA through ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``."""

from __future__ import annotations

from tests._conformance import (
    SYMBOL,
    exchange,
    open_client,
    require_client,
    streams_conform,
    warm_up,
)

require_client("cryptofeed.exchanges", "cryptofeed")


async def test_cryptofeed_streams() -> None:
    async with exchange(tls=True) as sim:
        warm_up(sim)
        async with open_client("cryptofeed", sim) as client:
            await streams_conform(
                sim,
                client,
                {
                    f"{SYMBOL.lower()}@aggTrade",
                    f"{SYMBOL.lower()}@kline_1m",
                    f"{SYMBOL.lower()}@depth@100ms",
                },
                agg_trades=True,
            )

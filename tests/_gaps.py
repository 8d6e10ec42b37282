"""Gaps made on purpose in one symbol's stream of the embedded exchange, for the REST
tests (`test_backfill.py`, `test_rest_client.py`, `test_rest_weight.py`,
`test_stop_prices.py`)."""

from __future__ import annotations

from gateway import AggTrade, Gateway, Trade
from gateway.simulator import Simulator
from tests._loopback import drain


async def gap_of(sim: Simulator, count: int, price: float = 99.0) -> range:
    """Drop the next ``count`` trades of BTCUSDT (one aggTrade each), then a live marker;
    returns the aggTrade ids dropped."""
    sim.control.drop_trades("BTCUSDT", count)
    first = sim.market.symbol("BTCUSDT").next_agg_id
    ids = range(first, first + count)
    for _ in range(count):
        sim.control.inject_trade("BTCUSDT", price, 1.0)
    sim.control.inject_trade("BTCUSDT", price, 1.0)
    return ids


async def marker(sim: Simulator, gw: Gateway) -> None:
    """One trade at 99.0, waited for until the gateway handled it: the ids before a gap."""
    with gw.subscribe("BTCUSDT", [Trade, AggTrade], buffer=10) as seen:
        sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
        await drain(seen, 1)


async def streams_on(sim: Simulator, gw: Gateway, kind: type) -> None:
    """A trade injected now reaches a subscriber."""
    with gw.subscribe("BTCUSDT", kind, buffer=10) as sub:
        sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
        assert (await drain(sub, 1))[0].price == 98.0

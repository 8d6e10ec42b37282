"""The specification of gateway/runtime/rest_weight.py: what each REST endpoint costs
and the per-minute weight budget every request of one gateway shares: a request waits
for the next minute rather than earn a 429, the exchange's own count
(``X-MBX-USED-WEIGHT-1M``) is believed, and a ``Retry-After`` ban holds every request.

End to end through a gap's pages first, then plain calls under the MockClock.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio
from trio.testing import MockClock

from gateway import GapDetected, GapFilled, GapUnfilled
from gateway.runtime.rest_weight import WEIGHTS, WeightBudget, depth_weight
from tests._gaps import gap_of, marker
from tests._loopback import exchange_and_gateway

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


# --- a gap's pages under the budget -------------------------------------------------------


async def test_the_weight_budget_spreads_pages_over_minutes_without_a_429(
    autojump_clock: MockClock,
) -> None:
    options: dict[str, Any] = {"streams": ("aggTrade",), "rest_weight_per_minute": 40,
                               "hold_max_seconds": 600.0}  # fmt: skip
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await marker(sim, gw)
            ids = await gap_of(sim, 20_000)  # 20 pages of weight 4: two minutes' budget
            with trio.fail_after(600):
                _detected, filled = await gaps.receive(), await gaps.receive()
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 20_000)
        pages = sim.control.rest_requests("aggTrades")
        assert len(pages) == 20 and {r.status for r in pages} == {200}
        for i, page in enumerate(pages):  # never more than 10 pages in any 60 s
            assert sum(1 for p in pages[i:] if p.time < page.time + 60) <= 10
        assert pages[-1].time - pages[0].time >= 60


async def test_the_used_weight_header_holds_pages_back_until_the_next_minute(
    autojump_clock: MockClock,
) -> None:
    options: dict[str, Any] = {"streams": ("aggTrade",), "hold_max_seconds": 600.0}
    async with exchange_and_gateway(_ONE, **options) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await marker(sim, gw)
            async with httpx.AsyncClient(base_url=sim.rest_url) as client:
                for _ in range(23):  # another client on our IP spends 5750 of the 6000
                    await client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000})
            assert sim.control.rest_used_weight >= 5750
            ids = await gap_of(sim, 3000)
            with trio.fail_after(300):
                _detected, filled = await gaps.receive(), await gaps.receive()
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 3000)
        pages = sim.control.rest_requests("aggTrades")
        assert [p.status for p in pages] == [200] * 3  # never a 429
        assert int(pages[1].time // 60) > int(pages[0].time // 60)  # waited for a new minute
        rest = gw.stats().rest
        assert rest.requests == 3 and rest.throttled >= 1 and rest.retries == 0


# --- plain calls ----------------------------------------------------------------------------


def test_each_endpoint_costs_its_documented_weight() -> None:
    assert dict(WEIGHTS) == {"/api/v3/aggTrades": 4, "/api/v3/historicalTrades": 25,
                             "/api/v3/klines": 2, "/api/v3/time": 1,
                             "/api/v3/ticker/price": 2}  # fmt: skip
    limits = (5, 100, 101, 500, 501, 1000, 1001, 5000)
    assert [depth_weight(n) for n in limits] == [5, 5, 25, 25, 50, 50, 250, 250]


async def test_reserve_goes_at_once_while_the_minute_has_room_then_waits_for_the_next(
    autojump_clock: MockClock,
) -> None:
    budget = WeightBudget(10)
    start = trio.current_time()
    for _ in range(2):
        await budget.reserve(4)
    assert (budget.used, budget.waits, trio.current_time()) == (8, 0, start)
    await budget.reserve(4)  # 12 would pass 10: the next minute
    assert trio.current_time() - start == 60.0
    assert (budget.used, budget.waits) == (4, 1)


async def test_a_request_heavier_than_the_whole_budget_still_goes_in_a_fresh_minute(
    autojump_clock: MockClock,
) -> None:
    budget = WeightBudget(10)
    start = trio.current_time()
    await budget.reserve(25)  # bounded: it would never fit otherwise
    assert (budget.used, budget.waits, trio.current_time()) == (25, 0, start)


async def test_the_exchanges_used_weight_header_is_the_truth_for_this_minute(
    autojump_clock: MockClock,
) -> None:
    budget = WeightBudget(100)
    await budget.reserve(4)
    start = trio.current_time()
    budget.observe("97")  # other clients on our IP spent more
    for header in (None, "junk", "3"):  # absent, unreadable, or below our own: ours stays
        budget.observe(header)
    assert budget.used == 97
    await budget.reserve(4)
    assert trio.current_time() - start == 60.0 and budget.used == 4


async def test_a_retry_after_ban_holds_every_request_until_it_ends(
    autojump_clock: MockClock,
) -> None:
    budget = WeightBudget(100)
    start = trio.current_time()
    budget.ban(7.0)
    budget.ban(3.0)  # a shorter ban never shortens the one in force
    await budget.reserve(1)
    assert trio.current_time() - start == 7.0
    assert (budget.used, budget.waits) == (1, 1)

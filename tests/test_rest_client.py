"""The specification of gateway/runtime/rest_client.py: one REST GET with retries, the
backoff after 5xx, timeouts and refused connections, ``Retry-After`` waited out after
429/418 (two minutes at most), a 4xx or the last attempt failing for good
(`RestUnavailable`), a request no longer wanted shed before it goes out; credentials
never in a URL.

End to end through the gateway's gaps first, then plain calls on a `RestGetter` against
the embedded exchange's REST port.
"""

from __future__ import annotations

import random

import pytest
from trio.testing import MockClock

from gateway import AggTrade, GapDetected, GapFilled, GapUnfilled, open_gateway
from gateway.core.backoff import ReconnectPolicy
from gateway.runtime.rest_client import RequestShed, RestGetter, RestUnavailable
from gateway.runtime.rest_weight import WeightBudget
from tests._gaps import gap_of, marker
from tests._loopback import dead_port, drain, exchange, exchange_and_gateway

_GAPS = [GapDetected, GapFilled, GapUnfilled]
_ONE = {"symbols": ("BTCUSDT",)}


# --- a gap's REST requests, retried -------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "503", "timeout", "429"])
async def test_a_failed_first_request_is_retried_and_the_gap_filled(
    autojump_clock: MockClock, fault: str
) -> None:
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), rest_timeout=2.0) as (sim, gw):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await marker(sim, gw)
            if fault == "500":
                sim.control.fail_rest(500, count=1, path="/api/v3/aggTrades")
            elif fault == "timeout":
                sim.control.hang_rest(count=1, path="aggTrades")
            elif fault == "429":
                sim.control.fail_rest(429, count=1, path="aggTrades", retry_after=7)
            else:
                sim.control.fail_rest(503, count=1)  # any path
            ids = await gap_of(sim, 3)
            detected, filled = await drain(gaps, 2)
        assert detected.backfilling
        assert filled == GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 3)
        first, second = sim.control.rest_requests("aggTrades")
        assert (first.status, second.status) == (
            {"500": 500, "503": 503, "timeout": 0, "429": 429}[fault], 200,
        )  # fmt: skip
        if fault == "429":
            assert second.time - first.time >= 7.0  # Retry-After was honoured
        if fault == "timeout":
            assert second.time - first.time >= 2.0  # the client's timeout, then backoff


async def test_rest_down_ends_the_gap_in_gap_unfilled_with_its_exact_range(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(_ONE, streams=("aggTrade",), rest_retries=2) as (sim, gw):
        with gw.subscribe("BTCUSDT", [*_GAPS, AggTrade], buffer=100) as sub:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            await drain(sub, 1)
            sim.control.rest_down()
            ids = await gap_of(sim, 3)
            events = await drain(sub, 3)  # the gap, the live marker, its end
        detected, unfilled = (e for e in events if not isinstance(e, AggTrade))
        assert (detected.first, detected.last, detected.backfilling) == (ids[0], ids[-1], True)
        assert isinstance(unfilled, GapUnfilled)
        assert (unfilled.stream, unfilled.first, unfilled.last) == ("aggTrade", ids[0], ids[-1])
        assert "503" in unfilled.reason
        assert [r.status for r in sim.control.rest_requests("aggTrades")] == [503] * 3
        rest = gw.stats().rest
        assert (rest.requests, rest.retries, rest.failed) == (3, 2, 1)


async def test_a_refused_rest_port_ends_the_gap_in_gap_unfilled(autojump_clock: MockClock) -> None:
    async with (
        exchange(_ONE) as sim,
        open_gateway(
            url=sim.ws_url, rest_url=f"http://127.0.0.1:{dead_port()}", symbols=("BTCUSDT",),
            streams=("aggTrade",), rest_retries=1,
        ) as gw,  # fmt: skip
    ):
        with gw.subscribe("BTCUSDT", _GAPS, buffer=100) as gaps:
            await marker(sim, gw)
            ids = await gap_of(sim, 2)
            detected, unfilled = await drain(gaps, 2)
        assert isinstance(detected, GapDetected) and isinstance(unfilled, GapUnfilled)
        assert (unfilled.first, unfilled.last) == (ids[0], ids[-1])
        assert "ConnectError" in unfilled.reason
        rest = gw.stats().rest
        assert (rest.requests, rest.retries, rest.failed) == (2, 1, 1)  # retried once


# --- plain calls on a RestGetter ----------------------------------------------------


def _getter(url: str, retries: int = 2) -> RestGetter:
    return RestGetter(url, timeout=2.0, budget=WeightBudget(6000),
                      retry=ReconnectPolicy(0.5, 2.0, 30.0, retries),
                      rng=random.Random(7))  # fmt: skip


async def test_a_get_returns_the_decoded_json_and_counts_one_request(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        rest = _getter(str(sim.rest_url))
        async with rest.open() as client:
            answer = await rest.get(client, "/api/v3/time", {}, 1)
    assert isinstance(answer["serverTime"], int)
    assert (rest.requests_sent, rest.retries, rest.budget.used) == (1, 0, 1)


async def test_a_4xx_answer_fails_at_once_without_a_retry_and_names_no_credential(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        sim.control.fail_rest(400, count=1, path="time")
        rest = _getter(str(sim.rest_url).replace("://", "://user:S3cret@", 1))
        async with rest.open() as client:
            with pytest.raises(RestUnavailable, match=r"/api/v3/time: HTTP 400") as info:
                await rest.get(client, "/api/v3/time", {}, 1)
    assert (rest.requests_sent, rest.retries) == (1, 0)
    assert "S3cret" not in str(info.value) and rest.rest_url == sim.rest_url


async def test_the_attempts_run_out_in_rest_unavailable_naming_the_last_problem(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        sim.control.rest_down()
        rest = _getter(str(sim.rest_url), retries=2)
        async with rest.open() as client:
            with pytest.raises(RestUnavailable) as info:
                await rest.get(client, "/api/v3/time", {}, 1)
        statuses = [r.status for r in sim.control.rest_requests("time")]
    assert str(info.value) == f"REST {sim.rest_url}/api/v3/time: HTTP 503 after 3 attempts"
    assert (rest.requests_sent, rest.retries) == (3, 2) and statuses == [503] * 3


async def test_a_retry_after_beyond_two_minutes_is_waited_out_for_two_minutes(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        sim.control.fail_rest(429, count=1, path="time", retry_after=600)
        rest = _getter(str(sim.rest_url))
        async with rest.open() as client:
            await rest.get(client, "/api/v3/time", {}, 1)
        first, second = sim.control.rest_requests("time")
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time == pytest.approx(120.0, abs=0.5)
    assert rest.retries == 1


async def test_a_request_no_longer_wanted_is_shed_before_it_goes_out_its_weight_given_back(
    autojump_clock: MockClock,
) -> None:
    async with exchange(_ONE) as sim:
        rest = _getter(str(sim.rest_url))
        async with rest.open() as client:
            with pytest.raises(RequestShed):
                await rest.get(client, "/api/v3/aggTrades", {"symbol": "BTCUSDT"}, 4,
                               shed=lambda: True)  # fmt: skip
        asked = sim.control.rest_requests()
    assert (rest.budget.used, rest.requests_sent, asked) == (0, 0, [])

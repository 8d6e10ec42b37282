"""The specification of gateway/runtime/services.py: the gateway's services (callback
dispatcher, close-hook runner, REST backfiller, price fallback) are supervised children:
a crash of one (a bug, injected here by patching it in the test) restarts it alone, with
its queue, while the symbols stream on; `stats().services` counts it. The two REST
services are built from the config (`rest_parts`): the backfiller only with a
``rest_url``, the price fallback only over a backfiller and with ``fallback_after`` > 0."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import AggTrade, GapDetected, GapFilled, GapUnfilled, StopState, StopTriggered
from gateway.config import GatewayConfig
from gateway.core.backfill_protocol import Need
from gateway.runtime.backfill import Backfiller
from gateway.runtime.fallback import PriceFallback
from gateway.runtime.hooks import HookRunner
from gateway.runtime.publish import Publisher
from gateway.runtime.services import rest_parts
from gateway.runtime.symbol import SymbolRuntime
from tests._loopback import drain, exchange_and_gateway
from tests._simclient import bounded

_ONE = {"symbols": ("BTCUSDT",)}


@bounded(120)
async def test_a_crashing_hook_runner_is_restarted_and_the_close_still_happens(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = HookRunner._close_one
    crashed: list[str] = []

    async def crash_once(self: HookRunner, request: object) -> None:
        if not crashed:
            crashed.append("hooks")
            raise RuntimeError("a bug in the hook runner")
        await real(self, request)  # type: ignore[arg-type]

    monkeypatch.setattr(HookRunner, "_close_one", crash_once)
    closed = trio.Event()
    hooked: list[StopTriggered] = []

    def hook(stop: StopTriggered) -> None:
        hooked.append(stop)
        closed.set()

    async with exchange_and_gateway(_ONE, streams=("aggTrade",), close_hook=hook,
                                    close_hook_timeout=2.0) as (sim, gw):  # fmt: skip
        pid = gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        sim.control.inject_trade("BTCUSDT", 94.0, 1.0)
        with trio.fail_after(120):
            await closed.wait()  # the request in flight was lost: its retry closes it
        with gw.subscribe("BTCUSDT", AggTrade, buffer=10) as trades:
            sim.control.inject_trade("BTCUSDT", 94.5, 1.0)
            (after,) = await drain(trades, 1)  # the symbol streamed on
        stats = gw.stats()
    assert crashed == ["hooks"] and [h.position_id for h in hooked] == [pid]
    assert gw.positions("BTCUSDT")[0].state is StopState.CLOSED
    assert after.price == 94.5
    hooks = stats.services["hooks"]
    assert (hooks.status, hooks.restarts) == ("running", 1)
    assert "a bug in the hook runner" in (hooks.last_error or "")
    assert {n: s.restarts for n, s in stats.services.items() if n != "hooks"} == {
        "callbacks": 0, "backfill": 0, "fallback": 0}  # fmt: skip


@bounded(120)
async def test_a_backfill_that_raises_ends_its_gap_unfilled_and_the_next_gap_fills(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Backfiller._fetch
    raised: list[int] = []

    async def raise_once(self: Backfiller, client: object, req: object) -> object:
        if not raised:
            raised.append(1)
            raise RuntimeError("a bug in the backfiller")
        return await real(self, client, req)  # type: ignore[arg-type]

    monkeypatch.setattr(Backfiller, "_fetch", raise_once)
    async with exchange_and_gateway(_ONE, streams=("aggTrade",)) as (sim, gw):
        with gw.subscribe("BTCUSDT", [GapDetected, GapFilled, GapUnfilled], buffer=10) as gaps:
            for _ in range(2):  # two gaps of 3 ids, each closed by a live trade
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
                sim.control.drop_trades("BTCUSDT", 3)
                for _ in range(4):
                    sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            got = await drain(gaps, 4)
        services = gw.stats().services
    ends = [e for e in got if not isinstance(e, GapDetected)]
    assert isinstance(ends[0], GapUnfilled) and "the backfiller raised" in ends[0].reason
    assert isinstance(ends[1], GapFilled) and ends[1].count == 3
    assert services["backfill"].restarts == 0  # isolated per request, not a crash


def _rest_parts(**options: Any) -> tuple[Backfiller | None, PriceFallback | None]:
    config = GatewayConfig(symbols=("BTCUSDT",), url="ws://127.0.0.1:9", **options)
    states: dict[str, SymbolRuntime] = {}
    return rest_parts(config, states, Publisher(), deliver=lambda _symbol, _result: None,
                      need=lambda _request: Need.ROWS, rng=None)  # fmt: skip


def test_the_rest_services_are_a_backfiller_for_the_rest_url_and_a_fallback_through_it() -> None:
    backfiller, fallback = _rest_parts(rest_url="http://user:S3cret@127.0.0.1:9",
                                       rest_weight_per_minute=600, fallback_after=3.0)  # fmt: skip
    assert isinstance(backfiller, Backfiller) and isinstance(fallback, PriceFallback)
    assert backfiller.rest_url == "http://127.0.0.1:9"  # its credentials travel apart
    assert backfiller.budget.limit == 600
    assert (fallback.after, fallback.interval) == (3.0, 1.0)


def test_no_rest_url_means_no_rest_service_and_fallback_after_zero_no_fallback() -> None:
    assert _rest_parts(rest_url="") == (None, None)
    backfiller, fallback = _rest_parts(rest_url="http://127.0.0.1:9", fallback_after=0.0)
    assert isinstance(backfiller, Backfiller) and fallback is None

"""The specification of gateway/runtime/connection.py: the connection actor keeps one
combined-stream WebSocket alive, feeds its frames to the router, and reconnects with
jittered backoff, resubscribing everything, until its attempts run out
(`ConnectionFailed`); whatever the exchange or the network does to a session is a
reconnect, and only a bug of ours is an `InternalError`.

Each fault is injected by the embedded exchange on loopback (real sockets, MockClock).
Issue 11, observations 1 and 2: a SUBSCRIBE caught by a closing socket, a ping racing our
close handshake (trio-websocket #184). Its parts have their own specifications: the
control frames in test_control_channel.py, the watchdogs in test_watchdog.py, dialling
in test_dial.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import (
    ConfigError,
    ConnectionFailed,
    ConnectionLost,
    InternalError,
    ReconnectConfig,
    RestartIntensityExceeded,
    SubscriptionError,
    Trade,
    open_gateway,
)
from gateway.core.backoff import ReconnectPolicy
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.runtime.connection import Connection
from gateway.runtime.router import Router
from gateway.simulator import Simulator
from tests._loopback import dead_port, drain, exchange_and_gateway
from tests._sessions import exchange, gateway, streams_again

# --- reconnecting ------------------------------------------------------------------------


async def test_reconnects_and_resubscribes_after_an_abrupt_close(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=1000) as sub:
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            assert (await drain(sub, 1))[0].price == 100.0
            sim.control.close_connections(abrupt=True)
            with trio.fail_after(30):
                await sim.control.wait_for(
                    lambda st: st.connections_total >= 2 and st.connections_open == 1
                )
                await gw._connections[0].wait_live()
            sim.control.inject_trade("BTCUSDT", 101.0, 1.0)
            assert (await drain(sub, 1))[0].price == 101.0
        assert gw._connections[0].reconnects >= 1


async def test_dead_port_exhausts_attempts_then_error_reaches_callback_and_caller(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    port = dead_port()
    from gateway.config import GatewayConfig, ReconnectConfig

    config = GatewayConfig(
        symbols=("BTCUSDT",), url=f"ws://127.0.0.1:{port}",
        reconnect=ReconnectConfig(initial=0.1, cap=1.0, max_attempts=3),
    )  # fmt: skip
    with pytest.raises(ConnectionFailed, match="gave up after 3 attempts") as failed:
        async with open_gateway(config, on_error=errors.append):
            pytest.fail("the gateway must not open against a dead port")  # pragma: no cover
    assert isinstance(failed.value.__cause__, OSError)  # the last attempt's cause, chained
    assert f"could not connect to 127.0.0.1:{port} (" in str(failed.value)  # never opened
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert [e.attempt for e in lost] == [1, 2, 3]  # each failed attempt, with its cause
    assert all(isinstance(e.__cause__, OSError) and not e.opened for e in lost)
    assert str(lost[0]).startswith(f"[conn-1] could not connect to 127.0.0.1:{port} (")
    assert "attempt 1 of 3" in str(lost[0])
    assert isinstance(errors[-1], ConnectionFailed)  # and the final error


async def test_a_jitter_seed_repeats_the_reconnect_delays(autojump_clock: MockClock) -> None:
    from gateway.config import GatewayConfig, ReconnectConfig

    async def delays(seed: int | None) -> list[float]:
        errors: list[BaseException] = []
        config = GatewayConfig(
            symbols=("BTCUSDT",), url=f"ws://127.0.0.1:{dead_port()}", jitter_seed=seed,
            reconnect=ReconnectConfig(initial=0.1, cap=1.0, max_attempts=4),
        )  # fmt: skip
        with pytest.raises(ConnectionFailed):
            async with open_gateway(config, on_error=errors.append):
                pytest.fail("the gateway must not open against a dead port")  # pragma: no cover
        return [e.retry_in for e in errors if isinstance(e, ConnectionLost) and e.retry_in]

    first, again, other = await delays(7), await delays(7), await delays(8)
    assert len(first) == 3 and first == again  # jittered, and the same from the same seed
    assert first != other


# --- 1. a SUBSCRIBE waiting for its reply while the socket closes ----------------------------


async def test_a_reset_during_subscription_is_a_reconnect_at_start_and_later(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.reset_on_subscribe()
        async with gateway(sim, errors) as gw:
            await streams_again(sim, gw)
            # and on a reconnect: the resubscription meets a reset too
            sim.control.reset_on_subscribe(count=2)
            sim.control.close_connections(abrupt=True)
            with trio.fail_after(120):
                await sim.control.wait_for(lambda st: st.connection_attempts >= 5)
            await streams_again(sim, gw)
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert len(lost) == 4 and all(e.opened for e in lost)
    assert not [e for e in errors if not isinstance(e, ConnectionLost)]


# --- 2. a server ping during our close handshake (trio-websocket #184; the opener itself:
# tests/test_websocket.py) ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["leave", "no reply", "rotation"])
async def test_a_ping_during_our_close_never_takes_the_gateway_down(
    autojump_clock: MockClock, how: str
) -> None:
    errors: list[BaseException] = []
    options: dict[str, Any] = {}
    if how == "rotation":
        options["max_connection_age"] = 30.0
    async with exchange(ping_interval=1.0) as sim:
        sim.control.ping_before_close_reply(3)
        async with gateway(sim, errors, **options) as gw:
            if how == "no reply":  # we end the session ourselves, then reconnect
                sim.control.ignore_subscribe()
                await gw.add_symbols(["SOLUSDT"])
                with trio.fail_after(60):
                    await sim.control.wait_for(lambda st: st.connections_total >= 2)
            elif how == "rotation":
                with trio.fail_after(120):
                    await sim.control.wait_for(lambda st: st.connections_total >= 2)
                assert gw._connections[0].rotations == 1
            if how != "leave":
                await streams_again(sim, gw)
        # leaving the block: our close, answered by pings first, then the close reply
    assert not [e for e in errors if not isinstance(e, ConnectionLost)]


async def test_leaving_the_block_with_a_deaf_peer_that_still_pings_is_bounded(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange(ping_interval=0.2) as sim:
        async with gateway(sim, errors) as gw:
            assert sim.control.deafen() == 1
            pinged = sim.control.stats().pings_sent
            with trio.fail_after(10):  # pings keep coming; nothing we send is read
                await sim.control.wait_for(lambda st: st.pings_sent >= pinged + 3)
            left = trio.current_time()
        assert trio.current_time() - left <= 3  # the close handshake is bounded
        assert [c.state for c in gw._connections] == ["stopped"]
    assert errors == []


# --- nothing the exchange does makes open_gateway raise anything else --------------------------

FAULTS: dict[str, Callable[[Simulator], object]] = {
    "1008 on every subscribe": lambda sim: sim.control.close_on_subscribe(count=1000),
    "reset on every subscribe": lambda sim: sim.control.reset_on_subscribe(count=1000),
    "no reply to any subscribe": lambda sim: sim.control.ignore_subscribe(count=1000),
    "BTCUSDT's streams refused": lambda sim: sim.control.refuse_streams(
        [f"btcusdt@{k}" for k in ("trade", "aggTrade", "kline_1s", "bookTicker", "depth@100ms")]
    ),
    "pings during every close": lambda sim: sim.control.ping_before_close_reply(5),
    "refused handshakes": lambda sim: sim.control.refuse_connections(3600, 429),
    "deaf": lambda sim: sim.control.deafen(),
    "malformed frames": lambda sim: [sim.control.send_malformed() for _ in range(5)],
    "unknown events": lambda sim: [sim.control.send_unknown_event() for _ in range(5)],
    "garbage control replies": lambda sim: [
        sim.control.send_raw(text)
        for text in ('{"id":999,"result":null}', '{"error":{"code":2,"msg":"x"},"id":null}',
                     '{"code":3,"msg":"flat error"}', "[]", "null", '"text"', "\x00\xff")
    ],
    "stall": lambda sim: sim.control.stall(20),
    "delay": lambda sim: sim.control.delay_frames(10),
    "duplicates": lambda sim: sim.control.duplicate_frames(50),
    "a gap": lambda sim: sim.control.drop_trades("BTCUSDT", 30),
    "REST 500s": lambda sim: sim.control.fail_rest(500, count=1000),
    "REST down": lambda sim: sim.control.rest_down(3600),
    "REST malformed": lambda sim: sim.control.corrupt_rest(count=1000),
    "zombie": lambda sim: sim.control.zombie(),
    "close 1011": lambda sim: sim.control.close_connections(1011, "internal error"),
    "close 1008": lambda sim: sim.control.close_connections(1008, "Too many requests"),
}


#: Faults that keep every connection from ever going live: the gateway must give up
#: with ConnectionFailed after its attempts, and with nothing else.
NEVER_LIVE = {"1008 on every subscribe", "reset on every subscribe",
              "no reply to any subscribe", "refused handshakes"}  # fmt: skip


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_no_injected_fault_makes_open_gateway_raise_anything_but_connection_failed(
    autojump_clock: MockClock, fault: str
) -> None:
    errors: list[BaseException] = []
    streams = ("trade", "aggTrade", "kline_1s", "bookTicker", "depth@100ms")
    policy = ReconnectConfig(initial=0.1, max_attempts=4)
    async with exchange(ping_interval=0.5, pacing="rate", rate=30.0) as sim:
        FAULTS[fault](sim)  # before connecting
        if fault in NEVER_LIVE:
            with pytest.raises(ConnectionFailed, match="gave up after 4 attempts"):
                async with gateway(sim, errors, reconnect=policy, streams=streams):
                    pytest.fail("no connection can go live")  # pragma: no cover
            return
        async with gateway(sim, errors, reconnect=policy, streams=streams) as gw:
            FAULTS[fault](sim)  # and on a live gateway, while the user changes symbols
            await gw.add_symbols(["SOLUSDT"])
            await trio.sleep(2)
            await gw.remove_symbols(["SOLUSDT"])
            sim.control.close_connections(abrupt=True)
            await trio.sleep(30)
            sim.control.clear_faults()
            await streams_again(sim, gw, "ETHUSDT")  # up and streaming once the fault ends
            assert all(s.crashes == 0 for s in gw.stats().symbols.values())
    assert all(isinstance(e, ConnectionLost | SubscriptionError) for e in errors)


async def test_a_bug_of_ours_in_a_session_surfaces_as_internal_error_with_its_cause(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No exchange behaviour can reach this path; a bug is simulated in the router.
    def broken_route(self: Router, frame: str | bytes, receive_ns: int) -> None:
        raise KeyError("routing table corrupted")

    # The connections supervisor runs it again, alone, each time: a bug that stays ends the
    # gateway once the restarts pass the intensity (max_restarts within restart_period).
    errors: list[BaseException] = []
    async with exchange() as sim:
        monkeypatch.setattr(Router, "route", broken_route)
        with pytest.raises(RestartIntensityExceeded, match="connections") as info:
            async with gateway(sim, errors):
                pass  # pragma: no cover - the first frame (the SUBSCRIBE reply) fails
    bug = info.value.__cause__
    assert isinstance(bug, InternalError) and "bug in the connection actor" in str(bug)
    assert isinstance(bug.__cause__, KeyError)
    assert len(info.value.history) == 6  # max_restarts (5) restarts, then the give-up
    assert errors and errors[-1] is info.value  # the error callbacks saw it first


@pytest.mark.parametrize("url", ["not a url", "https://h:9443", "127.0.0.1:9000", "ws://"])
def test_a_connection_built_directly_refuses_what_the_config_refuses(url: str) -> None:
    with pytest.raises(ConfigError, match="url must be a ws:// or wss:// URL with a host"):
        Connection("c", url, [], Router(), policy=ReconnectPolicy(),
                   connect_limiter=RollingWindowLimiter(1, 1.0))  # fmt: skip

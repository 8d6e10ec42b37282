"""The gateway against an unfriendly exchange: every session failure is a reconnect.

Each fault is injected by the embedded exchange on loopback (real sockets, MockClock).
Issue 11, observations 1-3: a SUBSCRIBE caught by a closing socket, a ping racing our
close handshake (trio-websocket #184), a stream the exchange refuses.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import (
    AggTrade,
    ConfigError,
    ConnectionFailed,
    ConnectionLost,
    GapFilled,
    Gateway,
    InternalError,
    ReconnectConfig,
    RestartIntensityExceeded,
    StreamRefused,
    SubscriptionError,
    Trade,
    open_gateway,
)
from gateway.core.backoff import ReconnectPolicy
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.streams import chunk_for_control
from gateway.runtime.connection import REFUSED_RETRY, Connection
from gateway.runtime.router import Router
from gateway.simulator import Simulator, open_simulator
from gateway.stats import RefusedStream
from tests._loopback import drain, queued, read_request_head

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
SIM = {"symbols": SYMBOLS, "seed": 11, "clock": "virtual", "pacing": "manual"}


@asynccontextmanager
async def exchange(**options: Any) -> AsyncIterator[Simulator]:
    async with open_simulator(**{**SIM, **options}) as sim:
        yield sim


@asynccontextmanager
async def gateway(sim: Simulator, errors: list[BaseException], **options: Any) -> AsyncIterator[
    Gateway
]:
    options.setdefault("symbols", SYMBOLS)
    options.setdefault("check_symbols", False)  # symbols beyond the listing stream on demand
    async with open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, on_error=errors.append, **options
    ) as gw:
        yield gw


async def streams_again(sim: Simulator, gw: Gateway, symbol: str = "BTCUSDT") -> None:
    """A trade injected now reaches a subscriber: the gateway is up and streaming."""
    await gw._connections[0].wait_live()
    with gw.subscribe(symbol, Trade, buffer=100) as sub:
        tid = sim.control.inject_trade(symbol, 123.0, 1.0)
        with trio.fail_after(30):
            trade = await sub.receive()
    assert (trade.trade_id, trade.price) == (tid, 123.0)


# --- 1. a SUBSCRIBE waiting for its reply while the socket closes ----------------------------


async def test_a_1008_close_in_reply_to_subscribe_slows_the_pace_and_reconnects(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.close_on_subscribe(1008, "Too many requests")
        async with gateway(sim, errors) as gw:
            conn = gw._connections[0]
            assert conn.rate_penalties == 1
            assert conn.snapshot().control_pace == "2/1s"  # halved from 4 a second
            await streams_again(sim, gw)
        stats = sim.control.stats()
    assert stats.closes_by_code.get(1008) == 1
    assert stats.connection_attempts == 2  # one retry after backoff, not a storm
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert len(lost) == 1 and lost[0].opened and "1008 Too many requests" in lost[0].reason


async def test_exceeding_the_exchanges_message_rate_slows_down_until_it_is_accepted(
    autojump_clock: MockClock,
) -> None:
    # 900 streams: 6 SUBSCRIBE frames; at 10 a second the exchange (5 a second) closes 1008.
    many = tuple(f"S{i:03d}USDT" for i in range(300))
    errors: list[BaseException] = []
    async with exchange(symbols=many[:3]) as sim:
        async with gateway(
            sim, errors, symbols=many, streams=("trade", "aggTrade", "kline_1m"), control_rate=10
        ) as gw:
            assert len(gw._connections) == 1
            conn = gw._connections[0]
            assert conn.rate_penalties >= 1
            limit, window = conn.control_limiter.limit, conn.control_limiter.window
            assert limit / window <= 5
            # the last session's SUBSCRIBE frames kept to the slower pace
            sent = list(conn.control_sent_at)[-len(chunk_for_control(list(conn.streams))) :]
            assert len(sent) == 6
            assert all(sum(1 for t in sent if s <= t < s + window) <= limit for s in sent)
            await streams_again(sim, gw, many[0])
        stats = sim.control.stats()
    assert stats.connection_attempts == 1 + conn.rate_penalties <= 3
    assert set(stats.closes_by_code) <= {1000, 1008}


async def test_a_ping_waiting_for_a_slowed_control_pace_is_not_silence(
    autojump_clock: MockClock,
) -> None:
    # Three 1008 penalties: one control frame per 8 s. A quiet market (trades only, none
    # traded) sends no frame, so the watchdog pings every 3 s (silence_timeout 6): each
    # ping waits up to 8 s for its slot, longer than the 3 s a pong is waited for.
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.close_on_subscribe(1008, "Too many requests", count=3)
        async with gateway(
            sim, errors, streams=("trade",), control_rate=1, silence_timeout=6.0
        ) as gw:
            conn = gw._connections[0]
            assert conn.snapshot().control_pace == "1/8s" and conn.reconnects == 3
            await trio.sleep(60)  # about 7 pings, every one answered after its turn
            snap = conn.snapshot()
            await streams_again(sim, gw)
        stats = sim.control.stats()
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert [e.reason for e in lost] == ["closed by the exchange: 1008 Too many requests"] * 3
    assert snap.reconnects == 3 and snap.state == "live"  # no "silent for 6.0 s"
    assert stats.connections_total == 4


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


async def test_a_deaf_peer_that_never_replies_to_subscribe_is_replaced(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors) as gw:
        sim.control.deafen()
        # a live SUBSCRIBE gets no reply: the session is replaced, the stream kept
        await gw.add_symbols(["SOLUSDT"])
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        await streams_again(sim, gw, "SOLUSDT")
    assert any(isinstance(e, ConnectionLost) and "SUBSCRIBE failed" in e.reason for e in errors)


# --- 3. a stream the exchange refuses --------------------------------------------------------


async def test_a_refused_stream_is_reported_and_dropped_and_the_others_stream(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.refuse_streams(["ethusdt@aggTrade"])
        async with gateway(sim, errors, streams=("trade", "aggTrade", "kline_1m")) as gw:
            conn = gw._connections[0]
            assert "ethusdt@aggTrade" not in conn.streams and len(conn.streams) == 8
            assert gw.stats().refused == {
                "ethusdt@aggTrade": RefusedStream(
                    code=2, message="Invalid request: invalid stream", connection="conn-1",
                ),
            }  # fmt: skip
            for symbol in SYMBOLS:
                await streams_again(sim, gw, symbol)
            # a reconnect does not ask for it at once (its own retry timer does)
            sim.control.close_connections(abrupt=True)
            with trio.fail_after(60):
                await sim.control.wait_for(lambda st: st.connections_total >= 2)
            await streams_again(sim, gw)
            assert set(sim.control.stats().subscriptions[2]) == set(conn.streams)
        closes = sim.control.stats().closes_by_code
    assert conn.connects == 2 and set(closes) == {1000, 1006}  # no reconnect for the refusal
    refused = [e for e in errors if isinstance(e, SubscriptionError)]
    assert len(refused) == 1 and refused[0].code == 2 and "ethusdt@aggTrade" in str(refused[0])


async def test_a_refused_stream_is_asked_for_again_and_once_accepted_its_gap_is_filled(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, streams=("aggTrade",)) as gw:
        with (
            gw.subscribe("ETHUSDT", [AggTrade, GapFilled], buffer=1000) as sub,
            gw.subscribe("ETHUSDT", StreamRefused, buffer=10) as refused,
        ):
            sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
            events: list[Any] = await drain(sub, 1)  # flowing: the ids before the refusal
            # At the next session the exchange refuses the stream for a while.
            sim.control.refuse_streams(["ethusdt@aggTrade"])
            sim.control.close_connections(abrupt=True)
            await drain(refused, 1)
            conn = gw._connections[0]
            for _ in range(3):  # refused again at its first retries: logged, not reported
                sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                await trio.sleep(REFUSED_RETRY.ceiling(0))
            accepted_at = trio.current_time()
            sim.control.accept_streams(["ethusdt@aggTrade"])
            with trio.fail_after(60):
                while not any(isinstance(e, GapFilled) for e in events):
                    sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                    await trio.sleep(1.0)
                    events.extend(queued(sub))
            back_after = trio.current_time() - accepted_at
            sim.control.inject_trade("ETHUSDT", 99.0, 1.0)  # and live after the gap
            events.extend(await drain(sub, 1))
            assert not queued(refused)  # reported once, however often it was asked again
        assert "ethusdt@aggTrade" in conn.streams and not conn.refused
        assert conn.snapshot().refusal_retries >= 2
    ids = [e.agg_trade_id for e in events if isinstance(e, AggTrade)]
    assert ids == list(range(ids[0], ids[-1] + 1))  # every aggregate trade, once, in order
    assert sum(1 for e in events if isinstance(e, AggTrade) and e.backfilled) >= 3
    assert back_after <= REFUSED_RETRY.ceiling(3) + 2  # the next retry's wait, at most
    refusals = [e for e in errors if isinstance(e, SubscriptionError)]
    assert len(refusals) == 1  # reported once, however often it was asked for again


async def test_too_many_subscriptions_refuses_the_whole_chunk_without_halving(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    streams = ("trade", "aggTrade", "kline_1m")  # 9 streams; the exchange takes 5
    async with exchange(max_streams_per_connection=5) as sim, gateway(
        sim, errors, streams=streams
    ) as gw:
        conn = gw._connections[0]
        assert conn.streams == {} and len(conn.refused) == 9
        assert {code for code, _ in conn.refused.values()} == {4}
        assert conn.control_frames == 1 and conn.connects == 1  # one SUBSCRIBE, no halving
        await gw.add_symbols(["SOLUSDT"])  # one stream fits: it streams
        await streams_again(sim, gw, "SOLUSDT")
    assert len([e for e in errors if isinstance(e, SubscriptionError)]) == 9


async def test_a_close_while_live_subscribes_wait_for_their_turn_is_a_reconnect(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, control_rate=1) as gw:
        async with trio.open_nursery() as nursery:
            for symbol in ("SOLUSDT", "XRPUSDT", "ADAUSDT"):  # paced one a second
                nursery.start_soon(gw.add_symbols, [symbol])
            await trio.sleep(0.5)
            sim.control.close_connections(1011, "internal error")
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        for symbol in ("SOLUSDT", "XRPUSDT", "ADAUSDT"):
            await streams_again(sim, gw, symbol)
        await gw.remove_symbols(["XRPUSDT"])
        assert "xrpusdt@trade" not in sim.control.stats().subscriptions[2]
    assert all(isinstance(e, ConnectionLost) for e in errors)


async def test_leaving_while_a_rotation_is_still_connecting_raises_nothing(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        async with gateway(sim, errors, max_connection_age=30.0) as gw:
            sim.control.refuse_connections(3600)  # the rotation's new connection waits
            with trio.fail_after(120):
                await sim.control.wait_for(lambda st: st.connections_rejected >= 1)
            assert len(gw._connections) == 2 and gw._connections[1].state != "live"
        assert gw._connections and all(c.state == "stopped" for c in gw._connections)


async def test_a_rotation_that_cannot_connect_keeps_the_old_connection(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    policy = ReconnectConfig(initial=0.1, max_attempts=2)
    async with exchange() as sim, gateway(
        sim, errors, max_connection_age=30.0, reconnect=policy
    ) as gw:
        old = gw._connections[0]
        sim.control.refuse_connections(3600)
        with trio.fail_after(120):
            await sim.control.wait_for(lambda st: st.connections_rejected >= 2)
            await trio.testing.wait_all_tasks_blocked()
        assert gw._connections == [old] and not old.rotating and old.state == "live"
        await streams_again(sim, gw)
    assert len(errors) == 2 and all(isinstance(e, ConnectionLost) for e in errors)


async def test_a_stream_refused_live_reaches_subscribers_as_stream_refused(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.refuse_streams(["solusdt@trade"], code=2, message="Invalid symbol")
        async with gateway(sim, errors) as gw:
            with gw.subscribe(None, StreamRefused) as sub:
                await gw.add_symbols(["SOLUSDT", "XRPUSDT"])
                with trio.fail_after(30):
                    event = await sub.receive()
            assert event == StreamRefused("SOLUSDT", "solusdt@trade", 2, "Invalid symbol", "conn-1")
            await streams_again(sim, gw, "XRPUSDT")
            assert "solusdt@trade" not in gw._connections[0].streams


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


async def test_credentials_in_the_url_go_in_the_handshake_header_not_the_request_line(
    autojump_clock: MockClock,
) -> None:
    requests: list[bytes] = []

    async def handshake_reader(stream: trio.SocketStream) -> None:
        requests.append(await read_request_head(stream))
        await stream.aclose()  # refuse: the gateway retries, then gives up

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handshake_reader, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectionFailed) as failed:
            async with open_gateway(
                url=f"ws://trader:S3cret@127.0.0.1:{port}", symbols=("BTCUSDT",),
                reconnect=ReconnectConfig(initial=0.1, max_attempts=2),
                rest_url="",  # only the stream handshakes reach this listener
            ):  # fmt: skip
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()
    assert len(requests) == 2 and "S3cret" not in str(failed.value)
    assert "closed by the server during the WebSocket handshake" in str(failed.value)
    head = requests[0].decode()
    assert head.startswith("GET /stream HTTP/1.1\r\n") and "S3cret" not in head
    token = base64.b64encode(b"trader:S3cret").decode()
    assert f"\r\nAuthorization: Basic {token}\r\n" in head


async def test_a_silent_peer_that_answers_no_ping_is_replaced_after_the_silence_timeout(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, silence_timeout=6.0) as gw:
        sim.control.deafen()  # no market frames flow (manual pacing) and no pong comes
        went_deaf = trio.current_time()
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        # silent for a whole timeout (checked every half): then the close, bounded at 1 s
        # against a deaf peer, and the first backoff (at most 0.5 s)
        assert 6.0 <= trio.current_time() - went_deaf <= 1.5 * 6.0 + 1.0 + 0.5
        await streams_again(sim, gw)
    [lost] = errors
    assert isinstance(lost, ConnectionLost) and lost.reason == "silent for 6.0 s"


@pytest.mark.parametrize("url", ["not a url", "https://h:9443", "127.0.0.1:9000", "ws://"])
def test_a_connection_built_directly_refuses_what_the_config_refuses(url: str) -> None:
    with pytest.raises(ConfigError, match="url must be a ws:// or wss:// URL with a host"):
        Connection("c", url, [], Router(), policy=ReconnectPolicy(),
                   connect_limiter=RollingWindowLimiter(1, 1.0))  # fmt: skip

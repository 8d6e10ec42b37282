"""The exchange's connection rules, enforced: message rate, stream count, connection
attempts, ping/pong, and the lifetime close announced by serverShutdown."""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected
from wsproto.events import CloseConnection, Ping, TextMessage

from gateway.core.codec import decode_frame
from gateway.core.frames import ControlError, ServerShutdown
from gateway.simulator import SimulatorConfig, open_simulator
from tests._simclient import bounded, raw_client, ws_client


def config(**options: object) -> SimulatorConfig:
    base: dict[str, object] = {"symbols": ("BTCUSDT",), "pacing": "manual", "clock": "virtual",
                               "rest": False}  # fmt: skip
    return SimulatorConfig.from_kwargs(**{**base, **options})


@bounded()
async def test_more_than_five_messages_a_second_closes_1008(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(f"{sim.ws_url}/ws") as ws:
        for i in range(6):
            await ws.send_message(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.get_message()
        assert info.value.reason.code == 1008
        assert info.value.reason.reason == "Too many requests"
        stats = await sim.control.wait_for(lambda s: s.connections_open == 0)
        assert stats.closes_by_code == {1008: 1}


@bounded()
async def test_five_messages_a_second_are_fine(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(f"{sim.ws_url}/ws") as ws:
        for i in range(15):
            await ws.send_message(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            assert '"result"' in await ws.get_message()
            await trio.sleep(0.21)


@bounded()
async def test_client_pings_count_toward_the_message_limit(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, raw_client(f"{sim.ws_url}/ws") as client:
        for i in range(6):
            await client.send(Ping(payload=bytes([i])))
        closes = []
        while not closes:
            events = await client.next_events()
            assert events, "server hung up without a close frame"
            closes = [e for e in events if isinstance(e, CloseConnection)]
        assert (closes[0].code, closes[0].reason) == (1008, "Too many requests")


@bounded()
async def test_stream_limit_per_connection(autojump_clock: object) -> None:
    async with open_simulator(config(max_streams_per_connection=2)) as sim:
        with pytest.raises(ConnectionRejected) as info:
            async with ws_client(sim.stream_url(["a1@trade", "a2@trade", "a3@trade"])):
                pass
        assert info.value.status_code == 400
        async with ws_client(sim.stream_url(["a1@trade"])) as ws:
            await ws.send_message('{"method":"SUBSCRIBE","params":["a2@trade","a3@trade"],"id":7}')
            reply = decode_frame(await ws.get_message())
            assert reply == ControlError(7, 4, "Too many subscriptions")


@bounded(600)
async def test_connection_attempts_per_window(autojump_clock: object) -> None:
    cfg = config(max_connection_attempts=3, connection_attempt_window=300.0)
    async with open_simulator(cfg) as sim:
        for _ in range(3):
            async with ws_client(f"{sim.ws_url}/ws"):
                pass
        with pytest.raises(ConnectionRejected) as info:
            async with ws_client(f"{sim.ws_url}/ws"):
                pass
        assert info.value.status_code == 429
        await trio.sleep(301)
        async with ws_client(f"{sim.ws_url}/ws"):
            pass
        stats = sim.control.stats()
        assert (stats.connection_attempts, stats.connections_rejected) == (5, 1)


@bounded(300)
async def test_no_pong_in_time_disconnects(autojump_clock: object) -> None:
    cfg = config(ping_interval=25.0, pong_timeout=60.0)
    async with open_simulator(cfg) as sim, raw_client(f"{sim.ws_url}/ws") as client:
        start = trio.current_time()
        pings = 0
        closes: list[CloseConnection] = []
        while not closes:
            events = await client.next_events()
            if not events:
                break
            pings += sum(isinstance(e, Ping) for e in events)
            closes += [e for e in events if isinstance(e, CloseConnection)]
        assert closes and closes[0].code == 1008 and closes[0].reason == "Pong timeout"
        assert trio.current_time() - start == pytest.approx(85.0)  # first ping + 60 s
        assert pings == 3  # at 25, 50 and 75 s
        stats = await sim.control.wait_for(lambda s: s.connections_open == 0)
        assert stats.pings_sent == 3 and stats.pongs_received == 0


@bounded(300)
async def test_answered_pings_keep_the_connection(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(f"{sim.ws_url}/ws") as ws:
        await trio.sleep(210)  # pings at 20, 40, ... 200 s; not on a ping instant
        assert not ws.closed
        assert sim.control.stats().pongs_received == 10


@bounded()
@pytest.mark.parametrize("combined", [True, False])
async def test_lifetime_close_announced_by_server_shutdown(
    autojump_clock: object, combined: bool
) -> None:
    cfg = config(connection_lifetime=1.0, shutdown_notice=True, shutdown_lead=0.25)
    async with open_simulator(cfg) as sim:
        path = "/stream" if combined else "/ws"
        async with ws_client(sim.ws_url + path) as ws:
            text = await ws.get_message()
            assert trio.current_time() == pytest.approx(0.75)
            assert ('"stream":"!serverShutdown"' in text) is combined
            assert isinstance(decode_frame(text), ServerShutdown)
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            assert info.value.reason.code == 1000
            assert trio.current_time() == pytest.approx(1.0)


@bounded()
async def test_oversized_frames_close_1009_and_garbage_is_answered(autojump_clock: object) -> None:
    async with open_simulator(config(max_message_size=1000)) as sim:
        async with raw_client(f"{sim.ws_url}/ws") as client:
            await client.send(TextMessage(data="x" * 5000))
            events = await client.next_events()
            assert isinstance(events[0], CloseConnection) and events[0].code == 1009
        async with ws_client(f"{sim.ws_url}/ws") as ws:
            await ws.send_message("not json at all")
            assert decode_frame(await ws.get_message()).code == 3  # type: ignore[union-attr]
            await ws.send_message(b"\x00\x01binary")
            assert decode_frame(await ws.get_message()).code == 3  # type: ignore[union-attr]

"""The faults added for the chaos soak: wrong-typed fields, oversized frames,
serverShutdown on demand, a forced lifetime close, and a stall without pings."""

from __future__ import annotations

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed

from gateway.core.codec import decode_frame
from gateway.core.events import Trade
from gateway.core.frames import ServerShutdown
from gateway.errors import DecodeError
from gateway.simulator import SimulatorConfig, open_simulator
from tests._simclient import bounded, ws_client


def config(**options: object) -> SimulatorConfig:
    base: dict[str, object] = {"symbols": ("BTCUSDT",), "pacing": "manual", "clock": "virtual",
                               "rest": False, "seed": 5}  # fmt: skip
    return SimulatorConfig.from_kwargs(**{**base, **options})


@bounded()
async def test_wrong_typed_trade_is_rejected_by_the_decoder(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert sim.control.send_wrong_types("BTCUSDT") == 1
        text = await ws.get_message()
        data = orjson.loads(text)["data"]
        assert data["e"] == "trade" and data["t"] == "not-an-id" and data["p"] == 1.5
        with pytest.raises(DecodeError):
            decode_frame(text)
        sim.control.generate(1)  # the connection carries on
        assert isinstance(decode_frame(await ws.get_message()), Trade)


@bounded()
async def test_oversized_frame_exceeds_a_clients_limit(autojump_clock: object) -> None:
    async with open_simulator(config(max_message_size=4096)) as sim, ws_client(
        sim.stream_url(["btcusdt@trade"]), max_message_size=4096
    ) as ws:  # fmt: skip
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert sim.control.send_oversized() == 1  # 4096 + 1024 bytes
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
        assert info.value.reason.code == 1009  # message too big, as the client says


@bounded()
async def test_oversized_frame_of_a_given_size_is_valid_json(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        sim.control.send_oversized(10_000)
        text = await ws.get_message()
        assert len(text) == 10_000 and orjson.loads(text)["data"]["e"] == "oversized"


@bounded()
async def test_server_shutdown_then_expire(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert sim.control.send_server_shutdown() == 1
        assert isinstance(decode_frame(await ws.get_message()), ServerShutdown)
        assert sim.control.expire_connections() == 1
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
        assert info.value.reason.code == 1000
        assert info.value.reason.reason == "Connection lifetime expired"


@bounded()
async def test_stall_without_pings_is_silent_and_resume_ends_it(autojump_clock: object) -> None:
    async with open_simulator(config(ping_interval=1.0)) as sim, ws_client(
        sim.stream_url(["btcusdt@trade"])
    ) as ws:  # fmt: skip
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        await trio.sleep(2.5)
        before = sim.control.stats().pings_sent
        assert before >= 2
        sim.control.stall(5.0, pings=False)
        await trio.sleep(4.5)
        assert sim.control.stats().pings_sent == before  # no frame, no ping
        sim.control.resume()
        await trio.sleep(1.5)
        assert sim.control.stats().pings_sent > before
        sim.control.generate(1)
        assert isinstance(decode_frame(await ws.get_message()), Trade)


@bounded()
async def test_stall_with_pings_keeps_pinging(autojump_clock: object) -> None:
    async with open_simulator(config(ping_interval=1.0)) as sim, ws_client(
        sim.stream_url(["btcusdt@trade"])
    ) as ws:  # fmt: skip
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        before = sim.control.stats().pings_sent
        sim.control.stall(5.0)
        await trio.sleep(3.5)
        assert sim.control.stats().pings_sent >= before + 3
        sim.control.clear_faults()
        sim.control.generate(1)
        assert isinstance(decode_frame(await ws.get_message()), Trade)

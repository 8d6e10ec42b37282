"""The embedded exchange accepts what Binance accepts (issue 13): clients we did not write
(binance-sdk-spot's UUID ids, ccxt pro's ``/ws/<n>`` endpoints) work, and whatever it
refuses is logged in one line with the reason."""

from __future__ import annotations

import itertools
import logging
import ssl

import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import ConnectionRejected

from gateway import AggTrade, GapFilled, open_gateway
from gateway.simulator import Simulator, SimulatorConfig, open_simulator
from tests._loopback import drain
from tests._simclient import bounded, ws_client

UUID = "6f1c2b9e-6c1d-4e4a-9a57-3c1f2d9b8e70"


def config(**options: object) -> SimulatorConfig:
    base: dict[str, object] = {"symbols": ("BTCUSDT", "ETHUSDT"), "seed": 3,
                               "pacing": "manual", "clock": "virtual", "rest": False}  # fmt: skip
    return SimulatorConfig.from_kwargs(**{**base, **options})


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("gateway.simulator") and r.levelno == logging.WARNING]  # fmt: skip


@bounded()
@pytest.mark.parametrize("path", ["/ws/0", "/ws/1", "/ws", "/stream"])
async def test_ccxt_style_endpoint_then_subscribe_with_a_uuid_id(
    path: str, autojump_clock: object
) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.ws_url + path) as ws:
        await ws.send_message(orjson.dumps(
            {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": UUID}).decode())  # fmt: skip
        assert orjson.loads(await ws.get_message()) == {"result": None, "id": UUID}
        tid = sim.control.inject_trade("BTCUSDT", 100.5, 1.0)
        frame = orjson.loads(await ws.get_message())
        trade = frame["data"] if path == "/stream" else frame
        assert (trade["e"], trade["t"]) == ("trade", tid)


@bounded()
async def test_combined_url_with_two_streams(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(
        f"{sim.ws_url}/stream?streams=btcusdt@trade/ethusdt@trade"
    ) as ws:  # fmt: skip
        sim.control.inject_trade("ETHUSDT", 100.5, 1.0)
        sim.control.inject_trade("BTCUSDT", 100.5, 1.0)
        got = [orjson.loads(await ws.get_message())["stream"] for _ in range(2)]
        assert got == ["ethusdt@trade", "btcusdt@trade"]


@bounded()
async def test_refused_upgrades_and_control_messages_are_logged(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.simulator")
    async with open_simulator(config()) as sim:
        with pytest.raises(ConnectionRejected) as info:
            async with ws_client(f"{sim.ws_url}/nope"):
                pass
        assert info.value.status_code == 404
        with pytest.raises(ConnectionRejected):
            async with ws_client(f"{sim.ws_url}/stream?streams=btcusdt@bad"):
                pass
        async with ws_client(f"{sim.ws_url}/ws") as ws:
            await ws.send_message('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1.5}')
            reply = orjson.loads(await ws.get_message())
            assert reply["error"]["code"] == 2
            await ws.send_message('{"method":"SUBSCRIBE","params":["nope"],"id":2}')
            assert orjson.loads(await ws.get_message())["error"]["code"] == 2
        await trio.testing.wait_all_tasks_blocked()  # the server's handlers have logged
    lines = refusals(caplog)
    assert len(lines) == 4, lines
    assert "/nope" in lines[0] and "404" in lines[0]
    assert "btcusdt@bad" in lines[1] and "400" in lines[1]
    assert "request ID must be an unsigned integer" in lines[2]
    assert "invalid stream" in lines[3] and "SUBSCRIBE" in lines[3]


# --- REST: Binance's shapes for every public market-data endpoint ----------------------


def rest_config(**options: object) -> SimulatorConfig:
    return config(rest=True, **options)


@bounded()
async def test_tickers_for_one_several_and_all_symbols(autojump_clock: object) -> None:
    """ccxt's fetch_tickers asks with no symbol at all; others pass ``symbols=[...]``."""
    async with open_simulator(rest_config()) as sim, httpx.AsyncClient(
        base_url=str(sim.rest_url)
    ) as http:  # fmt: skip
        sim.control.generate(20)
        for route, keys in [
            ("ticker/price", {"symbol", "price"}),
            ("ticker/bookTicker", {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}),
            ("ticker/24hr", {"symbol", "lastPrice", "volume", "openTime", "count"}),
        ]:
            one = await http.get(f"/api/v3/{route}", params={"symbol": "ETHUSDT"})
            assert one.status_code == 200 and one.json()["symbol"] == "ETHUSDT"
            assert keys <= set(one.json())
            many = await http.get(f"/api/v3/{route}", params={"symbols": '["ETHUSDT","BTCUSDT"]'})
            assert [t["symbol"] for t in many.json()] == ["ETHUSDT", "BTCUSDT"]
            assert many.json()[0] == one.json()
            every = await http.get(f"/api/v3/{route}")
            assert [t["symbol"] for t in every.json()] == ["BTCUSDT", "ETHUSDT"]
        weights = []
        for params in ({"symbol": "BTCUSDT"}, {"symbols": '["BTCUSDT"]'}, {}):
            r = await http.get("/api/v3/ticker/24hr", params=params)
            weights.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        assert [b - a for a, b in itertools.pairwise(weights)] == [2, 80]


@bounded()
async def test_recent_trades_and_historical_trades(autojump_clock: object) -> None:
    async with open_simulator(rest_config()) as sim, httpx.AsyncClient(
        base_url=str(sim.rest_url)
    ) as http:  # fmt: skip
        ids = [sim.control.inject_trade("BTCUSDT", 100.0 + i / 100, 1.0) for i in range(8)]
        recent = (await http.get("/api/v3/trades", params={"symbol": "BTCUSDT",
                                                           "limit": 3})).json()  # fmt: skip
        assert [t["id"] for t in recent] == ids[-3:]
        assert set(recent[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker",
                                  "isBestMatch"}  # fmt: skip
        old = (await http.get("/api/v3/historicalTrades",
                              params={"symbol": "BTCUSDT", "fromId": ids[1], "limit": 2})).json()
        assert [t["id"] for t in old] == ids[1:3]
        info = (await http.get("/api/v3/exchangeInfo", params={"symbols": '["ETHUSDT"]'})).json()
        assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
        limits = {r["rateLimitType"] for r in info["rateLimits"]}
        assert {"REQUEST_WEIGHT", "RAW_REQUESTS"} <= limits
        for route in ("depth", "avgPrice", "aggTrades"):
            r = await http.get(f"/api/v3/{route}", params={"symbol": "BTCUSDT"})
            assert r.status_code == 200, route


@bounded()
async def test_rest_errors_are_binance_json_with_the_weight_header_and_logged(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.simulator")
    async with open_simulator(rest_config()) as sim, httpx.AsyncClient(
        base_url=str(sim.rest_url)
    ) as http:  # fmt: skip
        cases = {
            "/api/v3/nope": (404, None),
            "/api/v1/ticker/price": (404, None),
            "/api/v3/ticker/price?symbol=NOPE": (400, (-1121, "Invalid symbol.")),
            '/api/v3/ticker/price?symbols=["BTCUSDT","NOPE"]': (400, (-1121, "Invalid symbol.")),
            "/api/v3/ticker/24hr?symbols=BTCUSDT": (400, None),
            '/api/v3/ticker/bookTicker?symbol=BTCUSDT&symbols=["BTCUSDT"]': (400, None),
            "/api/v3/trades?symbol=BTCUSDT&limit=5000": (400, (
                -1130, "Data sent for parameter 'limit' is not valid.")),
            "/api/v3/exchangeInfo?symbol=NOPE": (400, (-1121, "Invalid symbol.")),
            "/api/v3/exchangeInfo?symbols=123": (400, None),  # was a 500 (list(123))
        }  # fmt: skip
        for path, (status, body) in cases.items():
            r = await http.get(path)
            assert r.status_code == status, path
            assert r.headers["content-type"] == "application/json", path
            assert "X-MBX-USED-WEIGHT-1M" in r.headers, path
            got = r.json()
            assert set(got) == {"code", "msg"} and isinstance(got["code"], int), path
            if body is not None:
                assert (got["code"], got["msg"]) == body, path
        r = await http.post("/api/v3/ticker/price")
        assert r.status_code == 405 and set(r.json()) == {"code", "msg"}
        sim.control.rest_down(10)
        r = await http.get("/api/v3/ping")
        assert r.status_code == 503 and "X-MBX-USED-WEIGHT-1M" in r.headers
    lines = [line for line in refusals(caplog) if "REST" in line]
    assert len(lines) == len(cases) + 2, lines
    assert "/api/v3/nope" in lines[0] and "404" in lines[0]
    assert "Invalid symbol." in lines[2] and "-1121" in lines[2]


# --- REST on the WebSocket port: ws://HOST:PORT's REST base is http://HOST:PORT ----------


def same_port(sim: Simulator) -> str:
    return sim.ws_url.replace("ws", "http", 1)


@bounded()
@pytest.mark.parametrize("tls", [False, True])
async def test_the_websocket_port_also_serves_rest(autojump_clock: object, tls: bool) -> None:
    async with open_simulator(rest_config(tls=tls)) as sim:
        verify = ssl.create_default_context(cafile=sim.ca_file) if tls else True
        async with httpx.AsyncClient(base_url=same_port(sim), verify=verify) as http:
            tid = sim.control.inject_trade("BTCUSDT", 100.5, 1.0)
            for _ in range(3):  # one kept-alive connection, several requests
                r = await http.get("/api/v3/trades", params={"symbol": "BTCUSDT", "limit": 1})
                assert r.status_code == 200 and r.json()[0]["id"] == tid
                assert "X-MBX-USED-WEIGHT-1M" in r.headers
            r = await http.get("/api/v3/nope")
            assert r.status_code == 404 and r.headers["content-type"] == "application/json"
            r = await http.get("/api/v3/depth", params={"symbol": "NOPE"})
            assert r.json() == {"code": -1121, "msg": "Invalid symbol."}
        assert len(sim.control.rest_requests("trades")) == 3
        ws_url = sim.stream_url(["btcusdt@trade"])
        if not tls:  # WebSocket and REST side by side on the one port
            async with ws_client(ws_url) as ws:
                tid = sim.control.inject_trade("BTCUSDT", 100.6, 1.0)
                assert orjson.loads(await ws.get_message())["data"]["t"] == tid


@bounded()
async def test_a_gateway_backfills_from_the_websocket_port(autojump_clock: object) -> None:
    async with open_simulator(rest_config(symbols=("BTCUSDT",))) as sim, open_gateway(
        symbols=("BTCUSDT",), streams=("aggTrade",), url=sim.ws_url, rest_url=same_port(sim),
    ) as gw:  # fmt: skip
        with gw.subscribe("BTCUSDT", [AggTrade, GapFilled], buffer=100) as seen:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(seen, 1))[0]
            sim.control.drop_trades("BTCUSDT", 2)
            for _ in range(3):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            got = await drain(seen, 4)
        a = first.agg_trade_id
        assert GapFilled("BTCUSDT", "aggTrade", a + 1, a + 2, 2) in got
        assert len(sim.control.rest_requests("aggTrades")) == 1


@bounded()
async def test_junk_on_the_websocket_port_gets_400(autojump_clock: object) -> None:
    async with open_simulator(rest_config()) as sim, await trio.open_tcp_stream(
        "127.0.0.1", sim.port
    ) as junk:  # fmt: skip
        await junk.send_all(b"\x16\x03\x01 definitely not HTTP\r\n\r\n")
        assert b"400" in await junk.receive_some(1000)


@bounded()
async def test_a_websocket_upgrade_after_rest_on_the_same_connection_is_a_websocket(
    autojump_clock: object,
) -> None:
    # aiohttp (so ccxt.pro) sends its upgrade on the kept-alive connection of its REST calls.
    async with open_simulator(rest_config()) as sim, await trio.open_tcp_stream(
        "127.0.0.1", sim.port
    ) as tcp:  # fmt: skip
        host = f"127.0.0.1:{sim.port}".encode()
        await tcp.send_all(b"GET /api/v3/ping HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        answer = b""
        with trio.fail_after(5):
            while b"{}" not in answer:
                answer += await tcp.receive_some(1000)
        assert answer.startswith(b"HTTP/1.1 200")
        await tcp.send_all(
            b"GET /ws/0 HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        switched = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in switched:
                switched += await tcp.receive_some(1000)
        assert switched.startswith(b"HTTP/1.1 101"), switched

"""Secrets never leave: a password in either URL appears in nothing the gateway shows.

A gateway runs against the embedded exchange with passwords in its stream and REST
URLs, backfills a gap over REST, then loses its connection for good; every log record
(httpx's too), error callback argument, event, repr, stats dump and the final error is
searched for the passwords and for their basic-auth encoding.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from functools import partial
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import AggTrade, ConnectionFailed, Gateway, WebSocketLayer, open_gateway
from gateway.config import GatewayConfig, config_from_dict
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult
from gateway.core.events import GapDetected
from gateway.runtime.backfill import Backfiller
from gateway.simulator import open_simulator
from tests._loopback import dead_port, drain, queued, read_request_head

WS_PASSWORD = "S3cretPw"
REST_PASSWORD = "R3stPassw0rd"


def with_password(url: str, password: str) -> str:
    return url.replace("://", f"://user:{password}@", 1)


def leaked(
    texts: list[str], passwords: tuple[str, ...] = (WS_PASSWORD, REST_PASSWORD)
) -> list[str]:
    """The texts that contain a password or its basic-auth header value."""
    needles = [*passwords, *(base64.b64encode(f"user:{p}".encode()).decode() for p in passwords)]
    return [t for t in texts if any(n in t for n in needles)]


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Everything a log handler could print: messages, raw arguments, tracebacks."""
    out = [caplog.text]
    for record in caplog.records:
        out += [record.getMessage(), repr(record.args), str(record.msg)]
        if record.exc_info:
            out.append(logging.Formatter().formatException(record.exc_info))
    return out


def exception_texts(exc: BaseException) -> list[str]:
    """str, repr and the whole formatted traceback of ``exc`` and its causes."""
    out = ["".join(traceback.format_exception(exc))]
    while exc is not None:
        out += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return out




async def test_no_password_appears_in_anything_the_gateway_shows(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    texts: list[str] = []
    errors: list[BaseException] = []
    events: list[Any] = []
    holder: list[Gateway] = []
    options = {"symbols": ("BTCUSDT",), "seed": 7, "clock": "virtual", "pacing": "manual"}
    async with open_simulator(**options) as sim:
        assert sim.rest_url is not None
        url = with_password(sim.ws_url, WS_PASSWORD)
        rest_url = with_password(sim.rest_url, REST_PASSWORD)
        with pytest.raises(ConnectionFailed) as failed:
            async with open_gateway(
                symbols="BTCUSDT", streams="aggTrade", url=url, rest_url=rest_url,
                reconnect={"max_attempts": 2, "initial": 0.1, "cap": 0.5},
                on_error=errors.append,
            ) as gw:  # fmt: skip
                holder.append(gw)
                texts += [repr(gw.config), str(gw.config), repr(vars(gw._backfiller))]
                with (
                    gw.subscribe(buffer=100_000) as everything,
                    gw.subscribe("BTCUSDT", [AggTrade, GapDetected], buffer=1000) as sub,
                ):
                    try:
                        sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
                        await drain(sub, 1)
                        sim.control.drop_trades("BTCUSDT", 2)  # a gap: REST fills it
                        for price in (98.0, 97.0, 96.0):
                            sim.control.inject_trade("BTCUSDT", price, 1.0)
                        await drain(sub, 1 + 1 + 2)  # live 96, the gap, two backfilled
                        assert gw.stats().symbols["BTCUSDT"].backfilled == 2
                        texts.append(json.dumps(gw.stats().to_dict()))
                        # The exchange turns us away for good: reconnects fail, then all.
                        sim.control.refuse_connections(3600.0)
                        sim.control.close_connections(abrupt=True)
                        await trio.sleep_forever()
                    finally:
                        events += queued(everything)
    gw = holder[0]
    texts.append(json.dumps(gw.stats().to_dict()))
    texts += exception_texts(failed.value)
    texts += [t for e in errors for t in exception_texts(e)]
    texts += [repr(e) for e in events]
    texts += log_texts(caplog)
    assert leaked(texts) == []
    # ...and the capture saw what it should have: the REST calls, the failures, the URL.
    assert any(m.startswith("HTTP Request: GET http://127.0.0.1:") for m in caplog.messages)
    assert f"user:***@127.0.0.1:{sim.port}" in str(failed.value)
    assert "gave up after 2 attempts" in str(failed.value)
    assert len(errors) >= 3 and errors[-1] is failed.value
    assert any(isinstance(e, GapDetected) for e in events)
    assert "url='ws://user:***@127.0.0.1:" in texts[0]


async def test_a_dead_port_error_names_the_url_with_its_password_masked(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = dead_port()
    errors: list[BaseException] = []
    with pytest.raises(ConnectionFailed) as failed:
        async with open_gateway(
            symbols="BTCUSDT", url=f"ws://user:{WS_PASSWORD}@127.0.0.1:{port}", rest_url="",
            reconnect={"max_attempts": 2, "initial": 0.1}, on_error=errors.append,
        ):  # fmt: skip
            pytest.fail("the gateway must not open against a dead port")  # pragma: no cover
    texts = exception_texts(failed.value) + log_texts(caplog)
    texts += [t for e in errors for t in exception_texts(e)]
    assert leaked(texts) == []
    assert f"to ws://user:***@127.0.0.1:{port}:" in str(failed.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, b"[]"), (400, b'{"code":-1121,"msg":"Invalid symbol."}')],
)
async def test_rest_credentials_travel_as_basic_auth_never_in_a_url(
    status: int, body: bytes, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    requests: list[bytes] = []

    async def serve(stream: trio.SocketStream) -> None:
        data = await read_request_head(stream)
        if b"\r\n\r\n" not in data:
            return
        requests.append(data)
        head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        await stream.send_all(head.encode() + body)
        await stream.aclose()

    results: list[BackfillResult] = []
    done = trio.Event()

    def deliver(symbol: str, result: BackfillResult) -> None:
        results.append(result)
        done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        backfiller = Backfiller(f"http://user:{REST_PASSWORD}@127.0.0.1:{port}/", deliver)
        await nursery.start(backfiller.run)
        backfiller.request(BackfillRequest("BTCUSDT", "aggTrade", 1, 5))
        with trio.fail_after(30):
            await done.wait()
        nursery.cancel_scope.cancel()
    [request] = requests
    request_line, *header_lines = request.decode().split("\r\n")
    assert request_line == "GET /api/v3/aggTrades?symbol=BTCUSDT&fromId=1&limit=1000 HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
    basic = base64.b64encode(f"user:{REST_PASSWORD}".encode()).decode()
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == f"Basic {basic}"
    assert backfiller.rest_url == f"http://127.0.0.1:{port}"
    [result] = results
    texts = [repr(result), str(result.error), repr(vars(backfiller)), *log_texts(caplog)]
    assert leaked(texts) == []
    if status == 400:
        assert result.error is not None and f"http://127.0.0.1:{port}/api/v3/aggTrades" in (
            result.error
        )
        assert any("backfill of BTCUSDT aggTrade 1..5 failed" in m for m in caplog.messages)


def test_config_and_compat_reprs_and_config_errors_hide_passwords() -> None:
    url = f"wss://user:{WS_PASSWORD}@stream.example:9443"
    rest_url = f"https://user:{REST_PASSWORD}@api.example"
    config = GatewayConfig(symbols=("BTCUSDT",), url=url, rest_url=rest_url)
    layer = WebSocketLayer(api_key="K3yK3yK3y", api_secret="S3cr3tS3cr3t", url=url)
    texts = [repr(config), str(config), repr(layer), str(layer), repr(vars(layer))]
    for bad in (
        {"url": url.replace("wss", "https"), "rest_url": rest_url.replace("https", "wss")},
        {"url": url, "rest_url": rest_url, "candle_buffer": 0},
    ):
        with pytest.raises(ValueError) as info:
            config_from_dict({"symbols": ["BTCUSDT"], **bad})
        texts += exception_texts(info.value)
    assert leaked(texts, (WS_PASSWORD, REST_PASSWORD, "K3yK3yK3y", "S3cr3tS3cr3t")) == []
    assert "url='wss://user:***@stream.example:9443'" in repr(config)
    assert "rest_url='https://user:***@api.example'" in repr(config)

"""TLS (issue 13): the embedded exchange serves wss:// and https:// with a throwaway CA
(``tls=True``, ``--tls``), and the gateway trusts it with ``ca_file``; without it, the
gateway fails with a certificate error, never a hang."""

from __future__ import annotations

import ssl
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest
import trio
import trio.lowlevel
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from gateway import AggTrade, ConnectionFailed, GapDetected, GapFilled, open_gateway
from gateway.cli import build_parser
from gateway.config import GatewayConfig, ReconnectConfig
from gateway.core.backoff import ReconnectPolicy
from gateway.errors import ConfigError
from gateway.runtime.backfill import Backfiller, RestUnavailable
from gateway.simulator import Simulator, open_simulator
from gateway.simulator.cli import _announce, _config
from tests._loopback import drain, exchange
from tests._simclient import bounded


def trusting(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


@bounded()
async def test_tls_simulator_serves_wss_and_https_under_its_own_ca(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"tls": True}) as sim:
        assert sim.ws_url.startswith("wss://127.0.0.1:")
        assert sim.rest_url is not None and sim.rest_url.startswith("https://127.0.0.1:")
        assert sim.ca_file is not None
        assert b"BEGIN CERTIFICATE" in Path(sim.ca_file).read_bytes()  # noqa: ASYNC240
        ctx = trusting(sim.ca_file)
        async with open_websocket_url(f"{sim.ws_url}/ws/btcusdt@trade", ctx) as ws:
            tid = sim.control.inject_trade("BTCUSDT", 100.5, 1.0)
            assert orjson.loads(await ws.get_message())["t"] == tid
        async with httpx.AsyncClient(base_url=sim.rest_url, verify=ctx) as http:
            r = await http.get("/api/v3/trades", params={"symbol": "BTCUSDT"})
            assert r.status_code == 200 and r.json()[-1]["id"] == tid
        ca_file = sim.ca_file
    assert not Path(ca_file).exists()  # noqa: ASYNC240 - a throwaway CA: gone with the exchange


async def test_plain_simulator_has_no_ca_file(autojump_clock: MockClock) -> None:
    async with exchange() as sim:
        assert sim.ca_file is None and sim.ws_url.startswith("ws://")


@bounded(60)
async def test_gateway_with_ca_file_streams_and_backfills_over_tls(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"tls": True, "symbols": ("BTCUSDT",)}) as sim, open_gateway(
        symbols=("BTCUSDT",), streams=("aggTrade",), url=sim.ws_url, rest_url=sim.rest_url,
        ca_file=sim.ca_file,
    ) as gw:  # fmt: skip
        with gw.subscribe("BTCUSDT", [AggTrade, GapDetected, GapFilled], buffer=100) as seen:
            sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            first = (await drain(seen, 1))[0]
            assert isinstance(first, AggTrade)
            sim.control.drop_trades("BTCUSDT", 3)
            for _ in range(4):
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
            got = await drain(seen, 6)
        ids = range(first.agg_trade_id + 1, first.agg_trade_id + 4)
        assert GapFilled("BTCUSDT", "aggTrade", ids[0], ids[-1], 3) in got
        assert [e.agg_trade_id for e in got if isinstance(e, AggTrade)] == [*ids, ids[-1] + 1]
        assert {r.status for r in sim.control.rest_requests("aggTrades")} == {200}


@bounded(60)
async def test_gateway_without_ca_file_fails_with_a_certificate_error(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"tls": True}) as sim:
        config = GatewayConfig(
            symbols=("BTCUSDT",), url=sim.ws_url, rest_url=sim.rest_url or "",
            reconnect=ReconnectConfig(initial=0.1, cap=0.5, max_attempts=2),
        )  # fmt: skip
        with pytest.raises(ConnectionFailed, match="certificate verify failed"):
            async with open_gateway(config):
                pytest.fail("a self-signed exchange must not be trusted")  # pragma: no cover


def test_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        GatewayConfig(symbols=("BTCUSDT",), ca_file=str(tmp_path / "missing.pem"))


def test_simulate_tls_option_and_announcement(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["simulate", "--tls"])
    assert _config(args).tls is True
    assert _config(build_parser().parse_args(["simulate"])).tls is False


async def test_simulate_announces_the_ca_file(
    autojump_clock: MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_simulator(tls=True, pacing="manual", clock="virtual") as sim:
        _announce(sim)
        out = capsys.readouterr().out
        assert f"ca_file={sim.ca_file}" in out and "ws_url=wss://" in out
        await trio.lowlevel.checkpoint()


@pytest.mark.parametrize("binance_simulator", [{"tls": True}], indirect=True)
async def test_the_fixture_takes_tls(
    binance_simulator: Simulator, autojump_clock: MockClock
) -> None:
    assert binance_simulator.ws_url.startswith("wss://") and binance_simulator.ca_file


@bounded(60)
async def test_rest_without_ca_file_fails_with_a_certificate_error(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"tls": True}) as sim, trio.open_nursery() as nursery:
        assert sim.rest_url is not None
        rest = Backfiller(sim.rest_url, lambda *_: None, retry=ReconnectPolicy(0.1, 2.0, 1.0, 1))
        await nursery.start(rest.run)
        with pytest.raises(RestUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await rest.ticker_price("BTCUSDT")
        trusted = Backfiller(sim.rest_url, lambda *_: None, ca_file=sim.ca_file or "")
        await nursery.start(trusted.run)
        assert await trusted.ticker_price("BTCUSDT") > 0
        nursery.cancel_scope.cancel()


@bounded(60)
async def test_the_gateway_sends_sni_and_checks_the_host_name(tmp_path: Path) -> None:
    """``wss://localhost`` sends SNI ``localhost`` and accepts a certificate for that
    name; the same certificate at ``wss://127.0.0.1`` is refused (the name is checked,
    not only the CA). Real time: a name's connect may try ``::1`` first."""
    import trustme

    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)  # the name only, no IP address
    names: list[str | None] = []
    server.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,misc]
    handshakes: list[bool] = []

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
            handshakes.append(True)
        except trio.BrokenResourceError:
            handshakes.append(False)
        await trio.aclose_forcefully(stream)  # then the WebSocket handshake fails: enough

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_ssl_over_tcp, handler, 0, server,
                                                host="127.0.0.1"))  # fmt: skip
        port = listeners[0].transport_listener.socket.getsockname()[1]
        for host in ("localhost", "127.0.0.1"):
            config = GatewayConfig(
                symbols=("BTCUSDT",), url=f"wss://{host}:{port}", rest_url="",
                ca_file=str(ca_file), reconnect=ReconnectConfig(max_attempts=1),
            )  # fmt: skip
            with pytest.raises(ConnectionFailed) as failed:
                async with open_gateway(config):
                    pytest.fail("the server closes before the WebSocket handshake")
            if host == "127.0.0.1":
                assert "certificate verify failed" in str(failed.value), failed.value
                assert "mismatch" in str(failed.value).lower(), failed.value
                assert "connect by one it covers" in str(failed.value), failed.value
        nursery.cancel_scope.cancel()
    assert names == ["localhost", None]  # the name for a name; no SNI for an IP (RFC 6066)
    assert handshakes == [True, False]

"""The pytest fixture (default and parametrized) and the ``gateway simulate`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import trio

from gateway.cli import build_parser
from gateway.core.codec import decode_frame
from gateway.core.events import Trade
from gateway.errors import ConfigError
from gateway.simulator import Pacing, Simulator, SimulatorConfig
from gateway.simulator.cli import _config, run_command
from gateway.simulator.pytest_plugin import DEFAULT_FIXTURE_OPTIONS
from tests._simclient import bounded, ws_client


@bounded()
async def test_default_fixture_serves_trades(
    binance_simulator: Simulator, autojump_clock: object
) -> None:
    assert binance_simulator.market.listed == DEFAULT_FIXTURE_OPTIONS["symbols"]
    async with ws_client(binance_simulator.stream_url(["btcusdt@trade"])) as ws:
        assert isinstance(decode_frame(await ws.get_message()), Trade)


@bounded()
@pytest.mark.parametrize("binance_simulator", [{"pacing": "manual", "seed": 9}], indirect=True)
async def test_fixture_takes_an_indirect_parameter(
    binance_simulator: Simulator, autojump_clock: object
) -> None:
    assert binance_simulator.config.pacing is Pacing.MANUAL
    assert binance_simulator.config.seed == 9


def test_config_is_validated_with_clear_errors() -> None:
    with pytest.raises(ConfigError, match="ping_interval must be a positive number"):
        SimulatorConfig(ping_interval=0)
    with pytest.raises(ConfigError, match="pacing must be one of"):
        SimulatorConfig(pacing="warp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown simulator option"):
        SimulatorConfig.from_kwargs(rat=5)
    with pytest.raises(ConfigError, match="needs replay_file"):
        SimulatorConfig(pacing="replay")  # type: ignore[arg-type]


@bounded()
async def test_commands_drive_the_control(autojump_clock: object) -> None:
    args = build_parser().parse_args(["simulate", "--pacing", "manual", "--clock", "virtual",
                                      "--no-rest", "--symbols", "BTCUSDT"])  # fmt: skip
    from gateway.simulator import open_simulator

    async with (
        open_simulator(_config(args)) as sim,
        ws_client(sim.stream_url(["btcusdt@trade"])) as ws,
    ):
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert run_command(sim.control, "trade BTCUSDT 101.5 1").startswith("trade id")
        assert decode_frame(await ws.get_message()).price == 101.5  # type: ignore[union-attr]
        assert run_command(sim.control, "gap BTCUSDT 2").startswith("dropping trade ids")
        assert run_command(sim.control, "frobnicate").startswith("unknown command")
        assert run_command(sim.control, "stall x").startswith("bad arguments")
        for line in ("subclose", "subclose 1008 slow down", "subreset", "subignore",
                     "refusestream btcusdt@aggTrade", "pingclose 2"):  # fmt: skip
            assert run_command(sim.control, line) == "ok"
        assert run_command(sim.control, "refusestream").startswith("bad arguments")
        assert run_command(sim.control, "deafen") == "deafened 1"
        assert run_command(sim.control, "close 4001 bye") == "closed 1"


@bounded()
async def test_zombie_and_forget_commands_act_on_one_connection(autojump_clock: object) -> None:
    args = build_parser().parse_args(["simulate", "--pacing", "manual", "--clock", "virtual",
                                      "--no-rest", "--symbols", "BTCUSDT"])  # fmt: skip
    from gateway.simulator import open_simulator

    names = ["btcusdt@trade", "btcusdt@aggTrade"]
    async with (
        open_simulator(_config(args)) as sim,
        ws_client(sim.stream_url(names)) as zombie,
        ws_client(sim.stream_url(names)) as healthy,
    ):
        await sim.control.wait_for(lambda s: s.connections_open == 2)
        first, second = sorted(sim.control.stats().subscriptions)
        assert run_command(sim.control, f"forget btcusdt@aggTrade {second}") == "forgotten on 1"
        assert sim.control.stats().subscriptions[second] == ("btcusdt@trade",)
        await healthy.send_message('{"method": "LIST_SUBSCRIPTIONS", "id": 1}')
        assert orjson.loads(await healthy.get_message())["result"] == ["btcusdt@trade"]
        assert run_command(sim.control, f"zombie {first}") == "zombies 1"
        await zombie.send_message('{"method": "LIST_SUBSCRIPTIONS", "id": 2}')  # still answers
        assert orjson.loads(await zombie.get_message())["id"] == 2
        tid = sim.control.inject_trade("BTCUSDT", 101.5, 1.0)
        assert decode_frame(await healthy.get_message()).trade_id == tid  # type: ignore[union-attr]
        with trio.move_on_after(5) as quiet:
            await zombie.get_message()
        assert quiet.cancelled_caught  # no market frame on the zombie, the other flows
        assert run_command(sim.control, "forget").startswith("bad arguments")


@bounded(30)
async def test_gateway_simulate_serves_until_interrupted() -> None:
    command = [sys.executable, "-c", "import sys; from gateway.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "simulate", "--rate", "100", "--no-rest",
               "--log-level", "WARNING"]  # fmt: skip
    proc = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "error"}
    )
    try:
        assert proc.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await proc.stdout.receive_some(1)
        url = line.decode().split()[0].removeprefix("ws_url=")
        async with ws_client(url + "/ws/btcusdt@trade") as ws:
            assert isinstance(decode_frame(await ws.get_message()), Trade)
        proc.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_simulate_replay_of_an_unreadable_file_is_one_line_and_exit_2(
    tmp_path: Path, what: str
) -> None:
    """Before, a missing ``--replay`` file ended in a FileNotFoundError traceback."""
    path = tmp_path / "missing.txt" if what == "missing" else tmp_path
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "simulate", "--replay", str(path), "--no-rest"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    reason = "No such file or directory" if what == "missing" else "Is a directory"
    assert done.stderr.splitlines() == [f"gateway simulate: cannot read {path}: {reason}"]

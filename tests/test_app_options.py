"""Resolving what a run connects to: flags over the config file over the demo defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.demo import DEMO_STREAMS, DEMO_SYMBOLS
from gateway.app.options import RunPlan, resolve_plan
from gateway.cli import build_parser
from gateway.config import BINANCE_URL, TESTNET_URL
from gateway.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gateway.toml"


def plan_of(*argv: str) -> RunPlan:
    return resolve_plan(build_parser().parse_args(["run", *argv]))


def test_no_arguments_is_the_demo_on_the_embedded_exchange() -> None:
    plan = plan_of()
    assert plan.embedded and plan.demo_position and plan.duration is None
    assert plan.config.symbols == DEMO_SYMBOLS and plan.config.streams == DEMO_STREAMS


def test_url_exchange_and_testnet_point_at_a_real_endpoint() -> None:
    plan = plan_of("--url", "ws://127.0.0.1:9", "--symbols", "btcusdt,ETHUSDT")
    assert not plan.embedded and not plan.demo_position
    assert plan.config.url == "ws://127.0.0.1:9"
    assert plan.config.symbols == ("BTCUSDT", "ETHUSDT")  # spellings made canonical
    assert plan.config.all_symbols() == ("BTCUSDT", "ETHUSDT")
    assert plan_of("--exchange", "binance").config.url == BINANCE_URL
    testnet = plan_of("--testnet").config
    assert testnet.url == TESTNET_URL and testnet.testnet
    assert plan_of("--exchange", "embedded").embedded


def test_the_example_config_is_read_and_flags_override_it() -> None:
    plan = plan_of("--config", str(EXAMPLE))
    assert plan.embedded  # the example sets no url
    assert plan.config.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT")
    assert [p.id for p in plan.config.positions] == ["eth-long-1"]
    plan = plan_of("--config", str(EXAMPLE), "--streams", "aggTrade", "--duration", "2")
    assert plan.config.streams == ("aggTrade",) and plan.duration == 2.0
    assert plan.config.reconnect.max_attempts == 10


def test_max_attempts_overrides_the_config_files_reconnect_budget_and_keeps_the_rest() -> None:
    from_file = plan_of("--config", str(EXAMPLE)).config.reconnect
    flagged = plan_of("--config", str(EXAMPLE), "--max-attempts", "3").config.reconnect
    assert flagged.max_attempts == 3 and flagged.initial == from_file.initial


def test_a_config_file_with_a_url_is_not_embedded(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text('[gateway]\nurl = "ws://127.0.0.1:9"\nsymbols = ["BTCUSDT"]\n')
    plan = plan_of("--config", str(path))
    assert not plan.embedded and plan.config.streams == DEMO_STREAMS


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--streams", "kline_7m"), ["kline_7m", "allowed", "1s, 1m"]),
        (("--streams", "trades"), ["trades", "allowed", "aggTrade"]),
        (("--duration", "0"), ["--duration"]),
        (("--max-attempts", "0"), ["--max-attempts", ">= 1"]),
        (("--symbols", ","), ["symbols"]),
    ],
)
def test_bad_flags_raise_config_errors_that_say_what_is_allowed(
    argv: tuple[str, ...], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        plan_of(*argv)
    for word in words:
        assert word in str(info.value)


def test_rest_follows_the_stream_endpoint_unless_rest_url_names_one(tmp_path: Path) -> None:
    assert plan_of("--url", "ws://127.0.0.1:9").config.resolved_rest_url() == (
        "http://127.0.0.1:9"
    )
    assert plan_of("--exchange", "binance").config.resolved_rest_url() == (
        "https://api.binance.com"
    )
    assert plan_of("--exchange", "binance-data").config.resolved_rest_url() == (
        "https://data-api.binance.vision"
    )
    assert plan_of("--testnet").config.resolved_rest_url() == "https://testnet.binance.vision"
    flagged = plan_of("--url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:10")
    assert flagged.config.resolved_rest_url() == "http://127.0.0.1:10"
    assert plan_of("--url", "ws://127.0.0.1:9", "--rest-url", "").config.resolved_rest_url() == ""
    path = tmp_path / "g.toml"
    path.write_text('[gateway]\nurl = "ws://127.0.0.1:9"\nrest_url = "http://127.0.0.1:11"\n')
    assert plan_of("--config", str(path)).config.resolved_rest_url() == "http://127.0.0.1:11"
    # the file's rest_url is explicit: it wins over a derived one, the flag over it
    moved = plan_of("--config", str(path), "--url", "ws://127.0.0.1:12").config
    assert moved.resolved_rest_url() == "http://127.0.0.1:11"
    assert plan_of("--config", str(path), "--rest-url", "auto").config.resolved_rest_url() == (
        "http://127.0.0.1:9"
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("--streams", ""), ["--streams must name at least one", "e.g. --streams trade"]),
        (("--rest-url", "http://127.0.0.1:9"), ["--rest-url", "needs a real endpoint"]),
        (("--url", "ws://127.0.0.1:9", "--rest-url", "ws://127.0.0.1:9"), ["rest_url", "http"]),
    ],
)
def test_empty_streams_and_bad_rest_urls_are_config_errors(
    argv: tuple[str, ...], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        plan_of(*argv)
    for word in words:
        assert word in str(info.value)


def test_a_rest_url_password_never_shows_in_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        plan_of("--rest-url", "http://user:s3cr3tpw@127.0.0.1:9")
    assert "s3cr3tpw" not in str(info.value) and "user:***@127.0.0.1:9" in str(info.value)
    with pytest.raises(ConfigError) as info:
        plan_of("--url", "ws://127.0.0.1:9", "--rest-url", "ftp://user:s3cr3tpw@127.0.0.1:9")
    assert "s3cr3tpw" not in str(info.value)

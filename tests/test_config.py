"""Configuration: TOML through cattrs, errors that name the key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import ConfigError, GatewayConfig, Side, load_config
from gateway.config import TESTNET_URL, config_from_dict


def test_defaults_follow_the_exchange_limits() -> None:
    cfg = GatewayConfig(symbols=("BTCUSDT",))
    assert cfg.max_streams_per_connection == 1024
    assert cfg.control_rate == 4  # the exchange closes at more than 5 per second
    assert cfg.reconnect.max_attempts == 10  # like the older layer
    assert cfg.candle_buffer == 1000
    assert cfg.stream_names() == ["btcusdt@trade"]


def test_toml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(
        """
[gateway]
symbols = ["BTCUSDT", "ethusdt"]
streams = ["trade", "kline_1m", "ticker"]
url = "ws://127.0.0.1:9000"
candle_buffer = 500

[gateway.reconnect]
max_attempts = 3
initial = 0.1

[[gateway.positions]]
symbol = "BTCUSDT"
side = "long"
entry_price = 100.0
stop_pct = 0.02
"""
    )
    cfg = load_config(path)
    assert cfg.symbols == ("BTCUSDT", "ETHUSDT")  # spellings made canonical
    assert cfg.all_symbols() == ("BTCUSDT", "ETHUSDT")
    assert cfg.reconnect.max_attempts == 3 and cfg.reconnect.initial == 0.1
    assert cfg.positions[0].side is Side.LONG and cfg.positions[0].stop_pct == 0.02
    assert "ethusdt@kline_1m" in cfg.stream_names() and len(cfg.stream_names()) == 6


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"symbols": ["BTCUSDT"], "bogus": 1}, r"unknown key bogus; allowed: symbols, streams"),
        ({"candle_buffer": "x"}, r"candle_buffer: expected an integer, got 'x'"),
        ({"candle_buffer": 0}, r"candle_buffer must be an integer >= 1, got 0"),
        ({"reconnect": {"foo": 1}}, r"unknown key reconnect.foo; allowed: initial, factor"),
        (
            {"symbols": ["BTCUSDT"], "streams": ["kline_2m"]},
            r"unknown kline interval '2m'; allowed: 1s, 1m",
        ),
        ({"symbols": ["BTCUSDT"], "streams": ["depth7"]}, r"allowed: 5, 10, 20"),
        (
            {"positions": [{"symbol": "X", "side": "UP", "entry_price": 1, "stop_pct": 0.1}]},
            r"positions\[0\].side: side must be LONG or SHORT, got 'UP'",
        ),
        (
            {"positions": [{"symbol": "X", "side": "LONG", "entry_price": 1, "stop_pct": 2}]},
            r"stop_pct must be between 0 and 1",
        ),
        (
            {"positions": [{"symbol": "X", "side": "LONG", "entry_price": 1}]},
            r"exactly one of stop_pct and stop_price",
        ),
        ({"time_unit": "ns"}, r"time_unit must be MILLISECOND or MICROSECOND"),
        ({"testnet": "yes"}, r"testnet: expected true or false"),
        ({"jitter_seed": "seven"}, r"jitter_seed: expected an integer, got 'seven'"),
    ],
)
def test_bad_config_names_key_and_allowed_values(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("symbols = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_testnet_switches_both_urls() -> None:
    cfg = GatewayConfig(symbols=("BTCUSDT",)).with_testnet()
    assert cfg.url == TESTNET_URL and cfg.testnet and "testnet" in cfg.rest_url


def test_symbols_as_comma_separated_string() -> None:
    assert config_from_dict({"symbols": "BTCUSDT, ETHUSDT"}).symbols == ("BTCUSDT", "ETHUSDT")

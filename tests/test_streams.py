"""Stream names: building, parsing, validation, combined URLs and sharding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import streams as s
from gateway.core.streams import (
    INTERVALS,
    MAX_CONTROL_FRAME_BYTES,
    StreamKind,
    chunk_for_control,
    combined_url,
    parse_stream,
    shard_streams,
)
from gateway.errors import InvalidStreamName

ALL_NAMES = [
    "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@blockTrade", "btcusdt@kline_1m",
    "btcusdt@kline_1M", "btcusdt@kline_1d@+08:00", "btcusdt@miniTicker", "btcusdt@ticker",
    "btcusdt@ticker_4h", "btcusdt@bookTicker", "btcusdt@avgPrice", "btcusdt@referencePrice",
    "btcusdt@depth5", "btcusdt@depth20@100ms", "btcusdt@depth", "btcusdt@depth@100ms",
    "!miniTicker@arr", "!ticker_1h@arr",
]  # fmt: skip


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_documented_name_round_trips(name: str) -> None:
    assert parse_stream(name).name == name


def test_builders_produce_wire_names() -> None:
    assert s.trade("BTCUSDT").name == "btcusdt@trade"
    assert s.kline("ethusdt", "15m").name == "ethusdt@kline_15m"
    assert s.partial_depth("BNBUSDT", 10, 100).name == "bnbusdt@depth10@100ms"
    assert s.diff_depth("BNBUSDT").name == "bnbusdt@depth"
    assert s.rolling_ticker("BTCUSDT", "1d").name == "btcusdt@ticker_1d"


def test_uppercase_symbol_is_normalised_but_interval_case_is_kept() -> None:
    st_ = parse_stream("BTCUSDT@kline_1M")
    assert st_.symbol == "BTCUSDT" and st_.interval == "1M" and st_.name == "btcusdt@kline_1M"
    assert st_.kind is StreamKind.KLINE


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("btcusdt@kline_2m", "allowed: 1s, 1m, 3m"),
        ("@trade", "symbol must be a non-empty string"),
        ("btcusdt@depth7", "allowed: 5, 10, 20"),
        ("btcusdt@depth@250ms", "allowed: '@100ms' or none"),
        ("btcusdt@ticker_2h", "allowed: 1h, 4h, 1d"),
        ("btcusdt@candles", "unknown stream type 'candles'"),
        ("btcusdt", "must look like '<symbol>@<type>'"),
        ("!bookTicker", "unknown market-wide stream"),
        ("btc/usdt@trade", "contains '/'"),
        ("btcusdt@kline_1m@+05:00", "allowed: +08:00"),
    ],
)
def test_bad_names_say_what_is_allowed(name: str, message: str) -> None:
    with pytest.raises(InvalidStreamName, match=message.replace("+", r"\+").replace("(", r"\(")):
        parse_stream(name)


def test_empty_symbol_and_unknown_interval_in_builders() -> None:
    with pytest.raises(InvalidStreamName, match="non-empty"):
        s.trade("  ")
    with pytest.raises(InvalidStreamName, match="unknown kline interval '2m'"):
        s.kline("BTCUSDT", "2m")


def test_latest_value_kinds_are_marked() -> None:
    assert parse_stream("btcusdt@ticker").kind.is_latest_value
    assert parse_stream("btcusdt@bookTicker").kind.is_latest_value
    assert not parse_stream("btcusdt@trade").kind.is_latest_value
    assert not parse_stream("btcusdt@kline_1m").kind.is_latest_value


def test_combined_url() -> None:
    url = combined_url(
        "wss://stream.binance.com:9443/", ["BTCUSDT@trade", s.kline("ETHUSDT", "1m")]
    )
    assert url == "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@kline_1m"
    assert combined_url("ws://127.0.0.1:1", []) == "ws://127.0.0.1:1/stream"
    assert combined_url("ws://h", ["a@trade"], time_unit="microsecond").endswith(
        "?streams=a@trade&timeUnit=MICROSECOND"
    )
    with pytest.raises(InvalidStreamName, match="timeUnit"):
        combined_url("ws://h", [], time_unit="ns")


def test_sharding_respects_the_limit_and_keeps_symbols_together() -> None:
    names = [f"{sym}@{k}" for sym in ("aaa", "bbb", "ccc") for k in ("trade", "ticker")]
    groups = shard_streams(names, max_per_connection=4)
    assert groups == [
        ["aaa@trade", "aaa@ticker", "bbb@trade", "bbb@ticker"],
        ["ccc@trade", "ccc@ticker"],
    ]
    assert shard_streams(names + names, 1024) == [names]  # duplicates removed


@given(st.integers(1, 50), st.integers(1, 300))
def test_sharding_never_exceeds_limit_and_loses_nothing(limit: int, n: int) -> None:
    names = [f"s{i // 3}@{('trade', 'ticker', 'aggTrade')[i % 3]}" for i in range(n)]
    groups = shard_streams(names, limit)
    assert all(0 < len(g) <= limit for g in groups)
    assert [x for g in groups for x in g] == names


def test_control_chunks_stay_under_the_frame_limit() -> None:
    names = [f"symbol{i:04d}usdt@aggTrade" for i in range(1000)]
    chunks = chunk_for_control(names)
    assert [n for c in chunks for n in c] == names
    assert all(len(",".join(f'"{n}"' for n in c)) + 50 < MAX_CONTROL_FRAME_BYTES for c in chunks)


def test_intervals_are_the_documented_sixteen() -> None:
    assert len(INTERVALS) == 16 and "1s" in INTERVALS and "1M" in INTERVALS

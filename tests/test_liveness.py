"""Proof of life per stream, as plain calls (`gateway.runtime.liveness.StreamWatch`): which
streams of a connection are overdue, when a silent connection is a zombie, and how a
quiet market backs off. The same rules end to end are in tests/test_watchdog.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import ConfigError, GatewayConfig
from gateway.runtime.liveness import ARM_EVENTS, Check, Reader, StreamWatch, cadence


def test_cadences_follow_the_reference() -> None:
    assert cadence("btcusdt@kline_1m") == (("BTCUSDT", "Kline", "1m"), 2.0)  # per interval
    assert cadence("btcusdt@kline_5m") == (("BTCUSDT", "Kline", "5m"), 2.0)
    assert cadence("btcusdt@kline_1s") == (("BTCUSDT", "Kline", "1s"), 1.0)
    assert cadence("btcusdt@ticker") == (("BTCUSDT", "Ticker", None), 1.0)
    assert cadence("btcusdt@depth@100ms") == (("BTCUSDT", "DepthUpdate", None), None)  # on change
    assert cadence("btcusdt@depth5@100ms") == (("BTCUSDT", "PartialDepth", None), 0.1)
    assert cadence("btcusdt@depth5") == (("BTCUSDT", "PartialDepth", None), 1.0)
    assert cadence("btcusdt@bookTicker") == (("BTCUSDT", "BookTicker", None), None)
    assert cadence("btcusdt@trade") == (("BTCUSDT", "Trade", None), None)
    assert cadence("!miniTicker@arr") is None


def test_a_trade_stream_is_watched_only_after_recent_activity() -> None:
    watch = StreamWatch(5.0, 10.0)
    counts = {"Trade": 0}
    watch.sync({"btcusdt@trade": None}, 0.0)
    watch.reset(0.0)
    now, frames = 0.0, 0
    for _ in range(100):  # never traded: never overdue, never a zombie
        now += 1
        assert watch.check(now, lambda _s, k, _i: counts[k], frames) == Check()
    for _ in range(ARM_EVENTS):  # one trade a second: armed, deadline max(10, 5 x 1) s
        now += 1
        counts["Trade"] += 1
        frames += 1
        assert not watch.check(now, lambda _s, k, _i: counts[k], frames).overdue
    now += 9
    assert not watch.check(now, lambda _s, k, _i: counts[k], frames).overdue
    now += 1
    found = watch.check(now, lambda _s, k, _i: counts[k], frames)
    assert found.zombie == 10.0  # the only watched stream, and nothing else came


def test_the_silence_settings_are_validated() -> None:
    config = GatewayConfig(symbols=("BTCUSDT",), stream_silence_factor=3, trade_silence_floor=4.5)
    assert (config.stream_silence_factor, config.trade_silence_floor) == (3, 4.5)
    for bad in (1.5, 0, math.inf, True, "5"):
        with pytest.raises(
            ConfigError, match="stream_silence_factor must be a number of at least 2"
        ):
            GatewayConfig(symbols=("BTCUSDT",), stream_silence_factor=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="trade_silence_floor must be a positive number"):
        GatewayConfig(symbols=("BTCUSDT",), trade_silence_floor=0)


def _reader(counts: dict[tuple[str, str, str | None], int]) -> Reader:
    return lambda symbol, kind, interval: counts.get((symbol, kind, interval), 0)


def test_streams_of_one_counter_are_one_group_and_a_quiet_one_backs_off() -> None:
    watch = StreamWatch(5.0, 10.0)
    names = ["btcusdt@ticker_1h", "btcusdt@ticker_4h", "btcusdt@ticker", "!miniTicker@arr"]
    watch.sync(dict.fromkeys(names), 0.0)
    watch.reset(0.0)
    rolling = watch.groups["BTCUSDT", "RollingTicker", None]  # two windows, one counter
    assert rolling.names == names[:2] and rolling.cadence == 1.0
    assert len(watch.groups) == 2  # the market-wide array is not watched
    counts = {("BTCUSDT", "RollingTicker", None): 0, ("BTCUSDT", "Ticker", None): 0}
    now = frames = 0
    for now in range(1, 6):  # rolling tickers flow, the ticker does not: overdue after 5 s
        counts["BTCUSDT", "RollingTicker", None] += 1
        frames += 1
        found = watch.check(now, _reader(counts), frames)
    assert found.zombie is None and [g.names for g in found.overdue] == [["btcusdt@ticker"]]
    watch.listed(found.overdue[0], now)  # still listed: a quiet market, ask after 10 s
    for now in range(6, 15):
        counts["BTCUSDT", "RollingTicker", None] += 1
        frames += 1
        assert not watch.check(now, _reader(counts), frames).overdue
    assert watch.check(15, _reader(counts), frames + 1).overdue  # 5 s x backoff 2


def test_each_kline_interval_is_judged_alone() -> None:
    watch = StreamWatch(5.0, 10.0)
    names = ["btcusdt@kline_1m", "btcusdt@kline_5m", "btcusdt@kline_1s"]
    watch.sync(dict.fromkeys(names), 0.0)
    watch.reset(0.0)
    assert [g.names for g in watch.groups.values()] == [[n] for n in names]
    assert [g.cadence for g in watch.groups.values()] == [2.0, 2.0, 1.0]
    counts = dict.fromkeys([("BTCUSDT", "Kline", i) for i in ("1m", "5m", "1s")], 0)
    found = Check()
    for now in range(1, 11):  # 1m and 1s flow; 5m is silent: overdue after 5 x 2 s
        counts["BTCUSDT", "Kline", "1m"] += 1
        counts["BTCUSDT", "Kline", "1s"] += 1
        found = watch.check(float(now), _reader(counts), 2 * now)
        assert found.zombie is None
        if now < 10:
            assert not found.overdue
    assert [g.names for g in found.overdue] == [["btcusdt@kline_5m"]]


@given(
    st.lists(st.sets(st.sampled_from(["Kline", "Ticker", "Trade"])), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=60),
)
def test_streams_that_push_within_their_deadline_are_never_suspect(
    pushes: list[set[str]], quiet_trades_from: int
) -> None:
    # Every second: klines at least every 2 s and tickers every second (as scheduled),
    # plus whatever trades; trades may stop at any point (a quiet market).
    watch = StreamWatch(5.0, 10.0)
    watch.sync(dict.fromkeys(["btcusdt@kline_1m", "btcusdt@ticker", "btcusdt@trade"]), 0.0)
    watch.reset(0.0)
    counts = dict.fromkeys([("BTCUSDT", k, None) for k in ("Ticker", "Trade")], 0)
    counts["BTCUSDT", "Kline", "1m"] = 0
    frames = 0
    for now, pushed in enumerate(pushes, start=1):
        pushed = pushed | {"Ticker"} | ({"Kline"} if now % 2 == 0 else set())
        if now >= quiet_trades_from:
            pushed.discard("Trade")
        for kind in pushed:
            counts["BTCUSDT", kind, "1m" if kind == "Kline" else None] += 1
            frames += 1
        found = watch.check(float(now), _reader(counts), frames)
        assert found.zombie is None
        assert all(g.names == ["btcusdt@trade"] for g in found.overdue)  # only a stopped one
        for g in found.overdue:
            watch.listed(g, float(now))  # the exchange lists it: disarmed, not asked again
            assert not watch.check(float(now), _reader(counts), frames).overdue

"""The market model, driven by plain calls: klines, tickers and depth agree with the trades."""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import ROUND_DOWN, Decimal
from typing import Any

import orjson
import pytest

from gateway.simulator.candles import bucket_bounds
from gateway.simulator.encode import Frame
from gateway.simulator.market import Emission, Market

EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
STEP_US = 100_000


def run(market: Market, wanted: set[str], seconds: float, trades_per_step: int) -> list[Emission]:
    """Drive ``market`` for ``seconds`` more, in 100 ms steps."""
    out: list[Emission] = []
    now = max(market.now_us, EPOCH_US)
    for _ in range(int(seconds * 1_000_000 / STEP_US)):
        now += STEP_US
        out.extend(market.generate(now, trades_per_step, wanted))
    return out


def payloads(emissions: list[Emission], stream: str) -> list[dict[str, Any]]:
    return [orjson.loads(Frame(*e).payload(False)) for e in emissions if e[0] == stream]


def new_market(*symbols: str, seed: int = 7) -> Market:
    return Market(symbols=symbols or ("BTCUSDT",), seed=seed, now_us=EPOCH_US)


@functools.cache
def long_run() -> list[Emission]:
    """Two hours of one seeded market, shared by the kline tests."""
    wanted = {"btcusdt@trade"} | {f"btcusdt@kline_{i}" for i in ("1s", "1m", "5m", "1h")}
    return run(new_market(), wanted, seconds=2 * 3600 + 30, trades_per_step=2)


@pytest.mark.parametrize("interval", ["1s", "1m", "5m", "1h"])
def test_closed_klines_equal_klines_rebuilt_from_trades(interval: str) -> None:
    kl = f"btcusdt@kline_{interval}"
    out = long_run()
    length = {"1s": 1000, "1m": 60_000, "5m": 300_000, "1h": 3_600_000}[interval]
    rebuilt: dict[int, dict[str, Any]] = {}
    for t in payloads(out, "btcusdt@trade"):
        start = t["T"] // length * length
        p, q = Decimal(t["p"]), Decimal(t["q"])
        k = rebuilt.setdefault(start, {"o": p, "h": p, "l": p, "v": Decimal(0), "q": Decimal(0),
                                       "n": 0, "f": t["t"], "V": Decimal(0)})  # fmt: skip
        k["h"], k["l"], k["c"], k["L"] = max(k["h"], p), min(k["l"], p), p, t["t"]
        k["v"] += q
        k["q"] += p * q
        k["n"] += 1
        if not t["m"]:
            k["V"] += q
    closed = [k["k"] for k in payloads(out, kl) if k["k"]["x"]]
    assert len(closed) >= 2
    for k in closed:
        assert k["T"] == k["t"] + length - 1
        mine = rebuilt[k["t"]]
        assert (Decimal(k["o"]), Decimal(k["h"]), Decimal(k["l"]), Decimal(k["c"])) == (
            mine["o"], mine["h"], mine["l"], mine["c"])  # fmt: skip
        assert Decimal(k["v"]) == mine["v"] and Decimal(k["V"]) == mine["V"]
        assert Decimal(k["q"]) == mine["q"].quantize(Decimal("1e-8"), rounding=ROUND_DOWN)
        assert (k["n"], k["f"], k["L"]) == (mine["n"], mine["f"], mine["L"])
    # every candle closed, in order, none skipped
    opens = [k["t"] for k in closed]
    assert opens == list(range(opens[0], opens[-1] + 1, length))


def test_klines_close_exactly_at_boundaries_even_without_trades() -> None:
    market = new_market()
    wanted = {"btcusdt@kline_1m"}
    out = market.generate(EPOCH_US + 1000, 3, wanted)
    out += market.tick(EPOCH_US + 60_000_000 - 1, wanted)
    assert not [e for e in out if e[2][3]]
    out = market.tick(EPOCH_US + 60_000_000, wanted)
    closed = [e[2] for e in out if e[2][3]]
    assert len(closed) == 1 and closed[0][2][0] == EPOCH_US
    empty = market.tick(EPOCH_US + 120_000_000, wanted)
    k = orjson.loads(Frame(*next(e for e in empty if e[2][3])).payload(False))["k"]
    assert (k["n"], k["f"], k["L"], k["v"]) == (0, -1, -1, "0.00000000")


def test_bucket_bounds_month_week_and_offset() -> None:
    assert bucket_bounds("1M", 0, EPOCH_US + 5) == (EPOCH_US, 1_769_904_000_000_000)
    start, end = bucket_bounds("1w", 0, EPOCH_US)  # 2026-01-01 is a Thursday
    assert start == 1_766_966_400_000_000 and end - start == 7 * 86_400_000_000
    start, end = bucket_bounds("1d", 8 * 3_600_000_000, EPOCH_US)  # UTC+8 day
    assert (start, end) == (EPOCH_US - 8 * 3_600_000_000, EPOCH_US + 16 * 3_600_000_000)


def test_depth_diffs_applied_to_a_snapshot_reproduce_the_book() -> None:
    market = new_market()
    sym = market.symbol("BTCUSDT")
    wanted = {"btcusdt@depth@100ms", "btcusdt@depth20@100ms"}
    buffered = run(market, wanted, seconds=3, trades_per_step=3)
    last_id, bids, asks = sym.depth(5000)  # the REST snapshot, taken mid-stream
    book = {"b": dict(bids), "a": dict(asks)}
    out = buffered + run(market, wanted, seconds=5, trades_per_step=3)
    diffs = [e[2] for e in out if e[0] == "btcusdt@depth@100ms"]
    book_id = last_id
    first_applied = True
    checked = 0
    for e in out:
        if e[0] == "btcusdt@depth@100ms":
            _, first, final, b, a, _ = e[2]
            if final <= book_id:
                continue
            if first_applied:
                assert first <= book_id + 1 <= final
                first_applied = False
            assert first == book_id + 1, "gap"
            for side, rows in (("b", b), ("a", a)):
                for price, qty in rows:
                    if qty:
                        book[side][price] = qty
                    else:
                        book[side].pop(price, None)
            book_id = final
        elif e[0] == "btcusdt@depth20@100ms" and not first_applied:
            u, top_b, top_a = e[2]
            assert u == book_id
            assert sorted(book["b"].items(), reverse=True)[:20] == top_b
            assert sorted(book["a"].items())[:20] == top_a
            checked += 1
    assert diffs and checked > 10


def test_same_seed_same_frames_and_symbols_do_not_affect_each_other() -> None:
    wanted = {"btcusdt@trade", "btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@kline_1m"}
    one = run(new_market("BTCUSDT"), wanted, 30, 4)
    two = run(new_market("BTCUSDT"), wanted, 30, 4)
    assert [Frame(*e).text(True, False) for e in one] == [Frame(*e).text(True, False) for e in two]
    # with a second symbol, BTCUSDT's trades are the same sequence (only fewer per step)
    mixed = run(new_market("BTCUSDT", "ETHUSDT"), wanted, 60, 8)
    ids = lambda es: [(p["t"], p["p"], p["q"], p["m"]) for p in payloads(es, "btcusdt@trade")]  # noqa: E731
    a, b = ids(one), ids(mixed)
    n = min(len(a), len(b))
    assert n > 100 and a[:n] == b[:n]
    other = run(new_market("BTCUSDT", seed=8), wanted, 30, 4)
    assert ids(other) != a


def test_inject_trade_goes_through_the_book_and_the_candles() -> None:
    market = new_market()
    wanted = {"btcusdt@trade", "btcusdt@bookTicker", "btcusdt@kline_1m"}
    market.generate(EPOCH_US + 1, 5, wanted)
    tid, out = market.inject_trade("BTCUSDT", 123.45, 0.5, EPOCH_US + 2, wanted)
    trade = payloads(out, "btcusdt@trade")[0]
    assert (trade["t"], trade["p"], trade["q"], trade["m"]) == (tid, "123.45000000",
                                                               "0.50000000", False)  # fmt: skip
    book = payloads(out, "btcusdt@bookTicker")[0]
    assert book["a"] == "123.45000000" and book["b"] == "123.44000000"
    k = market.symbol("BTCUSDT").candles.current(("1m", ""))
    assert k[3] >= 123_45000000 and k[5] == 123_45000000  # high, close
    with pytest.raises(ValueError, match="tick size"):
        market.inject_trade("BTCUSDT", 100.005, 1, EPOCH_US + 3, wanted)


def test_tickers_agree_with_the_trades() -> None:
    market = new_market()
    wanted = {"btcusdt@trade", "btcusdt@ticker", "btcusdt@miniTicker", "btcusdt@ticker_1h",
              "btcusdt@avgPrice", "!miniTicker@arr"}  # fmt: skip
    out = run(market, wanted, seconds=130, trades_per_step=2)
    trades = payloads(out, "btcusdt@trade")
    ticker = payloads(out, "btcusdt@ticker")[-1]
    inside = [t for t in trades if ticker["O"] <= t["T"] < ticker["C"]]  # pushed before trades
    assert ticker["n"] == len(inside) and ticker["F"] == inside[0]["t"]
    assert ticker["L"] == inside[-1]["t"] and ticker["c"] == inside[-1]["p"]
    assert Decimal(ticker["v"]) == sum(Decimal(t["q"]) for t in inside)
    assert ticker["h"] == max((t["p"] for t in inside), key=Decimal)
    mini = payloads(out, "btcusdt@miniTicker")[-1]
    assert (mini["c"], mini["v"]) == (ticker["c"], ticker["v"])
    arr = payloads(out, "!miniTicker@arr")[-1]
    assert arr[0]["s"] == "BTCUSDT" and arr[0]["c"] == ticker["c"]
    assert payloads(out, "btcusdt@ticker_1h")[-1]["e"] == "1hTicker"
    assert payloads(out, "btcusdt@avgPrice")[-1]["i"] == "5m"
    per_second = defaultdict(int)
    for e in out:
        if e[0] == "btcusdt@ticker":
            per_second[e[2][1] // 1_000_000] += 1
    assert max(per_second.values()) == 1

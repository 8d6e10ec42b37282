"""The chaos soak's bounded accounting, on hand-made ids and aggregate trades."""

from __future__ import annotations

import random

from gateway.app.chaos_ledger import (
    CROSSINGS_KEPT,
    ExchangeLedger,
    PositionRecord,
    Spans,
    StreamCheck,
    judge_stop,
    judge_stream,
)


def test_spans_merge_and_count() -> None:
    s = Spans([(10, 12), (1, 3)])
    s.add(4, 5)  # touches (1, 3): merged
    s.add(20, 20)
    s.add(13, 19)  # bridges (10, 12) and (20, 20)
    assert s.as_list() == [(1, 5), (10, 20)]
    assert 5 in s and 6 not in s and 15 in s and 21 not in s
    assert s.count_in(0, 100) == 16 and s.count_in(4, 11) == 4
    assert s.missing(0, 22) == [(0, 0), (6, 9), (21, 22)]
    assert Spans().missing(3, 4) == [(3, 4)]


def test_spans_agree_with_a_set() -> None:
    rng = random.Random(7)
    s, ref = Spans(), set()
    for _ in range(300):
        a = rng.randrange(200)
        b = a + rng.randrange(5)
        s.add(a, b)
        ref.update(range(a, b + 1))
    assert all((k in s) == (k in ref) for k in range(-2, 210))
    assert s.count_in(0, 250) == len(ref)
    assert sum(b - a + 1 for a, b in s.missing(0, 250)) == 251 - len(ref)


def test_stream_check_counts_duplicates_and_out_of_order() -> None:
    c = StreamCheck()
    for k in (1, 2, 3, 7, 8):
        assert c.add(k, False)
    assert not c.add(3, False)  # again
    assert c.add(5, True)  # lower than the top but new: out of order
    assert (c.duplicates, c.out_of_order, c.backfilled, c.count) == (1, 1, 1, 7)
    assert c.duplicate_sample == [3] and c.out_of_order_sample == [(5, 8)]
    assert c.delivered.as_list() == [(1, 3), (5, 5), (7, 8)]


def test_judge_stream_lost_is_what_was_neither_delivered_nor_unfilled() -> None:
    c = StreamCheck()
    for k in [*range(100, 110), *range(120, 130)]:
        c.add(k, False)
    unfilled = Spans([(110, 114)])
    v = judge_stream("X", "trade", c, unfilled, 100, 131)
    assert (v.generated, v.delivered, v.unfilled, v.lost) == (32, 20, 5, 7)
    assert v.lost_sample == [(115, 119), (130, 131)]
    clean = judge_stream("X", "trade", c, Spans([(110, 119)]), 102, 129)
    assert clean.lost == 0 and clean.unfilled == 10


def _agg(aid: int, ticks: int, first: int, last: int) -> tuple[int, int, int, int, int, int, bool]:
    return (aid, ticks * 1_000_000, 100, first, last, 0, False)


def test_ledger_reads_each_aggregate_once_and_judges_positions() -> None:
    led = ExchangeLedger(tick_e8=1_000_000)
    led.start("X", next_agg_id=10, next_trade_id=100)
    led.arm(PositionRecord("long", "X", "LONG", 90, 100))
    led.arm(PositionRecord("short", "X", "SHORT", 110, 104))
    led.arm(PositionRecord("decoy", "X", "LONG", 50, 100))
    history = [_agg(9, 100, 98, 99), _agg(10, 100, 100, 101), _agg(11, 89, 102, 103)]
    assert led.read("X", history) == 2
    assert led.read("X", history) == 0  # nothing new
    history += [_agg(12, 111, 104, 106), _agg(13, 100, 107, 107)]
    assert led.read("X", history[-3:]) == 2  # a shorter view of the same history
    snap = led.snapshot()["X"]
    assert snap["agg"] == [10, 13] and snap["trade"] == [100, 107]
    assert (snap["low_ticks"], snap["high_ticks"], snap["missed_reads"]) == (89, 111, 0)
    pos = {p["id"]: p for p in snap["positions"]}
    assert pos["long"]["crossings"] == 2 and pos["long"]["first"] == [(102, 11), (103, 11)]
    assert pos["short"]["crossings"] == 3 and pos["decoy"]["crossings"] == 0
    led.read("X", [_agg(20, 100, 120, 120)])  # 14..19 fell out of a too-short history
    assert led.snapshot()["X"]["missed_reads"] == 6


def test_ledger_keeps_only_the_first_crossings() -> None:
    led = ExchangeLedger(tick_e8=1)
    led.start("X", 1, 1)
    led.arm(PositionRecord("p", "X", "SHORT", 5, 1))
    led.read("X", [_agg(1, 0, 1, 1)])
    led.read("X", [_agg(2, 0, 2, 1000)])
    assert led.read("X", [_agg(2, 0, 2, 1000), (3, 9, 1, 1001, 1100, 0, False)]) == 1
    p = led.snapshot()["X"]["positions"][0]
    assert p["crossings"] == 100 and len(p["first"]) == CROSSINGS_KEPT


def test_judge_stop_verdicts() -> None:
    crossed = {"crossings": 1, "first": [(100, 10)]}
    none = Spans()
    assert judge_stop(crossed, 1, none, none) == "ok"
    assert judge_stop(crossed, 2, none, none) == "doubled"
    assert judge_stop(crossed, 0, none, none) == "missed"
    assert judge_stop(crossed, 0, Spans([(100, 100)]), none) == "missed"  # the agg was seen
    assert judge_stop(crossed, 0, Spans([(100, 100)]), Spans([(10, 10)])) == "missed-unknowable"
    assert judge_stop({"crossings": 0, "first": []}, 0, none, none) == "ok"
    assert judge_stop({"crossings": 0, "first": []}, 1, none, none) == "false"

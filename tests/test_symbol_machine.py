"""The sans-I/O symbol machine (gateway/core/symbol_machine.py) as a specification: plain
calls, times passed in, answers read from ``out`` and ``requests``; no trio, no sockets.
The hypothesis properties drive it with random gaps, duplicates and REST answers in any
order, as the network and the backfiller can: every id is published once or reported in
a `GapUnfilled`, in increasing order, and every gap ends exactly once."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import (
    CandleClosed,
    DepthUpdate,
    GapDetected,
    GapFilled,
    GapUnfilled,
    Kline,
    StopTriggered,
    Trade,
)
from gateway.core.backfill_protocol import (
    BackfillRequest,
    BackfillResult,
    DepthSnapshot,
    FallbackPrice,
    Need,
)
from gateway.core.holds import HoldBudget
from gateway.core.hook_protocol import CloseRequest, CloseResult
from gateway.core.positions import Position, Side
from gateway.core.symbol_machine import SNAPSHOT_RETRY, WAKE, SymbolMachine

_MIN = 60_000
NS = 1_767_225_600_000_000_000


def trade(i: int, price: float = 99.0, *, backfilled: bool = False) -> Trade:
    return Trade("BTCUSDT", i, price, 1.0, 1_767_225_600_000 + i, False, 0,
                 0 if backfilled else 1, backfilled)  # fmt: skip


def kline(open_time: int, closed: bool) -> Kline:
    return Kline("BTCUSDT", "1m", open_time, open_time + _MIN - 1, 1.0, 2.0, 0.5, 1.5, 1.0,
                 1.0, 0.0, 0.0, 1, -1, -1, closed, open_time, 1, False)  # fmt: skip


def machine(**kw: Any) -> SymbolMachine:
    kw.setdefault("can_backfill", True)
    return SymbolMachine("BTCUSDT", **kw)


def take(m: SymbolMachine) -> tuple[list[Any], list[Any]]:
    """What the machine answered since the last call, and empty its outboxes."""
    out, requests = list(m.out), list(m.requests)
    m.out.clear()
    m.requests.clear()
    return out, requests


def rows(first: int, last: int) -> tuple[Trade, ...]:
    return tuple(trade(i, backfilled=True) for i in range(first, last + 1))


def test_a_trade_is_published_as_it_is_and_asks_for_nothing() -> None:
    m = machine()
    m.on_event(trade(1), 0.0, NS)
    assert take(m) == ([trade(1)], [])
    assert (m.last_price, m.counts, m.handled) == (99.0, {"Trade": 1}, 1)


def test_a_duplicate_is_dropped_and_counted() -> None:
    m = machine()
    for i in (1, 2, 2, 1):
        m.on_event(trade(i), 0.0, NS)
    out, _ = take(m)
    assert [e.trade_id for e in out] == [1, 2] and m.duplicates == 2


def test_a_gap_asks_for_its_rows_and_holds_what_follows_until_they_come() -> None:
    m = machine(hold_max_events=100, hold_max_seconds=10.0)
    m.on_event(trade(1), 5.0, NS)
    m.on_event(trade(5), 5.0, NS)  # 2..4 missing
    out, requests = take(m)
    assert out == [trade(1), GapDetected("BTCUSDT", "trade", 2, 4, True)]
    request = requests[0]
    assert isinstance(request, BackfillRequest) and (request.first, request.last) == (2, 4)
    assert requests[1] is WAKE and m.deadline() == 15.0  # the hold's bound
    m.on_event(trade(6), 6.0, NS)
    assert take(m) == ([], []) and m.holds.held() == 2
    assert m.backfill_need(request) is Need.ROWS
    m.on_backfill(BackfillResult(request, rows(2, 4)), 7.0, NS)
    out, _ = take(m)
    assert [getattr(e, "trade_id", type(e).__name__) for e in out] == [
        2, 3, 4, "GapFilled", 5, 6]  # fmt: skip
    assert out[3] == GapFilled("BTCUSDT", "trade", 2, 4, 3)
    assert m.holds.held() == 0 and m.deadline() is None and m.backfilled == 3


def test_without_rest_a_gap_ends_unfilled_at_once_and_nothing_is_held() -> None:
    m = machine(can_backfill=False, hold_max_events=100)
    for i in (1, 4, 5):
        m.on_event(trade(i), 0.0, NS)
    out, requests = take(m)
    assert [type(e).__name__ for e in out] == ["Trade", "GapDetected", "GapUnfilled",
                                               "Trade", "Trade"]  # fmt: skip
    assert out[1].backfilling is False and "rest_url is empty" in out[2].reason
    assert requests == []


def test_a_refused_backfill_ends_its_gap_unfilled_and_releases_its_hold() -> None:
    m = machine(hold_max_events=100)
    m.on_event(trade(1), 0.0, NS)
    m.on_event(trade(5), 0.0, NS)
    _, requests = take(m)
    m.backfill_refused(requests[0], 0.0)
    out, _ = take(m)
    assert out == [GapUnfilled("BTCUSDT", "trade", 2, 4, "the backfill queue is full"), trade(5)]
    assert m.holds.held() == 0


def test_a_hold_past_its_deadline_is_released_and_its_gap_ends_unfilled_once() -> None:
    m = machine(hold_max_events=100, hold_max_seconds=2.0)
    m.on_event(trade(1), 0.0, NS)
    m.on_event(trade(5), 0.0, NS)
    _, (request, _) = take(m)
    m.on_timer(1.0)  # not due yet
    assert take(m) == ([], [])
    m.on_timer(2.0)
    out, _ = take(m)
    assert [type(e).__name__ for e in out] == ["GapUnfilled", "Trade"]
    # The answer comes late: its rows only reach the stop-loss book, nothing is published.
    assert m.backfill_need(request) is Need.NOTHING
    m.on_backfill(BackfillResult(request, rows(2, 4)), 3.0, NS)
    assert take(m) == ([], [])


def test_a_stop_fires_once_stamped_with_the_times_given_and_asks_for_its_close() -> None:
    m = machine()
    m.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    m.on_event(trade(1, 96.0), 1.0, NS)
    assert take(m) == ([trade(1, 96.0)], [])
    m.on_event(trade(2, 94.0), 2.0, NS + 7)
    out, requests = take(m)
    fired = out[0]
    assert isinstance(fired, StopTriggered) and fired.position_id == "p1"
    assert (fired.receive_ns, fired.handled_ns, fired.trigger_price) == (1, NS + 7, 94.0)
    assert out[1] == trade(2, 94.0)
    assert isinstance(requests[0], CloseRequest) and requests[1] is WAKE
    m.on_event(trade(3, 90.0), 3.0, NS)  # fired positions never fire again
    assert [type(e) for e in take(m)[0]] == [Trade]


def test_a_failed_close_is_asked_for_again_when_its_retry_is_due() -> None:
    m = machine()
    m.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    m.on_event(trade(1, 94.0), 10.0, NS)
    take(m)
    m.on_close_result(CloseResult("p1", "RuntimeError('broker down')"), 10.5)
    due = m.deadline()
    assert due is not None and due > 10.5
    m.on_timer(due - 0.001)
    assert take(m)[1] == []
    m.on_timer(due)
    assert [type(r) for r in take(m)[1]] == [CloseRequest]
    m.on_close_result(CloseResult("p1", None), due + 0.1)
    assert m.deadline() is None


def test_without_a_close_hook_a_fired_position_is_closed_at_once() -> None:
    m = machine(close_hook=False)
    m.open_position(Position("p1", "BTCUSDT", Side.SHORT, 100.0, 1.0, stop_price=105.0))
    m.on_event(trade(1, 106.0), 0.0, NS)
    assert take(m)[1] == [] and m.stops.positions[0].state.value == "closed"


def test_unchecked_prices_fire_the_stops_they_cross_on_catch_up() -> None:
    m = machine()
    m.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    m.unchecked(99.0)
    m.unchecked(93.0)  # a dropped trade: the stops see its price when the actor is back
    m.recover(4.0, NS)
    out, requests = take(m)
    assert [type(e) for e in out] == [StopTriggered] and out[0].trigger_price == 93.0
    assert type(requests[0]) is CloseRequest


def test_a_dead_letter_is_a_one_id_gap_that_will_not_be_filled() -> None:
    m = machine()
    m.dead_letter(trade(7, 80.0), "RuntimeError('bug')")
    out, _ = take(m)
    assert out[0] == GapDetected("BTCUSDT", "trade", 7, 7, False)
    assert isinstance(out[1], GapUnfilled) and "RuntimeError('bug')" in out[1].reason
    assert (m.unchecked_low, m.unchecked_high) == (80.0, 80.0)


def test_a_stale_fallback_price_is_ignored_and_a_current_one_fires() -> None:
    m = machine()
    m.open_position(Position("p1", "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0))
    m.on_event(trade(1), 0.0, NS)
    asked = m.live_trades()
    m.on_event(trade(2), 0.0, NS)
    take(m)
    m.on_fallback_price(FallbackPrice(90.0, asked), 1.0, NS)
    assert take(m) == ([], []) and m.stale_fallbacks == 1
    m.on_fallback_price(FallbackPrice(90.0, m.live_trades()), 1.0, NS)
    assert [type(e) for e in take(m)[0]] == [StopTriggered]


def test_a_candle_close_is_published_before_the_kline_that_closed_it() -> None:
    m = machine()
    m.on_event(kline(0, False), 0.0, NS)
    m.on_event(kline(0, True), 0.0, NS)
    out, _ = take(m)
    assert [type(e) for e in out] == [Kline, CandleClosed, Kline]
    assert len(m.candles.buffer("1m")) == 1


def test_a_candle_gap_asks_for_the_missing_open_times_over_rest() -> None:
    m = machine()
    m.on_event(kline(0, True), 0.0, NS)
    m.on_event(kline(3 * _MIN, False), 0.0, NS)
    out, requests = take(m)
    gap = next(e for e in out if isinstance(e, GapDetected))
    assert (gap.stream, gap.first, gap.last) == ("kline_1m", _MIN, 3 * _MIN - 1)
    assert requests == [BackfillRequest("BTCUSDT", "kline", _MIN, 3 * _MIN - 1, "1m")]


def _diff(first: int, last: int) -> DepthUpdate:
    return DepthUpdate("BTCUSDT", first, last, ((100.0, 1.0),), ((101.0, 1.0),), 0, 1)


def test_a_failed_snapshot_is_asked_for_again_only_after_its_backoff() -> None:
    m = machine()
    m.on_event(_diff(10, 11), 0.0, NS)
    _, requests = take(m)
    assert requests == [BackfillRequest("BTCUSDT", "depth", 0, 0)]
    m.on_backfill(BackfillResult(requests[0], (), error="HTTP 503"), 1.0, NS)
    wait = SNAPSHOT_RETRY.ceiling(0)
    m.on_event(_diff(12, 12), 1.0 + wait / 2, NS)
    assert take(m)[1] == []  # within the backoff
    m.on_event(_diff(13, 13), 1.0 + wait, NS)
    assert take(m)[1] == [BackfillRequest("BTCUSDT", "depth", 0, 0)]
    snap = DepthSnapshot("BTCUSDT", 12, ((100.0, 2.0),), ((101.0, 2.0),))
    m.on_backfill(BackfillResult(requests[0], (snap,)), 2.0 + wait, NS)
    assert m.book is not None and m.book.state.value == "synced" and m.snapshot_failures == 0


def test_the_machine_source_reads_no_clock_and_imports_no_trio() -> None:
    import gateway.core.holds as holds
    import gateway.core.symbol_machine as sm
    import gateway.core.symbol_rest as rest

    for module in (sm, rest, holds):
        text = Path(str(module.__file__)).read_text(encoding="utf-8")
        for banned in ("import trio", "time.time", "current_time", "perf_counter",
                       "monotonic("):  # fmt: skip
            assert banned not in text, (module.__name__, banned)


# Properties -------------------------------------------------------------------------

#: Steps of a live trade feed: the next id, a gap of k ids, or an old id again.
_STEP = st.one_of(st.just(("next", 1)), st.tuples(st.just("skip"), st.integers(1, 40)),
                  st.tuples(st.just("back"), st.integers(0, 5)))  # fmt: skip


def _feed(m: SymbolMachine, steps: list[tuple[str, int]], published: list[Any],
          asked: list[BackfillRequest]) -> int:
    """Feed live trades per ``steps``; returns the highest id sent."""
    top = 1
    m.on_event(trade(1), 0.0, NS)
    for kind, k in steps:
        tid = top + 1 if kind == "next" else top + 1 + k if kind == "skip" else top - k
        top = max(top, tid)
        m.on_event(trade(tid), 0.0, NS)
        out, requests = take(m)
        published += out
        asked += [r for r in requests if isinstance(r, BackfillRequest)]
    return top


def _answers(request: BackfillRequest, how: int) -> list[BackfillResult]:
    """REST's answers to one gap: whole (0), in two parts (1), failed (2), half served (3)."""
    first, last = request.first, request.last
    if how == 0:
        return [BackfillResult(request, rows(first, last))]
    if how == 1 and last > first:
        mid = (first + last) // 2
        return [BackfillResult(request, rows(first, mid), final=False),
                BackfillResult(request, rows(mid + 1, last))]  # fmt: skip
    if how == 3 and last > first:
        mid = (first + last) // 2
        return [BackfillResult(request, rows(first, mid), error="HTTP 500", missing_from=mid + 1)]
    return [BackfillResult(request, (), error="HTTP 503", missing_from=first)]


def _judge(published: list[Any], top: int) -> None:
    """Each id once, published or in one GapUnfilled; trade ids increasing; every gap
    ended exactly once, after it was detected."""
    ids = [e.trade_id for e in published if isinstance(e, Trade)]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), ids
    covered = set(ids)
    open_gaps: dict[int, GapDetected] = {}
    for e in published:
        if isinstance(e, GapDetected):
            open_gaps[e.last] = e
        elif isinstance(e, GapFilled | GapUnfilled):
            assert e.last in open_gaps, e  # ended once, and only after its detection
            assert open_gaps.pop(e.last).first <= e.first
            if isinstance(e, GapUnfilled):
                unfilled = set(range(e.first, e.last + 1))
                assert not unfilled & covered, e
                covered |= unfilled
    assert open_gaps == {}
    assert covered == set(range(1, top + 1))


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_STEP, min_size=1, max_size=40), hows=st.lists(st.integers(0, 3)),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_every_id_is_published_once_in_order_or_reported_whatever_rest_answers(
    steps: list[tuple[str, int]], hows: list[int], seed: int,
) -> None:
    m = machine(hold_max_events=10_000, hold_max_seconds=1e9)
    published: list[Any] = []
    asked: list[BackfillRequest] = []
    top = _feed(m, steps, published, asked)
    pending = [_answers(r, hows[i] if i < len(hows) else 0) for i, r in enumerate(asked)]
    rng = random.Random(seed)  # the order REST answers in: any, each gap's parts in order
    for _ in range(sum(len(p) for p in pending)):
        waiting = [p for p in pending if p]
        part = rng.choice(waiting).pop(0)
        m.on_backfill(part, 1.0, NS)
        published += take(m)[0]
    _judge(published, top)
    assert m.holds.held() == 0 and m.deadline() is None


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_STEP, min_size=1, max_size=40), bound=st.integers(1, 6),
       budget=st.integers(0, 8), late_after=st.integers(0, 40),
       refused=st.lists(st.booleans()))  # fmt: skip
def test_holds_past_their_bounds_still_end_every_gap_once_in_order(
    steps: list[tuple[str, int]], bound: int, budget: int, late_after: int,
    refused: list[bool],
) -> None:
    """Small hold bounds (per stream and gateway-wide), answers that come after the hold
    gave up, and a backfiller that refuses some requests (its queue full) in the same
    step: ``hold_overflow`` "unfilled" keeps the order and ends each gap once."""
    m = machine(hold_max_events=bound, hold_max_seconds=1e9, hold_budget=HoldBudget(budget))
    published: list[Any] = []
    asked: list[BackfillRequest] = []
    top = 1
    m.on_event(trade(1), 0.0, NS)
    for n, (kind, k) in enumerate(steps):
        tid = top + 1 if kind == "next" else top + 1 + k if kind == "skip" else top - k
        top = max(top, tid)
        m.on_event(trade(tid), 0.0, NS)
        for request in [r for r in m.requests if isinstance(r, BackfillRequest)]:
            if refused and refused.pop():
                m.requests.remove(request)
                m.backfill_refused(request, 0.0)  # as the runtime does, before publishing
        out, requests = take(m)
        published += out
        asked += [r for r in requests if isinstance(r, BackfillRequest)]
        if n == late_after:  # some answers come while the feed goes on
            for request in asked:
                m.on_backfill(BackfillResult(request, rows(request.first, request.last)),
                              0.0, NS)  # fmt: skip
                published += take(m)[0]
            asked.clear()
    for request in asked:
        m.on_backfill(BackfillResult(request, rows(request.first, request.last)), 0.0, NS)
        published += take(m)[0]
    _judge(published, top)
    assert m.holds.held() == 0


@pytest.mark.parametrize("crash_at", [0, 1])
def test_a_crash_while_applying_an_answer_still_ends_its_gap_once(crash_at: int) -> None:
    m = machine(hold_max_events=100)
    for i in (1, 10):
        m.on_event(trade(i), 0.0, NS)
    _, (request, _) = take(m)
    parts = _answers(request, 1)  # 2..5, then 6..9
    broken = attrs.evolve(parts[crash_at], events=(attrs.evolve(trade(2), price=None),))
    if crash_at:
        m.on_backfill(parts[0], 0.0, NS)
    with pytest.raises(TypeError):
        m.on_backfill(broken, 0.0, NS)
    m.backfill_crashed(broken)
    out, _ = take(m)
    endings = [e for e in out if isinstance(e, GapUnfilled)]
    assert len(endings) == 1 and "raised while applying" in endings[0].reason
    assert endings[0].first == (6 if crash_at else 2)  # what was published is not in it
    for part in parts[crash_at + 1:]:  # later parts only reach the stop-loss book
        m.on_backfill(part, 0.0, NS)
    assert not [e for e in take(m)[0] if isinstance(e, GapFilled | GapUnfilled)]
    assert m.holds.held() == 0


def test_a_refused_gap_ends_once_even_when_its_hold_overflowed_first() -> None:
    """A full gateway-wide hold bound and a full backfill queue on the same trade: the
    hold's overflow ends the gap, and the refusal does not end it again."""
    m = machine(hold_max_events=100, hold_budget=HoldBudget(1))
    m.on_event(trade(1), 0.0, NS)
    m.holds.budget.take()  # another symbol holds the only slot
    m.on_event(trade(5), 0.0, NS)
    request = next(r for r in m.requests if isinstance(r, BackfillRequest))
    m.backfill_refused(request, 0.0)
    out, _ = take(m)
    assert [type(e).__name__ for e in out] == ["Trade", "GapDetected", "GapUnfilled", "Trade"]
    assert m.holds.abandoned == set()


def test_a_refused_gap_ends_right_after_its_detection_before_the_live_event() -> None:
    m = machine()  # holds off: the live event is published at once
    m.on_event(trade(1), 0.0, NS)
    m.on_event(trade(5), 0.0, NS)
    m.backfill_refused(next(r for r in m.requests if isinstance(r, BackfillRequest)), 0.0)
    out, _ = take(m)
    assert [getattr(e, "trade_id", type(e).__name__) for e in out] == [
        1, "GapDetected", "GapUnfilled", 5]  # fmt: skip


def test_a_dropped_event_says_so() -> None:
    m = machine()
    assert m.on_event(trade(1), 0.0, NS) is True
    assert m.on_event(trade(1), 0.0, NS) is False  # a duplicate
    m.on_event(kline(0, True), 0.0, NS)
    assert m.on_event(kline(0, False), 0.0, NS) is False  # older than what was shown

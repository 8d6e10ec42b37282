"""StopLossBook: stops fire exactly once at their threshold; closes are retried until done."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.core.stop_loss import (
    Position,
    Side,
    StopLossBook,
    StopState,
    StopTrigger,
)
from gateway.errors import GatewayError, PositionError

SYM = "BTCUSDT"


def long(id: str = "p1", entry: float = 100.0, pct: float | None = 0.02,
         price: float | None = None) -> Position:  # fmt: skip
    return Position(id, SYM, Side.LONG, entry, 1.0, stop_pct=pct, stop_price=price)


def short(id: str = "s1", entry: float = 100.0, pct: float | None = 0.02,
          price: float | None = None) -> Position:  # fmt: skip
    return Position(id, SYM, Side.SHORT, entry, 1.0, stop_pct=pct, stop_price=price)


EPOCH = 1_700_000_000.0  #: the wall clock of `book_with` books (the book's ``now`` is apart)


def book_with(*positions: Position) -> StopLossBook:
    book = StopLossBook(SYM, wall_clock=lambda: EPOCH)
    for p in positions:
        book.open(p)
    return book


# -- levels and firing ---------------------------------------------------------------------


def test_stop_levels_from_percent_or_absolute_price() -> None:
    assert long().stop_level == 100.0 * (1 - 0.02)
    assert short().stop_level == 100.0 * (1 + 0.02)
    assert long(pct=None, price=97.5).stop_level == 97.5
    assert short(pct=None, price=101.0).stop_level == 101.0


def test_long_stop_fires_once_at_threshold() -> None:
    pos = long()
    book = book_with(pos)
    assert book.check(98.01, now=1.0) == []
    fired = book.check(pos.stop_level, now=2.0, trade_time=1234)
    assert fired == [StopTrigger(pos, pos.stop_level, 2.0, 1234, triggered_at_epoch=EPOCH)]
    assert book.status("p1").state is StopState.TRIGGERED
    assert book.check(50.0, now=3.0) == []  # never again
    assert book.fired == 1


def test_short_stop_fires_once_at_threshold() -> None:
    pos = short()
    book = book_with(pos)
    assert book.check(101.99, now=1.0) == []
    assert [t.price for t in book.check(pos.stop_level, now=2.0)] == [pos.stop_level]
    assert book.check(500.0, now=3.0) == []
    assert book.fired == 1


def test_a_price_one_ulp_short_of_the_stop_does_not_fire() -> None:
    pos = long()
    book = book_with(pos)
    assert book.check(math.nextafter(pos.stop_level, math.inf), now=1.0) == []
    assert book.check(math.nextafter(pos.stop_level, -math.inf), now=1.0) != []


def test_price_through_the_stop_fires_at_that_price() -> None:
    book = book_with(long(pct=None, price=95.0))
    assert [t.price for t in book.check(90.0, now=1.0)] == [90.0]


def test_one_price_fires_every_crossed_stop_and_only_those() -> None:
    book = book_with(long("a", pct=0.01), long("b", pct=0.05), short("c", pct=0.01))
    assert [t.position.id for t in book.check(97.0, now=1.0)] == ["a"]
    assert [t.position.id for t in book.check(94.0, now=2.0)] == ["b"]
    assert [t.position.id for t in book.check(101.0, now=3.0)] == ["c"]
    assert book.armed_count == 0


def test_nan_price_never_fires() -> None:
    book = book_with(long(), short())
    assert book.check(math.nan, now=1.0) == []


def test_check_range_uses_the_low_for_longs_and_the_high_for_shorts() -> None:
    """Dropped trades (overflow): the lowest and highest of them still reach the stops."""
    book = book_with(long(), short())
    assert book.check_range(98.5, 101.5, now=1.0) == []
    fired = book.check_range(97.0, 103.0, now=2.0)
    assert {(t.position.id, t.price) for t in fired} == {("p1", 97.0), ("s1", 103.0)}
    with pytest.raises(ValueError):
        book.check_range(2.0, 1.0, now=3.0)


# -- the close hook protocol ----------------------------------------------------------------


def test_triggered_before_the_hook_runs_so_a_crash_loses_nothing() -> None:
    book = book_with(long())
    [trigger] = book.check(97.0, now=1.0)
    # the actor crashes here, before running the close hook; a restarted one finds it:
    assert book.recover(now=1.5) == 0
    assert book.pending_closes(now=1.5) == [trigger]
    assert book.check(96.0, now=1.6) == []  # and nothing fires twice


def test_crash_during_the_close_hook_reruns_it_after_restart() -> None:
    book = book_with(long())
    book.check(97.0, now=1.0)
    assert book.mark_closing("p1", now=1.0) == 1
    assert book.status("p1").state is StopState.CLOSING
    assert book.pending_closes(now=2.0) == []  # in flight: not offered twice
    assert book.recover(now=2.0) == 1  # the actor died in the hook and restarted
    [again] = book.pending_closes(now=2.0)
    assert again.position.id == "p1" and again.attempts == 1
    assert book.mark_closing("p1", now=2.0) == 2
    assert book.close_succeeded("p1", now=2.1)
    assert book.status("p1").state is StopState.CLOSED
    assert (book.fired, book.closed) == (1, 1)


def test_a_hung_close_is_offered_again_after_the_close_timeout() -> None:
    book = StopLossBook(SYM, close_timeout=10.0)
    book.open(long())
    book.check(97.0, now=0.0)
    book.mark_closing("p1", now=0.0)
    assert book.pending_closes(now=9.9) == []
    assert [t.position.id for t in book.pending_closes(now=10.0)] == ["p1"]


def test_failed_close_stays_closing_and_retries_with_exponential_backoff() -> None:
    book = book_with(long())
    book.check(97.0, now=0.0)
    retry_times = []
    now = 0.0
    for _ in range(10):
        book.mark_closing("p1", now)
        retry_times.append(book.close_failed("p1", "TimeoutError()", now) - now)
        status = book.status("p1")
        assert status.state is StopState.CLOSING and status.last_error == "TimeoutError()"
        assert book.pending_closes(now) == []
        now = status.next_attempt_at or 0.0
        assert [t.position.id for t in book.pending_closes(now)] == ["p1"]
    assert retry_times == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert book.close_failures == 10 and book.status("p1").attempts == 10
    assert book.next_due() == now


def test_close_succeeded_is_counted_once() -> None:
    book = book_with(long())
    book.check(97.0, now=0.0)
    book.mark_closing("p1", now=0.0)
    assert book.close_succeeded("p1", now=0.1)
    assert not book.close_succeeded("p1", now=0.2)
    assert book.closed == 1
    assert book.pending_closes(now=100.0) == []
    assert book.next_due() is None
    with pytest.raises(PositionError):
        book.close_failed("p1", "late", now=0.3)


def test_hook_calls_on_an_armed_position_are_refused() -> None:
    book = book_with(long())
    for call in (book.mark_closing, book.close_succeeded):
        with pytest.raises(PositionError, match="armed"):
            call("p1", 0.0)


def test_pending_closes_oldest_trigger_first() -> None:
    book = book_with(long("a", pct=0.01), long("b", pct=0.05))
    book.check(98.0, now=1.0)
    book.check(90.0, now=2.0)
    assert [t.position.id for t in book.pending_closes(now=3.0)] == ["a", "b"]


# -- managing positions ---------------------------------------------------------------------


def test_adjust_stop_moves_an_armed_stop() -> None:
    book = book_with(long())
    moved = book.adjust_stop("p1", stop_price=99.5)
    assert moved.stop_level == 99.5 and book.status("p1").position == moved
    assert [t.price for t in book.check(99.5, now=1.0)] == [99.5]
    with pytest.raises(PositionError, match="only armed"):
        book.adjust_stop("p1", stop_pct=0.1)


def test_lowering_a_long_stop_stops_it_firing_at_the_old_level() -> None:
    book = book_with(long())
    book.adjust_stop("p1", stop_pct=0.10)
    assert book.check(95.0, now=1.0) == []
    assert book.check(90.0, now=1.0) != []


def test_cancel_disarms_and_cannot_cancel_a_fired_stop() -> None:
    book = book_with(long("a"), long("b"))
    assert book.cancel("a") and not book.cancel("a")
    assert book.check(10.0, now=1.0)[0].position.id == "b"
    with pytest.raises(PositionError, match="fired"):
        book.cancel("b")
    assert book.cancelled == 1
    assert [s.state for s in book.positions] == [StopState.CANCELLED, StopState.TRIGGERED]


def test_ids_are_unique_until_forgotten() -> None:
    book = book_with(long())
    with pytest.raises(PositionError, match="already"):
        book.open(long())
    with pytest.raises(PositionError, match="only finished"):
        book.forget("p1")
    book.cancel("p1")
    book.forget("p1")
    assert "p1" not in book and len(book) == 0
    book.open(long())


def test_unknown_ids_and_bad_positions_are_refused() -> None:
    book = StopLossBook(SYM)
    with pytest.raises(PositionError) as info:
        book.status("nope")
    assert isinstance(info.value, GatewayError)
    with pytest.raises(PositionError, match="ETHUSDT"):
        book.open(Position("x", "ETHUSDT", Side.LONG, 1.0, 1.0, stop_pct=0.1))
    for kwargs in (
        {"stop_pct": None, "stop_price": None},
        {"stop_pct": 0.1, "stop_price": 90.0},
        {"stop_pct": 1.5},
        {"stop_pct": 0.0},
        {"stop_pct": None, "stop_price": -1.0},
        {"stop_pct": math.nan},
    ):
        with pytest.raises(PositionError):
            Position("x", SYM, Side.LONG, 100.0, 1.0, **kwargs)  # type: ignore[arg-type]
    assert short(pct=1.5).stop_level == 250.0  # a SHORT may risk more than 100%


# -- the exactly-once property under random prices and crashes --------------------------------


class _Crash(Exception):
    """Simulates the symbol actor dying (in the hook, or between check and hook)."""


class _Actor:
    """Plays the symbol actor over a book it does not own (the supervisor does)."""

    def __init__(self, book: StopLossBook, now: float) -> None:
        self.book = book
        book.recover(now)

    def run_closes(self, now: float, hook: str, log: Counter[str], closed: Counter[str]) -> None:
        for trig in self.book.pending_closes(now):
            pid = trig.position.id
            self.book.mark_closing(pid, now)
            log[pid] += 1
            if hook == "crash":
                raise _Crash
            if hook == "fail":
                self.book.close_failed(pid, "RuntimeError('exchange down')", now)
            elif self.book.close_succeeded(pid, now):
                closed[pid] += 1


prices = st.floats(50.0, 150.0, allow_nan=False)


class StopLossMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = StopLossBook(SYM)
        self.now = 0.0
        self.actor = _Actor(self.book, self.now)
        self.armed: dict[str, Position] = {}
        self.triggers: Counter[str] = Counter()
        self.hook_runs: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.n = 0

    def _fired(self, triggers: list[StopTrigger], low: float, high: float) -> None:
        expected = {
            pid for pid, p in self.armed.items()
            if (p.side is Side.LONG and low <= p.stop_level)
            or (p.side is Side.SHORT and high >= p.stop_level)
        }  # fmt: skip
        assert {t.position.id for t in triggers} == expected
        for t in triggers:
            assert t.position.crossed_by(t.price)  # only at a crossing price
            assert t.price == (low if t.position.side is Side.LONG else high)
            self.triggers[t.position.id] += 1
            del self.armed[t.position.id]
            assert self.book.status(t.position.id).state is StopState.TRIGGERED

    @rule(side=st.sampled_from(Side), entry=prices, pct=st.floats(0.001, 0.3),
          absolute=st.booleans())  # fmt: skip
    def open(self, side: Side, entry: float, pct: float, absolute: bool) -> None:
        self.n += 1
        pid = f"p{self.n}"
        if absolute:
            level = entry * (1 - pct) if side is Side.LONG else entry * (1 + pct)
            pos = Position(pid, SYM, side, entry, 1.0, stop_price=level)
        else:
            pos = Position(pid, SYM, side, entry, 1.0, stop_pct=pct)
        self.book.open(pos)
        self.armed[pid] = pos

    @rule(price=prices, hook=st.sampled_from(["ok", "ok", "fail", "crash", "skip"]))
    def trade(self, price: float, hook: str) -> None:
        self.now += 0.01
        self._fired(self.book.check(price, self.now), price, price)
        self._closes(hook)

    @precondition(lambda self: bool(self.armed))
    @rule(data=st.data(), nudge=st.sampled_from(["at", "ulp_in", "ulp_out", "in", "out"]),
          hook=st.sampled_from(["ok", "fail", "crash", "skip"]))  # fmt: skip
    def trade_near_a_stop(self, data: st.DataObject, nudge: str, hook: str) -> None:
        """Prices at, one ulp around, and a little around an armed stop's level."""
        pos = self.armed[data.draw(st.sampled_from(sorted(self.armed)))]
        inward = -math.inf if pos.side is Side.LONG else math.inf  # the crossing direction
        delta = data.draw(st.floats(1e-9, 1.0)) * (-1 if pos.side is Side.LONG else 1)
        price = {
            "at": pos.stop_level,
            "ulp_in": math.nextafter(pos.stop_level, inward),
            "ulp_out": math.nextafter(pos.stop_level, -inward),
            "in": pos.stop_level + delta,
            "out": pos.stop_level - delta,
        }[nudge]
        self.now += 0.01
        self._fired(self.book.check(price, self.now), price, price)
        assert (self.book.status(pos.id).state is not StopState.ARMED) == pos.crossed_by(price)
        self._closes(hook)

    @rule(a=prices, b=prices, hook=st.sampled_from(["ok", "fail", "crash", "skip"]))
    def dropped_trades(self, a: float, b: float, hook: str) -> None:
        self.now += 0.01
        low, high = min(a, b), max(a, b)
        self._fired(self.book.check_range(low, high, self.now), low, high)
        self._closes(hook)

    def _closes(self, hook: str) -> None:
        if hook == "skip":  # the actor dies between check and the hook
            self.actor = _Actor(self.book, self.now)
            return
        try:
            self.actor.run_closes(self.now, hook, self.hook_runs, self.closed)
        except _Crash:
            self.actor = _Actor(self.book, self.now)

    @precondition(lambda self: bool(self.armed))
    @rule(data=st.data(), pct=st.floats(0.001, 0.3))
    def adjust(self, data: st.DataObject, pct: float) -> None:
        pid = data.draw(st.sampled_from(sorted(self.armed)))
        self.armed[pid] = self.book.adjust_stop(pid, stop_pct=pct)

    @precondition(lambda self: bool(self.armed))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.armed)))
        assert self.book.cancel(pid)
        del self.armed[pid]

    @rule(dt=st.floats(0.0, 10.0))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def fired_at_most_once_and_counted(self) -> None:
        assert all(n == 1 for n in self.triggers.values())
        assert self.book.fired == sum(self.triggers.values())
        assert all(n == 1 for n in self.closed.values())
        assert self.book.closed == len(self.closed)
        for s in self.book.positions:
            assert (s.state is StopState.ARMED) == (s.position.id in self.armed)

    def teardown(self) -> None:
        # let every retry come due, restart once, and close with a healthy hook
        self.now += 1000.0
        self.actor = _Actor(self.book, self.now)
        self.actor.run_closes(self.now, "ok", self.hook_runs, self.closed)
        assert set(self.closed) == set(self.triggers)
        for pid in self.triggers:
            assert self.book.status(pid).state is StopState.CLOSED
            assert self.hook_runs[pid] >= 1  # at least once; the trigger itself exactly once


TestStopLossMachine = StopLossMachine.TestCase
TestStopLossMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_users_get_epoch_times_while_deadlines_stay_on_the_books_clock() -> None:
    """``now`` is the actor's trio clock (here near 0, as under MockClock); every time a
    user sees also comes as Unix epoch seconds from the wall clock. Before, only the trio
    clock values existed (``triggered_at`` 5.0, not a date)."""
    wall = [EPOCH]
    book = StopLossBook(SYM, retry_initial=0.5, close_timeout=10.0, wall_clock=lambda: wall[0])
    book.open(long())
    [trig] = book.check(97.0, now=5.0, trade_time=1_700_000_000_123)
    assert (trig.triggered_at, trig.triggered_at_epoch) == (5.0, EPOCH)
    status = book.status("p1")
    assert status.trigger == trig and status.next_attempt_at_epoch == EPOCH
    wall[0] = EPOCH + 1.0
    book.mark_closing("p1", now=6.0)
    assert book.status("p1").next_attempt_at == 16.0  # the hung-close deadline
    assert book.status("p1").next_attempt_at_epoch == EPOCH + 11.0
    book.close_failed("p1", "TimeoutError()", now=6.0)
    assert book.status("p1").next_attempt_at_epoch == EPOCH + 1.5
    wall[0] = EPOCH + 2.0
    book.mark_closing("p1", now=7.0)
    book.close_succeeded("p1", now=7.0)
    status = book.status("p1")
    assert (status.closed_at, status.closed_at_epoch) == (7.0, EPOCH + 2.0)
    assert status.next_attempt_at is None and status.next_attempt_at_epoch is None
    assert status.trigger is not None and status.trigger.triggered_at_epoch == EPOCH

"""RollingWindowLimiter: never more than `limit` events in any window of `window` seconds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.ratelimit import (
    RollingWindowLimiter,
    connect_attempt_limiter,
    control_frame_limiter,
)
from gateway.errors import GatewayError, RateLimitExceeded


def test_defaults_keep_a_margin_under_the_exchange_limit() -> None:
    lim = RollingWindowLimiter()
    assert (lim.limit, lim.window) == (4, 1.0)
    frames = control_frame_limiter()
    assert (frames.limit, frames.window) == (4, 1.0)
    connects = connect_attempt_limiter()
    assert (connects.limit, connects.window) == (300, 300.0)


def test_limit_events_pass_then_the_next_waits_for_the_oldest_to_expire() -> None:
    lim = RollingWindowLimiter(4, 1.0)
    for t in (0.0, 0.1, 0.2, 0.3):
        assert lim.delay_until_free(t) == 0.0
        assert lim.try_acquire(t)
    assert not lim.try_acquire(0.5)
    assert lim.delay_until_free(0.5) == pytest.approx(0.5)
    assert lim.next_free_time(0.5) == 1.0
    assert not lim.try_acquire(0.999999)
    assert lim.try_acquire(1.0)  # the event at 0.0 no longer counts at exactly 1.0
    assert lim.next_free_time(1.0) == 1.1


def test_a_refused_try_changes_nothing() -> None:
    lim = RollingWindowLimiter(1, 1.0)
    assert lim.try_acquire(0.0)
    assert not lim.try_acquire(0.5)
    assert lim.next_free_time(0.5) == 1.0


def test_record_raises_when_no_slot_is_free() -> None:
    lim = RollingWindowLimiter(2, 1.0)
    lim.record(0.0)
    lim.record(0.25)
    with pytest.raises(RateLimitExceeded) as info:
        lim.record(0.5)
    assert isinstance(info.value, GatewayError)
    assert info.value.retry_after == pytest.approx(0.5)
    assert lim.in_window(0.5) == 2


def test_in_window_counts_only_recent_events() -> None:
    lim = RollingWindowLimiter(3, 1.0)
    lim.record(0.0)
    lim.record(0.6)
    assert lim.in_window(0.9) == 2
    assert lim.in_window(1.2) == 1


def test_time_going_backwards_is_refused() -> None:
    lim = RollingWindowLimiter(3, 1.0)
    lim.record(5.0)
    with pytest.raises(ValueError, match="backwards"):
        lim.try_acquire(4.0)


@pytest.mark.parametrize("args", [(0, 1.0), (1, 0.0)])
def test_invalid_parameters_are_refused(args: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        RollingWindowLimiter(*args)


def test_connect_limiter_allows_300_per_five_minutes() -> None:
    lim = connect_attempt_limiter()
    for i in range(300):
        assert lim.try_acquire(i * 0.001)
    assert not lim.try_acquire(1.0)
    assert lim.next_free_time(1.0) == 300.0


@given(
    st.integers(1, 6),
    st.sampled_from([0.1, 1.0, 0.3]),
    st.lists(st.floats(0.0, 0.5, allow_nan=False), max_size=80),
)
def test_no_window_ever_holds_more_than_limit_events(
    limit: int, window: float, steps: list[float]
) -> None:
    lim = RollingWindowLimiter(limit, window)
    now = 0.0
    accepted: list[float] = []
    for step in steps:
        now += step
        free_at = lim.next_free_time(now)
        assert (lim.delay_until_free(now) == 0.0) == (free_at == now)
        if lim.try_acquire(now):
            accepted.append(now)
        else:
            # a paced caller sleeps until the slot frees and then always succeeds
            now = free_at
            assert lim.try_acquire(now)
            accepted.append(now)
    for i in range(len(accepted) - limit):
        assert accepted[i + limit] >= accepted[i] + window

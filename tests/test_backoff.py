"""ReconnectPolicy: exponential ceiling, cap, full jitter, attempt budget."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.backoff import ReconnectPolicy


class _Fixed:
    """A fake rng that returns the top of the range (so delays equal their ceiling)."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_defaults_match_the_original_layer() -> None:
    p = ReconnectPolicy()
    assert (p.initial, p.factor, p.cap, p.max_attempts) == (0.5, 2.0, 30.0, 10)


def test_ceiling_doubles_from_initial_until_the_cap() -> None:
    p = ReconnectPolicy()
    assert [p.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_delay_is_full_jitter_between_zero_and_the_ceiling() -> None:
    p = ReconnectPolicy()
    assert p.delay(3, _Fixed()) == 4.0
    rng = random.Random(7)
    delays = [p.delay(3, rng) for _ in range(2000)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert min(delays) < 0.1 and max(delays) > 3.9  # spread over the whole range


def test_same_seed_same_delays() -> None:
    p = ReconnectPolicy()
    a = [p.delay(n, random.Random(1)) for n in range(10)]
    b = [p.delay(n, random.Random(1)) for n in range(10)]
    assert a == b


def test_exhausted_after_max_attempts() -> None:
    p = ReconnectPolicy(max_attempts=3)
    assert [p.exhausted(n) for n in range(5)] == [False, False, False, True, True]


def test_unlimited_attempts_never_exhaust() -> None:
    assert not ReconnectPolicy(max_attempts=None).exhausted(10**9)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert ReconnectPolicy(factor=10.0).ceiling(10_000) == 30.0


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"factor": 0.5}, {"cap": -1}, {"max_attempts": -1}]
)
def test_invalid_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy().ceiling(-1)


@given(st.integers(0, 200), st.integers(0, 2**32))
def test_delay_never_exceeds_cap(attempt: int, seed: int) -> None:
    p = ReconnectPolicy()
    assert 0.0 <= p.delay(attempt, random.Random(seed)) <= p.cap

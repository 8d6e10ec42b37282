"""Backoff: exponential, capped, with optional full jitter; pure arithmetic."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors import Backoff


def test_without_jitter_the_delay_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=1.0, jitter=False)
    rng = random.Random(0)
    delays = [backoff.delay(n, rng) for n in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_a_huge_attempt_number_gives_the_cap_not_an_overflow() -> None:
    assert Backoff(cap=7.0, jitter=False).delay(100_000, random.Random()) == 7.0


def test_full_jitter_is_reproducible_with_a_seeded_rng() -> None:
    backoff = Backoff(initial=1.0, factor=3.0, cap=5.0)
    first = [backoff.delay(n, random.Random(7)) for n in range(4)]
    again = [backoff.delay(n, random.Random(7)) for n in range(4)]
    assert first == again
    reference = random.Random(7)
    assert first[2] == reference.uniform(0, 5.0)  # ceiling min(5, 1 * 3**2)


@given(attempt=st.integers(0, 2000), seed=st.integers(0, 2**32))
def test_full_jitter_stays_between_zero_and_the_ceiling(attempt: int, seed: int) -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=10.0)
    assert 0.0 <= backoff.delay(attempt, random.Random(seed)) <= backoff.ceiling(attempt)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"initial": -1.0}, "initial"), ({"factor": 0.5}, "factor"), ({"cap": -1.0}, "cap")],
)
def test_invalid_parameters_are_rejected_naming_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_a_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(-1, random.Random())

"""Issue 17: symbols are split between workers by rendezvous hashing, so that growing the
cluster moves only the new worker's share and nothing between the others."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cluster.hashing import assign, owner, worker_names

SYMBOLS = [f"S{i:04d}USDT" for i in range(3000)]


def test_every_symbol_has_one_owner_and_the_shares_are_even() -> None:
    shares = assign(SYMBOLS, worker_names(3))
    assert sorted(s for share in shares.values() for s in share) == sorted(SYMBOLS)
    for share in shares.values():
        assert 900 <= len(share) <= 1100  # 1000 each, within a few standard deviations


def test_going_from_two_to_three_workers_moves_a_third_and_only_to_the_new_one() -> None:
    before = {s: owner(s, worker_names(2)) for s in SYMBOLS}
    after = {s: owner(s, worker_names(3)) for s in SYMBOLS}
    moved = [s for s in SYMBOLS if before[s] != after[s]]
    assert {after[s] for s in moved} == {"w2"}  # nothing moves between w0 and w1
    assert 0.28 < len(moved) / len(SYMBOLS) < 0.39


@given(st.lists(st.from_regex(r"[A-Z0-9]{2,12}", fullmatch=True), min_size=1, max_size=40),
       st.integers(1, 6))  # fmt: skip
def test_the_owner_is_a_function_of_the_names_alone(symbols: list[str], count: int) -> None:
    workers = worker_names(count)
    shares = assign(symbols, workers)
    for w, share in shares.items():
        assert all(owner(s, list(reversed(workers))) == w for s in share)
    assert assign([s.lower() for s in symbols], workers) == shares


def test_a_cluster_has_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        worker_names(0)
    with pytest.raises(ValueError, match="no workers"):
        owner("BTCUSDT", [])

"""SequenceTracker: consecutive ids are NEW, repeats DUPLICATE, skips a GAP with its range."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from gateway.core.events import AggTrade
from gateway.core.sequence import DUPLICATE, NEW, ObservationKind, SequenceTracker
from tests.recorded_data import RECORDINGS, stream_frames


def test_first_id_is_new_without_history() -> None:
    assert SequenceTracker().observe(1234) is NEW


def test_consecutive_ids_are_new() -> None:
    t = SequenceTracker()
    assert [t.observe(i) for i in range(10, 15)] == [NEW] * 5
    assert t.last == 14


def test_repeated_or_older_id_is_a_duplicate_and_does_not_move_last() -> None:
    t = SequenceTracker(last=100)
    assert t.observe(100) is DUPLICATE
    assert t.observe(42) is DUPLICATE
    assert t.last == 100
    assert t.duplicates == 2


def test_skipped_ids_are_reported_as_one_gap_with_the_missing_range() -> None:
    t = SequenceTracker(last=100)
    obs = t.observe(105)
    assert obs.kind is ObservationKind.GAP
    assert (obs.first_missing, obs.last_missing, obs.missing) == (101, 104, 4)
    assert t.observe(106) is NEW  # the tracker moved on: the gap is reported once
    assert (t.gaps, t.missing) == (1, 4)


def test_backfilled_ids_arriving_late_are_duplicates() -> None:
    t = SequenceTracker(last=100)
    t.observe(103)
    assert t.observe(101) is DUPLICATE


def test_rotation_overlap_is_dropped() -> None:
    """Make-before-break: the new connection replays ids the old one delivered."""
    t = SequenceTracker()
    old = [t.observe(i) for i in range(1, 8)]
    new = [t.observe(i) for i in range(5, 11)]
    assert old == [NEW] * 7
    assert new == [DUPLICATE, DUPLICATE, DUPLICATE, NEW, NEW, NEW]


def test_reset_forgets_the_last_id() -> None:
    t = SequenceTracker(last=5)
    t.reset()
    assert t.observe(1) is NEW


def test_recorded_aggregate_trades_are_gapless_per_symbol() -> None:
    trackers: dict[str, SequenceTracker] = defaultdict(SequenceTracker)
    seen = 0
    for rec in RECORDINGS:
        for frame in stream_frames(rec):
            ev = frame.event
            if isinstance(ev, AggTrade):
                assert trackers[f"{rec}/{ev.symbol}"].observe(ev.agg_trade_id) is NEW
                seen += 1
    assert seen == 54


@given(st.lists(st.integers(0, 200), max_size=100))
def test_every_id_is_accounted_for_exactly(ids: list[int]) -> None:
    """NEW + gap ranges cover every id from the first to the highest, without overlap."""
    t = SequenceTracker()
    covered: list[int] = []
    for i in ids:
        obs = t.observe(i)
        if obs.kind is ObservationKind.GAP:
            assert obs.first_missing is not None and obs.last_missing is not None
            covered.extend(range(obs.first_missing, obs.last_missing + 1))
            covered.append(i)
        elif obs is NEW:
            covered.append(i)
        else:
            assert covered and i <= max(covered)
    if ids:
        assert covered == list(range(ids[0], max(ids) + 1))

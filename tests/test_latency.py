"""LatencyRecorder: log-linear buckets within 3.1%, HDR-compatible percentiles, cheap record."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.latency import (
    BUCKET_COUNT,
    HotPathLatency,
    LatencyRecorder,
    bucket_bounds,
    bucket_index,
)


def exact_percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    rank = max(1, int(q / 100 * len(ordered) + 0.5))
    return ordered[rank - 1]


def test_small_values_are_exact() -> None:
    for v in range(64):
        assert bucket_index(v) == v and bucket_bounds(v) == (v, v)


def test_buckets_tile_the_value_range_without_holes() -> None:
    previous_high = -1
    for i in range(BUCKET_COUNT):
        lo, hi = bucket_bounds(i)
        assert lo == previous_high + 1 and hi >= lo
        previous_high = hi
    assert previous_high == 2**64 - 1


@given(st.integers(0, 2**64 - 1))
def test_every_value_lands_in_a_bucket_at_most_one_32nd_wide(value: int) -> None:
    lo, hi = bucket_bounds(bucket_index(value))
    assert lo <= value <= hi
    assert hi - lo <= lo / 32


def test_record_inline_matches_bucket_index() -> None:
    rec = LatencyRecorder()
    values = [0, 1, 63, 64, 66, 127, 128, 1000, 123_456, 10**9, 2**63]
    rec.record_many(values)
    assert [c for _, _, c in rec.buckets()] == [1] * len(values)
    assert [lo for lo, _, _ in rec.buckets()] == [bucket_bounds(bucket_index(v))[0] for v in values]


def test_empty_recorder_reports_zeros() -> None:
    rec = LatencyRecorder()
    assert (rec.count, rec.min, rec.max, rec.mean, rec.percentile(99)) == (0, 0, 0, 0.0, 0)


def test_count_min_max_and_mean_within_bucket_precision() -> None:
    rec = LatencyRecorder()
    rec.record_many([50_000, 60_000, 70_000])
    assert rec.count == 3
    assert 50_000 * 0.969 <= rec.min <= 50_000
    assert 70_000 <= rec.max <= 70_000 * 1.032
    assert rec.mean == pytest.approx(60_000, rel=0.02)


def test_negative_values_are_counted_apart() -> None:
    rec = LatencyRecorder()
    rec.record(-5)
    rec.record(10)
    assert (rec.negative, rec.count, rec.min) == (1, 1, 10)


def test_percentiles_never_underestimate_and_overestimate_by_at_most_3_percent() -> None:
    rng = random.Random(3)
    values = [int(rng.lognormvariate(11, 1)) for _ in range(20_000)]  # ~60 µs typical
    rec = LatencyRecorder()
    rec.record_many(values)
    got = rec.percentiles((50, 90, 99, 99.9, 100))
    for q, v in got.items():
        true = exact_percentile(values, q)
        assert true <= v <= true * (1 + 1 / 32), q
    assert rec.percentile(99) == got[99]


def test_percentile_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        LatencyRecorder().percentile(101)


def test_merge_adds_counts_and_reset_empties() -> None:
    a, b = LatencyRecorder(), LatencyRecorder()
    a.record_many([100, 200])
    b.record_many([200, 300, -1])
    a.merge(b)
    assert a.count == 4 and a.negative == 1 and b.count == 2
    assert a.buckets()[1][2] == 2  # both 200s
    a.reset()
    assert a.count == 0 and a.negative == 0


def test_to_hdr_agrees_with_our_percentiles() -> None:
    rng = random.Random(5)
    rec = LatencyRecorder()
    rec.record_many(int(rng.lognormvariate(10, 1.5)) for _ in range(5_000))
    hdr = rec.to_hdr()
    assert hdr.get_total_count() == rec.count
    for q, ours in rec.percentiles((50, 90, 99, 99.9)).items():
        assert hdr.get_value_at_percentile(q) == pytest.approx(ours, rel=0.002)


def test_to_hdr_adds_into_a_given_histogram_and_clamps_to_its_range() -> None:
    from hdrh.histogram import HdrHistogram

    hdr = HdrHistogram(1, 1_000_000, 2)
    rec = LatencyRecorder()
    rec.record_many([10, 5_000_000])
    assert rec.to_hdr(hdr) is hdr
    assert hdr.get_total_count() == 2
    assert hdr.get_max_value() >= 999_000


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=300), st.floats(0.1, 100))
def test_percentile_brackets_the_exact_value(values: list[int], q: float) -> None:
    rec = LatencyRecorder()
    rec.record_many(values)
    true = exact_percentile(values, q)
    assert true <= rec.percentile(q) <= true + true // 32 + 1


def test_the_hot_path_recorder_keeps_counting_after_a_reset() -> None:
    """`HotPathLatency` holds its recorders' counts arrays; a reset (as benchmarks do
    after a warm-up) zeroes them in place, so the hot path's records still land."""
    hot = HotPathLatency()
    hot.record(1_000, 3_000, 2_000, 500)
    assert (hot.handled.count, hot.stop.count, hot.exchange.count) == (1, 1, 1)
    for recorder in (hot.handled, hot.stop, hot.exchange):
        recorder.reset()
    assert (hot.handled.count, hot.stop.count, hot.exchange.count) == (0, 0, 0)
    hot.record(1_000, 1_010, 0, 0)  # no stop decision, no exchange time
    assert (hot.handled.count, hot.stop.count, hot.exchange.count) == (1, 0, 0)
    assert hot.handled.percentile(50) == 10
    hot.record(1_000, 900, 0, 2_000)  # clock skew: counted apart, in no statistic
    assert (hot.handled.negative, hot.exchange.negative) == (1, 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(-(2**20), 2**30),
                          st.sampled_from(["same", "none", "other"]),
                          st.integers(-(2**20), 2**40) | st.just(0)),
                min_size=1, max_size=30))  # fmt: skip
def test_the_hot_path_record_counts_what_three_recorders_count(
    rows: list[tuple[int, int, str, int]],
) -> None:
    """`HotPathLatency.record`, its shortcut for a trade handled when decided included,
    counts each value as `LatencyRecorder.record` does."""
    hot = HotPathLatency()
    handled, stop, exchange = LatencyRecorder(), LatencyRecorder(), LatencyRecorder()
    for rns, delta, decided_kind, event_ns in rows:
        done = rns + delta
        decided = {"same": done, "none": 0, "other": rns + delta // 2}[decided_kind]
        hot.record(rns, done, decided, event_ns)
        handled.record(done - rns)
        if decided:
            stop.record(decided - rns)
        if event_ns:
            exchange.record(rns - event_ns)
    for ours, theirs in ((hot.handled, handled), (hot.stop, stop), (hot.exchange, exchange)):
        assert list(ours._counts) == list(theirs._counts)
        assert ours.negative == theirs.negative

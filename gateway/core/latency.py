"""Cheap latency histograms for the hot path, folded into HdrHistogram off it (pure).

`HdrHistogram.record_value` costs about 0.7 µs a call (perf-notes.md), too much
per message. A `LatencyRecorder` counts values in log-linear buckets instead:
values below 64 ns exactly, above that 32 sub-buckets per power of two, so each
bucket is at most 1/32 (3.1%) of its values wide. `record` is one
``int.bit_length``, a shift and a list increment: about 70 ns net of the call
itself, against about 740 ns for HDR (``python -m benchmarks.latency_recorder``);
most of ours is CPython allocating the incremented count once it passes 256.
Percentiles, merging and `to_hdr` (for reporting and HDR's encoders) run off
the hot path.

Values are integers in nanoseconds, below 2**64. Negative values (clock skew
between the exchange's event time and ours) are not bucketed: they are counted
in ``negative`` and left out of every statistic.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

__all__ = ["BUCKET_COUNT", "HotPathLatency", "LatencyRecorder", "bucket_bounds", "bucket_index"]

_SUB_BITS = 5
_LINEAR = 2 << _SUB_BITS  # 64: values below this have a bucket each
_SHIFT_BASE = _SUB_BITS + 1
#: Buckets needed for every value below 2**64.
BUCKET_COUNT = ((64 - _SHIFT_BASE) << _SUB_BITS) + _LINEAR


def bucket_index(value_ns: int) -> int:
    """The bucket of a non-negative value (what `LatencyRecorder.record` computes inline)."""
    if value_ns < _LINEAR:
        return value_ns
    shift = value_ns.bit_length() - _SHIFT_BASE
    return (shift << _SUB_BITS) + (value_ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value (inclusive) that fall in bucket ``index``."""
    if index < _LINEAR:
        return index, index
    shift = (index >> _SUB_BITS) - 1
    top = index - (shift << _SUB_BITS)
    return top << shift, ((top + 1) << shift) - 1


def _zeros() -> array[int]:
    return array("Q", bytes(8 * BUCKET_COUNT))


class LatencyRecorder:
    """Counts latencies (ns) in log-linear buckets with <= 3.1% relative width.

    Not thread-safe (one per symbol actor, used from its task). Statistics
    report bucket bounds: `percentile` and `max` the highest value of the bucket
    (never below the true value, at most 3.1% above), `min` the lowest. The counts
    are one flat array of 64-bit integers (15 KB, allocated once): memory does not
    grow with the values recorded, however long the run.
    """

    __slots__ = ("_counts", "negative")

    def __init__(self) -> None:
        self._counts = _zeros()
        self.negative = 0

    def record(self, value_ns: int) -> None:
        """Count one value (tens of ns; keep this body inline and branch-light)."""
        if value_ns >= 64:
            shift = value_ns.bit_length() - 6
            self._counts[(shift << 5) + (value_ns >> shift)] += 1
        elif value_ns >= 0:
            self._counts[value_ns] += 1
        else:
            self.negative += 1

    def record_many(self, values: Iterable[int]) -> None:
        """Count every value of ``values``."""
        record = self.record
        for v in values:
            record(v)

    @property
    def count(self) -> int:
        """How many non-negative values were recorded. O(buckets)."""
        return sum(self._counts)

    @property
    def min(self) -> int:
        """Lowest bound of the lowest bucket in use (0 when empty)."""
        for i, c in enumerate(self._counts):
            if c:
                return bucket_bounds(i)[0]
        return 0

    @property
    def max(self) -> int:
        """Highest bound of the highest bucket in use (0 when empty)."""
        counts = self._counts
        for i in range(len(counts) - 1, -1, -1):
            if counts[i]:
                return bucket_bounds(i)[1]
        return 0

    @property
    def mean(self) -> float:
        """Mean of the bucket midpoints (0.0 when empty)."""
        total = weighted = 0
        for i, c in enumerate(self._counts):
            if c:
                lo, hi = bucket_bounds(i)
                total += c
                weighted += c * (lo + hi)
        return weighted / (2 * total) if total else 0.0

    def percentile(self, q: float) -> int:
        """The value at percentile ``q`` (0..100), as HdrHistogram ranks it: the highest
        bound of the bucket holding the ``max(1, round(q/100 * count))``-th value.
        0 when empty."""
        return self.percentiles((q,))[q]

    def percentiles(self, qs: Iterable[float] = (50, 90, 99, 99.9)) -> dict[float, int]:
        """`percentile` for each of ``qs`` in one pass over the buckets."""
        wanted = sorted(set(qs))
        for q in wanted:
            if not 0 <= q <= 100:
                raise ValueError(f"percentile must be within 0..100, got {q!r}")
        out = dict.fromkeys(wanted, 0)
        total = self.count
        if not total or not wanted:
            return out
        ranks = [(max(1, int(q / 100 * total + 0.5)), q) for q in wanted]
        k = 0
        seen = 0
        for i, c in enumerate(self._counts):
            if not c:
                continue
            seen += c
            while k < len(ranks) and ranks[k][0] <= seen:
                out[ranks[k][1]] = bucket_bounds(i)[1]
                k += 1
            if k == len(ranks):
                break
        return out

    def merge(self, other: LatencyRecorder) -> None:
        """Add ``other``'s counts to this recorder (``other`` is unchanged)."""
        counts = self._counts
        for i, c in enumerate(other._counts):
            if c:
                counts[i] += c
        self.negative += other.negative

    def reset(self) -> None:
        """Forget every value (in place: the counts array is never replaced, so a
        `HotPathLatency` may hold it)."""
        self._counts[:] = _zeros()
        self.negative = 0

    def buckets(self) -> list[tuple[int, int, int]]:
        """``(lowest, highest, count)`` of every bucket in use, in value order."""
        return [(*bucket_bounds(i), c) for i, c in enumerate(self._counts) if c]

    def to_hdr(
        self,
        histogram: Any = None,
        *,
        lowest: int = 1,
        highest: int = 3_600_000_000_000,
        significant_figures: int = 3,
    ) -> Any:
        """Fold the counts into an ``hdrh.histogram.HdrHistogram`` and return it.

        Each bucket is recorded at its highest bound (consistent with
        `percentile`), clamped to the histogram's trackable range. A new histogram
        (``lowest``..``highest`` ns, default one hour, ``significant_figures``) is
        made unless ``histogram`` is given, to which the counts are added.
        """
        if histogram is None:
            from hdrh.histogram import HdrHistogram  # off the hot path, only when reporting

            histogram = HdrHistogram(lowest, highest, significant_figures)
        top = histogram.highest_trackable_value
        for i, c in enumerate(self._counts):
            if c:
                value = min(bucket_bounds(i)[1], top)
                if not histogram.record_value(value, c):
                    raise ValueError(f"HdrHistogram refused value {value} (count {c})")
        return histogram

    def __repr__(self) -> str:
        return f"LatencyRecorder(count={self.count}, negative={self.negative})"


class HotPathLatency:
    """The latencies a symbol's hot path records per event, in one call instead of three:
    receive -> handled (every event), receive -> stop-loss decision (trades) and exchange
    event time -> receive (events with an exchange time). Each is a `LatencyRecorder`;
    the bucketing is `LatencyRecorder.record`'s, inline (a call costs as much as it)."""

    __slots__ = ("_exchange_counts", "_handled_counts", "_stop_counts", "exchange", "handled",
                 "stop")  # fmt: skip

    def __init__(self) -> None:
        self.exchange = LatencyRecorder()
        self.handled = LatencyRecorder()
        self.stop = LatencyRecorder()
        # Their counts arrays, held directly (one lookup less per value on the hot path;
        # `LatencyRecorder.reset` zeroes them in place, so these never go stale).
        self._exchange_counts = self.exchange._counts
        self._handled_counts = self.handled._counts
        self._stop_counts = self.stop._counts

    def record(self, receive_ns: int, handled_ns: int, decided_ns: int, event_ns: int) -> None:
        """Count one event: ``decided_ns`` 0 when it is no trade, ``event_ns`` 0 when it
        has no exchange time."""
        v = i = handled_ns - receive_ns
        if v >= 64:
            shift = v.bit_length() - 6
            i = (shift << 5) + (v >> shift)
        if i >= 0:
            self._handled_counts[i] += 1
        else:
            self.handled.negative += 1
        if decided_ns:
            if decided_ns != handled_ns:  # else (a trade nobody took): the same bucket
                v = i = decided_ns - receive_ns
                if v >= 64:
                    shift = v.bit_length() - 6
                    i = (shift << 5) + (v >> shift)
            if i >= 0:
                self._stop_counts[i] += 1
            else:
                self.stop.negative += 1
        if event_ns:
            v = receive_ns - event_ns
            if v >= 64:
                shift = v.bit_length() - 6
                self._exchange_counts[(shift << 5) + (v >> shift)] += 1
            elif v >= 0:
                self._exchange_counts[v] += 1
            else:  # clock skew between the exchange and us: counted apart
                self.exchange.negative += 1

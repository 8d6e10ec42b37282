"""Gap and duplicate detection for consecutive ids (trade ids, aggregate trade ids).

Binance numbers a symbol's trades and aggregate trades consecutively. A
`SequenceTracker` remembers the highest id seen and classifies each new id as
`NEW` (the next one), `DUPLICATE` (not above the highest seen: drop it; this is
how the overlap of a make-before-break rotation is de-duplicated) or a gap
(ids were skipped: backfill ``first_missing..last_missing`` over REST, or report
it). After a gap the tracker moves on to the new id: the gap is reported once.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["DUPLICATE", "NEW", "Observation", "ObservationKind", "SequenceTracker"]


class ObservationKind(enum.Enum):
    """What an observed id means."""

    NEW = "new"
    DUPLICATE = "duplicate"
    GAP = "gap"


@attrs.frozen(slots=True)
class Observation:
    """The verdict on one id; for a gap, the inclusive range of missing ids.

    `NEW` and `DUPLICATE` are shared constants (compare with ``is``), so the
    common path allocates nothing; a gap builds a new `Observation`.
    """

    kind: ObservationKind
    first_missing: int | None = None
    last_missing: int | None = None

    @property
    def missing(self) -> int:
        """How many ids are missing (0 unless a gap)."""
        if self.first_missing is None or self.last_missing is None:
            return 0
        return self.last_missing - self.first_missing + 1


NEW = Observation(ObservationKind.NEW)
DUPLICATE = Observation(ObservationKind.DUPLICATE)


class SequenceTracker:
    """Tracks the highest id seen in one id space (one symbol's trades, say).

    With ``last=None`` the first id is accepted as `NEW` whatever it is (nothing
    to compare with). Counters: ``duplicates``, ``gaps``, ``missing`` (ids in gaps).
    """

    __slots__ = ("duplicates", "gaps", "last", "missing")

    def __init__(self, last: int | None = None) -> None:
        self.last = last
        self.duplicates = 0
        self.gaps = 0
        self.missing = 0

    def observe(self, id: int) -> Observation:
        """Classify ``id`` and, unless it is a duplicate, make it the highest seen. O(1)."""
        last = self.last
        if last is None or id == last + 1:
            self.last = id
            return NEW
        if id <= last:
            self.duplicates += 1
            return DUPLICATE
        self.last = id
        self.gaps += 1
        self.missing += id - last - 1
        return Observation(ObservationKind.GAP, last + 1, id - 1)

    def reset(self, last: int | None = None) -> None:
        """Forget the history (counters stay); the next id is judged against ``last``."""
        self.last = last

    def __repr__(self) -> str:
        return (
            f"SequenceTracker(last={self.last}, duplicates={self.duplicates}, "
            f"gaps={self.gaps}, missing={self.missing})"
        )

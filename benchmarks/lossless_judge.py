"""The accounting of ``python -m benchmarks lossless``: what subscribers saw against what
the exchange generated (pure: no trio, no sockets; tested on hand-made event lists).

Per stream (``trade``, ``aggTrade``, ``kline_<i>``) of a symbol, the keys are trade ids,
aggregate trade ids, or candle open times (ms). `judge_stream` counts keys delivered,
duplicates (a key delivered again), keys out of order (lower than one already
delivered), keys the exchange could still serve that were neither delivered nor inside
a `GapUnfilled` range (lost), keys reported unfilled, and delivered events whose content
differs from the exchange's (wrong). `judge_gaps` checks that every `GapDetected` has
exactly one ending (`GapFilled` or `GapUnfilled`). `judge_stops` compares each armed
position's true price path with the `StopTriggered` events for it.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "ArmedPosition",
    "Delivered",
    "GapFigures",
    "GapRecord",
    "StopFigures",
    "StreamFigures",
    "StreamTruth",
    "hidden_trades",
    "judge_gaps",
    "judge_stops",
    "judge_stream",
    "ranges",
]

_SAMPLE = 5  # id ranges kept per figure, to name the defect precisely


@attrs.frozen(slots=True)
class Delivered:
    """One event as the subscriber received it, reduced to what is judged.

    ``key``: trade id, aggregate trade id or candle open time (ms); ``content``: the
    fields compared with the exchange's record (prices in 1e-8 units); ``seq``: its
    position among everything the subscriber received.
    """

    key: int
    backfilled: bool = False
    content: tuple[int, ...] = ()
    seq: int = 0


@attrs.frozen(slots=True)
class StreamTruth:
    """What the exchange generated for one stream between ``start`` and ``end``
    (inclusive keys): ``served`` maps every key its REST history still holds to its
    content; keys in the window that it no longer holds are counted in ``unservable``."""

    start: int
    end: int
    served: Mapping[int, tuple[int, ...]]
    unservable: int = 0


@attrs.define(slots=True)
class StreamFigures:
    """The figures of one (symbol, stream); the ``*_sample`` lists name the first
    offending keys as inclusive ranges."""

    symbol: str
    stream: str
    expected: int = 0
    delivered: int = 0
    backfilled: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    lost: int = 0
    unfilled: int = 0
    wrong: int = 0
    unservable: int = 0
    lost_after_refusal: int = 0
    lost_sample: list[tuple[int, int]] = attrs.Factory(list)
    duplicate_sample: list[int] = attrs.Factory(list)
    out_of_order_sample: list[tuple[int, int]] = attrs.Factory(list)  # (key, max before)
    wrong_sample: list[int] = attrs.Factory(list)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values."""
        return attrs.asdict(self)


def ranges(keys: Iterable[int], step: int = 1) -> list[tuple[int, int]]:
    """Sorted ``keys`` as inclusive runs of consecutive values (``step`` apart)."""
    out: list[tuple[int, int]] = []
    for k in sorted(keys):
        if out and k == out[-1][1] + step:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out


class _Covered:
    """Membership in a union of inclusive ranges, by bisection."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for first, last in sorted(spans):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        self._starts = [m[0] for m in merged]
        self._ends = [m[1] for m in merged]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        i = bisect.bisect_right(self._starts, key) - 1
        return i >= 0 and key <= self._ends[i]


def judge_stream(
    symbol: str, stream: str, delivered: Sequence[Delivered], truth: StreamTruth,
    unfilled: Iterable[tuple[int, int]] = (), *, refused_seq: int | None = None,
    step: int = 1,
) -> StreamFigures:  # fmt: skip
    """Account one stream: ``delivered`` in the order the subscriber got them, against
    ``truth``, with the inclusive ``unfilled`` ranges its `GapUnfilled` events named.

    Duplicates and keys out of order are counted over everything delivered; lost,
    unfilled and wrong only inside the truth's window. ``refused_seq``: when the stream
    was refused (`StreamRefused`), lost keys above the last one delivered before it are
    also counted in ``lost_after_refusal``. ``step``: the distance between consecutive
    keys in the samples (1 for ids; the interval in ms for candles).
    """
    fig = StreamFigures(symbol, stream, unservable=truth.unservable)
    seen: set[int] = set()
    top: int | None = None
    top_before_refusal: int | None = None
    for ev in delivered:
        key = ev.key
        fig.delivered += 1
        fig.backfilled += ev.backfilled
        if refused_seq is not None and ev.seq < refused_seq:
            top_before_refusal = key if top_before_refusal is None else max(top_before_refusal, key)
        if key in seen:
            fig.duplicates += 1
            if len(fig.duplicate_sample) < _SAMPLE:
                fig.duplicate_sample.append(key)
            continue
        if top is not None and key < top:
            fig.out_of_order += 1
            if len(fig.out_of_order_sample) < _SAMPLE:
                fig.out_of_order_sample.append((key, top))
        seen.add(key)
        top = key if top is None else max(top, key)
        want = truth.served.get(key)
        if want is not None and ev.content and ev.content != want:
            fig.wrong += 1
            if len(fig.wrong_sample) < _SAMPLE:
                fig.wrong_sample.append(key)
    covered = _Covered(unfilled)
    lost: list[int] = []
    for key in truth.served:
        if not truth.start <= key <= truth.end:
            continue
        fig.expected += 1
        if key in seen:
            continue
        if key in covered:
            fig.unfilled += 1
        else:
            lost.append(key)
    fig.lost = len(lost)
    fig.lost_sample = ranges(lost, step)[:_SAMPLE]
    if refused_seq is not None:
        floor = top_before_refusal if top_before_refusal is not None else truth.start - 1
        fig.lost_after_refusal = sum(1 for k in lost if k > floor)
    return fig


# --- gaps ------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class GapRecord:
    """One `GapDetected`, `GapFilled` or `GapUnfilled` (``kind``) as published."""

    kind: str  # "detected", "filled" or "unfilled"
    symbol: str
    stream: str
    first: int
    last: int
    seq: int = 0
    reason: str = ""  # a GapUnfilled's reason


@attrs.define(slots=True)
class GapFigures:
    """Gap endings: every detected gap must end exactly once."""

    detected: int = 0
    filled: int = 0
    unfilled: int = 0
    never_ended: list[GapRecord] = attrs.Factory(list)
    ended_twice: list[GapRecord] = attrs.Factory(list)
    orphan_endings: list[GapRecord] = attrs.Factory(list)
    #: Why gaps ended unfilled: the reason with its numbers as N, and how often.
    unfilled_reasons: dict[str, int] = attrs.Factory(dict)

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values (the offending gaps listed)."""
        return {
            "detected": self.detected, "filled": self.filled, "unfilled": self.unfilled,
            "never_ended": [attrs.asdict(g) for g in self.never_ended],
            "ended_twice": [attrs.asdict(g) for g in self.ended_twice],
            "orphan_endings": [attrs.asdict(g) for g in self.orphan_endings],
            "unfilled_reasons": dict(self.unfilled_reasons),
        }  # fmt: skip


def judge_gaps(records: Sequence[GapRecord]) -> GapFigures:
    """Match each ending to its `GapDetected` (same symbol, stream and ``last``; the same
    ``first`` for a `GapFilled`, ``first`` at or after the detected one for a
    `GapUnfilled`, which may name only the part not served), in publish order."""
    fig = GapFigures()
    open_: dict[tuple[str, str, int], list[list[Any]]] = {}
    for rec in records:
        key = (rec.symbol, rec.stream, rec.last)
        if rec.kind == "detected":
            fig.detected += 1
            open_.setdefault(key, []).append([rec, 0])
            continue
        if rec.kind == "filled":
            fig.filled += 1
        else:
            fig.unfilled += 1
            why = re.sub(r"\d+(\.\d+)?", "N", rec.reason)
            fig.unfilled_reasons[why] = fig.unfilled_reasons.get(why, 0) + 1
        fits = [c for c in open_.get(key, ()) if (c[0].first == rec.first if rec.kind == "filled"
                                                  else c[0].first <= rec.first)]  # fmt: skip
        if not fits:
            fig.orphan_endings.append(rec)
            continue
        fresh = [c for c in fits if c[1] == 0]
        chosen = fresh[0] if fresh else fits[0]
        chosen[1] += 1
    for cands in open_.values():
        for rec, endings in cands:
            if endings == 0:
                fig.never_ended.append(rec)
            elif endings > 1:
                fig.ended_twice.append(rec)
    return fig


# --- stops -------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class ArmedPosition:
    """A position the run armed: its stop in 1e-8 units, and the first trade id the
    exchange generated after it was armed (earlier trades never count for it)."""

    id: str
    symbol: str
    side: str  # "LONG" or "SHORT"
    stop_e8: int
    after_id: int


@attrs.define(slots=True)
class StopFigures:
    """Stops: crossed (by the exchange's true price path) vs fired (StopTriggered)."""

    positions: int = 0
    crossed: int = 0
    fired_once: int = 0
    missed: int = 0
    #: crossed only by trades the gateway could not have seen (reported unfilled on both
    #: streams): a miss no gateway could avoid
    missed_unknowable: int = 0
    double_fires: int = 0
    false_fires: int = 0
    rows: list[dict[str, Any]] = attrs.Factory(list)

    @property
    def missed_knowable(self) -> int:
        """Misses a gateway could have avoided."""
        return self.missed - self.missed_unknowable

    def as_dict(self) -> dict[str, Any]:
        """The figures and one row per position."""
        out = attrs.asdict(self)
        out["missed_knowable"] = self.missed_knowable
        return out


def judge_stops(
    positions: Sequence[ArmedPosition],
    paths: Mapping[str, Sequence[tuple[int, int]]],
    fired: Iterable[tuple[str, str]],
    hidden: Mapping[str, Container[int]] | None = None,
) -> StopFigures:
    """``paths``: per symbol, every trade ``(id, price_e8)`` the exchange generated;
    ``fired``: ``(symbol, position id)`` of each StopTriggered received; ``hidden``: per
    symbol, the trade ids the gateway could not have seen. A crossed stop must fire
    exactly once, an uncrossed one never."""
    fig = StopFigures()
    fires = Counter(fired)
    hidden = hidden or {}
    for pos in positions:
        fig.positions += 1
        long = pos.side == "LONG"
        crossing = [tid for tid, price in paths.get(pos.symbol, ())
                    if tid >= pos.after_id and (price <= pos.stop_e8 if long
                                                else price >= pos.stop_e8)]  # fmt: skip
        n = fires[(pos.symbol, pos.id)]
        row: dict[str, Any] = {"id": pos.id, "symbol": pos.symbol, "side": pos.side,
                               "stop_e8": pos.stop_e8, "crossed": bool(crossing),
                               "first_crossing_id": crossing[0] if crossing else None,
                               "fired": n, "verdict": "ok"}  # fmt: skip
        if crossing:
            fig.crossed += 1
            if n == 0:
                fig.missed += 1
                unseen = hidden.get(pos.symbol)
                if unseen is not None and all(t in unseen for t in crossing):
                    fig.missed_unknowable += 1
                    row["verdict"] = "missed (unknowable: every crossing unfilled)"
                else:
                    row["verdict"] = "MISSED"
            elif n == 1:
                fig.fired_once += 1
            else:
                fig.double_fires += 1
                row["verdict"] = f"FIRED {n} TIMES"
        elif n:
            fig.false_fires += 1
            row["verdict"] = f"FIRED {n}x UNCROSSED"
        fig.rows.append(row)
    return fig


def hidden_trades(
    trade_unfilled: Iterable[tuple[int, int]], agg_unfilled: Iterable[tuple[int, int]],
    aggs: Iterable[tuple[int, int, int]],
) -> set[int]:  # fmt: skip
    """Trade ids the gateway could not have seen: reported unfilled on the ``trade``
    stream and inside an aggregate trade reported unfilled on the ``aggTrade`` stream
    (``aggs``: the exchange's ``(agg id, first trade id, last trade id)``)."""
    on_trade = _Covered(trade_unfilled)
    on_agg = _Covered(agg_unfilled)
    out: set[int] = set()
    for agg_id, first, last in aggs:
        if agg_id in on_agg:
            out.update(t for t in range(first, last + 1) if t in on_trade)
    return out

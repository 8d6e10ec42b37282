"""What the soak's subscriber saw (`Recorder`), and the verdict set against the exchange's
ledger (`summarize`, `render`): lost, doubled and out-of-order ids, stops, RSS growth."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import attrs
import trio

from gateway import (
    AggTrade,
    GapDetected,
    GapFilled,
    GapUnfilled,
    GatewayErrorEvent,
    StopTriggered,
    SymbolQuarantined,
    Trade,
)
from gateway.app.chaos_ledger import Spans, StreamCheck, judge_stop, judge_stream

if TYPE_CHECKING:
    from gateway.app.soak import _Run

__all__ = ["STREAMS", "Recorder", "render", "summarize"]

STREAMS = ("trade", "aggTrade")  #: the id streams judged


class Recorder:
    """Every event the subscriber received, reduced to bounded checks, plus recovery."""

    def __init__(self, names: list[str]) -> None:
        self.checks = {(s, k): StreamCheck() for s in names for k in STREAMS}
        self.unfilled: dict[tuple[str, str], Spans] = defaultdict(Spans)
        self.open_gaps: Counter[str] = Counter()
        self.gap_counts: Counter[str] = Counter()
        self.unfilled_reasons: Counter[str] = Counter()
        self.fired: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.quarantined: list[str] = []
        self.other: Counter[str] = Counter()
        self.events = 0
        #: symbol -> [mark trade id, fault index] still waiting for a live trade
        self.pending: dict[str, list[list[int]]] = defaultdict(list)
        self.left: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.recovered: dict[int, float] = {}

    def expect(self, index: int, marks: dict[str, int], now: float) -> None:
        """Fault ``index`` injected at ``now``: it has recovered once each symbol of
        ``marks`` delivered a live trade at or past its mark with no gap open."""
        self.started[index] = now
        self.left[index] = len(marks)
        for sym, mark in marks.items():
            self.pending[sym].append([mark, index])

    def _live(self, sym: str, tid: int) -> None:
        waiting = self.pending[sym]
        if self.open_gaps[sym]:
            return
        keep = []
        now = trio.current_time()
        for entry in waiting:
            if tid >= entry[0]:
                idx = entry[1]
                self.left[idx] -= 1
                if self.left[idx] == 0:
                    self.recovered[idx] = now - self.started[idx]
            else:
                keep.append(entry)
        self.pending[sym] = keep

    def add(self, ev: Any) -> None:
        """Record one event."""
        self.events += 1
        kind = type(ev)
        if kind is Trade:
            self.checks[(ev.symbol, "trade")].add(ev.trade_id, ev.backfilled)
            if not ev.backfilled and self.pending.get(ev.symbol):
                self._live(ev.symbol, ev.trade_id)
        elif kind is AggTrade:
            self.checks[(ev.symbol, "aggTrade")].add(ev.agg_trade_id, ev.backfilled)
        elif kind is GapDetected:
            self.open_gaps[ev.symbol] += 1
            self.gap_counts[ev.stream] += 1
        elif kind is GapFilled or kind is GapUnfilled:
            self.open_gaps[ev.symbol] -= 1
            if kind is GapUnfilled:
                self.unfilled[(ev.symbol, ev.stream)].add(ev.first, ev.last)
                self.unfilled_reasons[" ".join(w if not w[:1].isdigit() else "N"
                                               for w in ev.reason.split())] += 1  # fmt: skip
        elif kind is StopTriggered:
            self.fired[ev.position_id] += 1
        elif kind is GatewayErrorEvent:
            self.errors[ev.source] += 1
        elif kind is SymbolQuarantined:
            self.quarantined.append(ev.symbol)
        else:
            self.other[kind.__name__] += 1

    def reached(self, ends: dict[tuple[str, str], int]) -> bool:
        """Every stream's last id delivered or reported unfilled, and no gap open."""
        if any(v > 0 for v in self.open_gaps.values()):
            return False
        for key, end in ends.items():
            if self.checks[key].top < end and end not in self.unfilled.get(key, Spans()):
                return False
        return True


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def summarize(run: _Run) -> dict[str, Any]:
    """The figures, the invariants and the verdict with its reasons."""
    p, rec = run.params, run.rec
    streams = []
    books = run.ledger.get("symbols", {})
    for sym in run.names:
        book = books.get(sym)
        if book is None:
            continue
        for stream, (start, end) in (("trade", book["trade"]), ("aggTrade", book["agg"])):
            key = (sym, stream)
            streams.append(judge_stream(sym, stream, rec.checks[key],
                                        rec.unfilled.get(key, Spans()), start, end))  # fmt: skip
    tot = Counter[str]()
    for v in streams:
        for field in ("generated", "delivered", "backfilled", "unfilled", "lost", "duplicates",
                  "out_of_order"):  # fmt: skip
            tot[field] += getattr(v, field)
    stop_rows, verdicts = [], Counter[str]()
    for sym, book in books.items():
        tu = rec.unfilled.get((sym, "trade"), Spans())
        au = rec.unfilled.get((sym, "aggTrade"), Spans())
        for pos in book["positions"]:
            fired = rec.fired.get(pos["id"], 0)
            verdict = judge_stop(pos, fired, tu, au)
            verdicts[verdict] += 1
            if pos["crossings"]:
                verdicts["expected"] += 1
            if fired:
                verdicts["fired"] += 1
            if verdict != "ok" or pos["crossings"]:
                stop_rows.append({"id": pos["id"], "side": pos["side"], "stop_ticks": pos["stop"],
                                  "from_id": pos["from_id"], "crossings": pos["crossings"],
                                  "first_crossing": pos["first"][:2], "fired": fired,
                                  "verdict": verdict})  # fmt: skip
    recovery: dict[str, float] = {}
    unrecovered: Counter[str] = Counter()
    series = []
    for f in run.schedule:
        if run.injected[f.kind] == 0:
            continue
        r = rec.recovered.get(f.index)
        if r is None:
            r = run.gf.callback_recovery.get(f.index, run.gf.hook_recovery.get(f.index))
        if r is None:
            if f.index in rec.started or f.kind == "callback_raise" or f.kind.startswith("hook"):
                unrecovered[f.kind] += 1
            continue
        recovery[f.kind] = max(recovery.get(f.kind, 0.0), r)
        series.append((round(f.at, 3), f.kind, round(r, 3)))
    after = [s for s in run.samples if s["t_s"] >= p.warmup] or run.samples[-1:]
    rss = {
        "after_warmup": round(after[0]["rss_mb"], 1) if after else None,
        "peak": round(max(s["rss_mb"] for s in after), 1) if after else None,
        "end": round(run.samples[-1]["rss_mb"], 1) if run.samples else None,
    }
    growth = (100 * (rss["end"] - rss["after_warmup"]) / rss["after_warmup"]
              if rss["end"] and rss["after_warmup"] else None)  # fmt: skip
    half = [s for s in after if s["t_s"] >= (after[0]["t_s"] + after[-1]["t_s"]) / 2]
    slope = _slope([s["t_s"] / 60 for s in half], [s["rss_mb"] for s in half])
    missed_reads = sum(b.get("missed_reads", 0) for b in books.values())
    reasons = []
    checks = [
        (tot["lost"] == 0, f"{tot['lost']} events lost"),
        (tot["duplicates"] == 0, f"{tot['duplicates']} events delivered twice"),
        (tot["out_of_order"] == 0, f"{tot['out_of_order']} events out of order"),
        (verdicts["missed"] == 0, f"{verdicts['missed']} crossed stops never fired"),
        (verdicts["doubled"] == 0, f"{verdicts['doubled']} stops fired more than once"),
        (verdicts["false"] == 0, f"{verdicts['false']} uncrossed stops fired"),
        (run.fatal is None, f"the gateway died: {run.fatal}"),
        (run.settled, "not every stream reached the exchange's last ids"),
        (run.subscriber_dropped == 0, f"the subscriber dropped {run.subscriber_dropped}"),
        (missed_reads == 0, f"the ledger missed {missed_reads} aggregate trades"),
        (bool(books), "no ledger from the exchange"),
        (not rec.quarantined, f"symbols quarantined: {rec.quarantined}"),
    ]
    if p.chaos:
        absent = [k for k in p.kinds if run.injected[k] == 0]
        checks.append((not absent, f"fault kinds never injected: {absent}"))
        checks.append((not unrecovered, f"faults never recovered from: {dict(unrecovered)}"))
    judged_rss = p.duration - p.warmup >= 300 and growth is not None
    if judged_rss:
        assert growth is not None
        checks.append((growth < p.max_rss_growth,
                       f"RSS grew {growth:.1f}% after warm-up (limit {p.max_rss_growth:g}%)"))
    reasons = [why for ok, why in checks if not ok]
    first_sample = run.samples[0] if run.samples else {}
    return {
        "command": "gateway soak" + (" --chaos" if p.chaos else ""),
        "params": attrs.asdict(p),
        "verdict": "pass" if not reasons else "fail",
        "reasons": reasons,
        "faults_injected": dict(sorted(run.injected.items())),
        "faults_total": sum(run.injected.values()),
        "events_generated": tot["generated"],
        "events_delivered": tot["delivered"],
        "backfilled": tot["backfilled"],
        "lost": tot["lost"],
        "unfilled_reported": tot["unfilled"],
        "unfilled_reasons": dict(rec.unfilled_reasons),
        "doubled": tot["duplicates"],
        "out_of_order": tot["out_of_order"],
        "gaps_detected": dict(rec.gap_counts),
        "stops_expected": verdicts["expected"],
        "stops_fired": verdicts["fired"],
        "stops_missed": verdicts["missed"],
        "stops_missed_unknowable": verdicts["missed-unknowable"],
        "stops_doubled": verdicts["doubled"],
        "false_fires": verdicts["false"],
        "positions": len(run.positions),
        "restarts": {s: n for s, n in run.gateway.get("restarts", {}).items() if n},
        "restarts_total": sum(run.gateway.get("restarts", {}).values()),
        "reconnects": run.gateway.get("reconnects"),
        "rss_mb": rss,
        "rss_growth_pct_after_warmup": None if growth is None else round(growth, 2),
        #: least-squares slope over the second half of the time after warm-up: a leak
        #: keeps a slope; the high-water mark of a backlog does not
        "rss_slope_mb_per_min_second_half": round(slope, 4),
        # Python's own live blocks at the same three points (see the samples' py_blocks)
        "py_blocks": {
            "after_warmup": after[0].get("py_blocks") if after else None,
            "peak": max((s.get("py_blocks") or 0 for s in after), default=None),
            "end": run.samples[-1].get("py_blocks") if run.samples else None,
        },
        "rss_judged": judged_rss,
        "exchange_rss_mb": {"start": first_sample.get("exchange_rss_mb"),
                            "end": run.ledger.get("rss_mb")},
        "recovery_s_max": dict(sorted(recovery.items())),
        "recovery_series": series,
        "unrecovered": dict(unrecovered),
        "errors_by_source": dict(rec.errors),
        "settled": run.settled,
        "fatal": run.fatal,
        "subscriber_dropped": run.subscriber_dropped,
        "exchange": {k: v for k, v in run.ledger.items() if k != "symbols"},
        "gateway": run.gateway,
        "streams_with_defects": [v.as_dict() for v in streams
                                 if v.lost or v.duplicates or v.out_of_order],
        "stops": stop_rows,
        "crossings": run.crossings,
        "schedule": [f.as_dict() for f in run.schedule],
        "applied_errors": [a for a in run.applied if not a["ok"]],
        "samples": run.samples,
    }


def render(data: dict[str, Any]) -> str:
    """The terminal table; the last line is the verdict with its reasons."""
    rows = [
        ("faults injected", f"{data['faults_total']} ({len(data['faults_injected'])} kinds)"),
        ("events generated / delivered", f"{data['events_generated']:,} / "
                                         f"{data['events_delivered']:,}"),
        ("backfilled over REST", f"{data['backfilled']:,}"),
        ("lost", f"{data['lost']:,}"),
        ("unfilled (reported in GapUnfilled)", f"{data['unfilled_reported']:,}"),
        ("doubled / out of order", f"{data['doubled']} / {data['out_of_order']}"),
        ("stops expected / fired", f"{data['stops_expected']} / {data['stops_fired']}"),
        ("stops missed / doubled / false", f"{data['stops_missed']} / "
                                           f"{data['stops_doubled']} / {data['false_fires']}"),
        ("stops crossed only inside unfilled gaps", f"{data['stops_missed_unknowable']}"),
        ("restarts (actors) / reconnects", f"{data['restarts_total']} "
                                           f"({len(data['restarts'])}) / {data['reconnects']}"),
        ("RSS MB after warm-up / peak / end", " / ".join(
            str(data["rss_mb"][k]) for k in ("after_warmup", "peak", "end"))),
        ("RSS growth after warm-up", f"{data['rss_growth_pct_after_warmup']}%"
                                     + ("" if data["rss_judged"] else " (not judged: short run)")),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    out = [f"{k:<{width}}  {v}" for k, v in rows]
    if data["faults_injected"]:
        out.append("")
        out.append(f"{'fault kind':<20} {'count':>5}  {'longest recovery (s)':>20}")
        rec = data["recovery_s_max"]
        for kind, n in data["faults_injected"].items():
            r = rec.get(kind)
            out.append(f"{kind:<20} {n:>5}  {'-' if r is None else f'{r:.2f}':>20}")
    for s in data["streams_with_defects"][:10]:
        out.append(f"DEFECT {s['symbol']} {s['stream']}: lost {s['lost']} "
                   f"{s['lost_sample']}, doubled {s['duplicates']} {s['duplicate_sample']}, "
                   f"out of order {s['out_of_order']} {s['out_of_order_sample']}")  # fmt: skip
    for s in data["stops"]:
        if s["verdict"] not in ("ok", "missed-unknowable"):
            out.append(f"DEFECT stop {s['id']}: {s['verdict']} (crossings {s['crossings']}, "
                       f"first {s['first_crossing']}, fired {s['fired']})")  # fmt: skip
    out.append("")
    hidden = data["stops_missed_unknowable"]
    why = "; ".join(data["reasons"]) if data["reasons"] else (
        f"0 lost, 0 doubled, 0 out of order, {data['stops_fired']} of "
        f"{data['stops_expected']} crossed stops fired once"
        + (f" ({hidden} crossed only inside gaps reported unfilled)" if hidden else "")
        + ", 0 false")  # fmt: skip
    out.append(f"verdict: {data['verdict'].upper()}: {why}")
    return "\n".join(out)

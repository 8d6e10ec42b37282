"""lossless: under every fault the embedded exchange injects, is every event delivered
exactly once and in order (or reported in a GapUnfilled), and does every crossed stop
fire exactly once?

One run: the embedded exchange (manual pacing driven here, virtual event clock) and a
gateway opened with the public API (`open_gateway`) on streams trade, aggTrade and
kline_1s / kline_1m over N symbols; one subscriber takes every event. Phases:

1. warm-up: 3 s of market flow, then the flow stops until every symbol's last ids
   reached the subscriber; then six positions per symbol are armed, with stops at
   levels the seeded price path will cross (the middle of the move, its very extreme)
   and will not (one tick past the extreme). The path is known in advance by running
   a twin of the exchange's `Market` with the same seed and order flow.
2. faulted: ``--seconds`` of flow while the seeded schedule (`lossless_faults`)
   injects every fault kind at least once.
3. drain: faults cleared, ``--drain`` s of flow, then the flow stops and the run waits
   (at most ``--settle`` s) until every stream's last key arrived or was reported
   unfilled and every gap ended.

Then the subscriber's events are judged against the exchange's own record of every
trade, aggregate trade and candle (`lossless_judge`). Runs under trio's MockClock
(autojump) by default: the figures are deterministic for a seed and the default run
takes well under a minute of wall time; ``--clock real`` runs in real time.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from benchmarks.harness import finish_machine_info, machine_info, symbol_names, table
from benchmarks.lossless_faults import KINDS, Fault, build_schedule
from benchmarks.lossless_judge import (
    ArmedPosition,
    Delivered,
    GapFigures,
    GapRecord,
    StopFigures,
    StreamFigures,
    StreamTruth,
    hidden_trades,
    judge_gaps,
    judge_stops,
    judge_stream,
)
from gateway import (
    AggTrade,
    CandleClosed,
    GapDetected,
    GapFilled,
    GapUnfilled,
    GatewayError,
    GatewayErrorEvent,
    StopTriggered,
    StreamRefused,
    SymbolQuarantined,
    Trade,
    open_gateway,
)
from gateway.app.soak import seed_trio
from gateway.core.streams import INTERVAL_MS
from gateway.simulator import Market, Simulator, SimulatorConfig, open_simulator
from gateway.simulator.candles import CL, CNT, END, OT, VOL

__all__ = ["Params", "Plan", "Recorder", "add_arguments", "main", "plan_flow", "quick",
           "run_lossless"]  # fmt: skip

log = logging.getLogger(__name__)

_E8 = 100_000_000
_WARMUP = 3.0  # seconds of flow before the positions are armed
_QUIET = 30.0  # at most this long to wait for the warm-up's last ids
_POLL = 0.1  # the exchange ticks (candles close) this often while the flow is stopped


@attrs.frozen(slots=True, kw_only=True)
class Params:
    """One run's parameters (the command-line options)."""

    symbols: int = 16
    seconds: float = 107.0  #: the faulted phase
    seed: int = 1
    rate: float = 200.0  #: trades per second, all symbols together
    faults: int = 30  #: at least len(KINDS): every kind once, the rest drawn
    drain: float = 45.0  #: flow after the faults are cleared
    settle: float = 60.0  #: at most this long, flow stopped, for the last keys and gap ends
    intervals: tuple[str, ...] = ("1s", "1m")
    step: float = 0.05  #: one burst of trades per step
    clock: str = "mock"  #: "mock" (MockClock autojump) or "real"

    @property
    def streams(self) -> tuple[str, ...]:
        """The stream suffixes the gateway subscribes per symbol."""
        return ("trade", "aggTrade", *(f"kline_{i}" for i in self.intervals))


def _e8(x: float) -> int:
    return round(x * _E8)


# --- the order flow, planned on a twin of the exchange's market ------------------------


@attrs.frozen(slots=True)
class Plan:
    """The trades asked for per step (warm-up, then faulted + drain), and per symbol the
    first trade id after the warm-up, the last price before it and the prices after."""

    warm: tuple[int, ...]
    main: tuple[int, ...]
    after_id: dict[str, int]
    arm_price: dict[str, int]
    path: dict[str, list[tuple[int, int]]]
    tick_e8: int


def _counts(market: Market, steps: int, rate: float, step: float) -> tuple[int, ...]:
    out, due = [], 0.0
    for _ in range(steps):
        due += rate * step
        n = int(due)
        before = market.trades_total
        if n:
            market.generate(0, n, ())
        due -= market.trades_total - before
        out.append(n)
    return tuple(out)


def plan_flow(cfg: SimulatorConfig, params: Params) -> Plan:
    """Run a twin `Market` (same seed and options) through the run's order flow: a
    symbol's trades depend only on its seeded random source and how many orders it
    gets, never on time or listeners, so the twin's prices are the run's."""
    market = Market(
        symbols=cfg.symbols, seed=cfg.seed, start_price=cfg.start_price,
        tick_size=cfg.tick_size, volatility=cfg.volatility, book_levels=cfg.book_levels,
        agg_history=cfg.agg_history, kline_history=cfg.kline_history, now_us=0,
        trade_history=cfg.trade_history,
    )  # fmt: skip
    warm = _counts(market, round(_WARMUP / params.step), params.rate, params.step)
    after = {s: market.symbol(s).next_trade_id for s in cfg.symbols}
    arm = {s: market.symbol(s).trades[-1][1] for s in cfg.symbols}
    steps = round((params.seconds + params.drain) / params.step)
    main = _counts(market, steps, params.rate, params.step)
    path = {s: [(t[0], t[1]) for t in market.symbol(s).trades if t[0] >= after[s]]
            for s in cfg.symbols}  # fmt: skip
    return Plan(warm, main, after, arm, path, market.tick_e8)


def positions_for(plan: Plan, symbol: str) -> list[tuple[str, str, int]]:
    """(id, side, stop_e8): LONG and SHORT stops in the middle of the move (crossed), at
    its extreme (crossed by the extreme trades only) and one tick past it (never)."""
    tick, arm = plan.tick_e8, plan.arm_price[symbol]
    prices = [p for _, p in plan.path[symbol]] or [arm]
    lo, hi = min(prices), max(prices)
    out = [(f"{symbol}:L-low", "LONG", lo), (f"{symbol}:L-under", "LONG", lo - tick),
           (f"{symbol}:S-high", "SHORT", hi), (f"{symbol}:S-over", "SHORT", hi + tick)]  # fmt: skip
    if arm - lo >= 2 * tick:
        out.append((f"{symbol}:L-mid", "LONG", (lo // tick + arm // tick) // 2 * tick))
    if hi - arm >= 2 * tick:
        out.append((f"{symbol}:S-mid", "SHORT", (hi // tick + arm // tick + 1) // 2 * tick))
    return out


# --- what the subscriber saw -------------------------------------------------------------


class Recorder:
    """Every event the subscriber received, reduced to what the judge needs, in order."""

    def __init__(self) -> None:
        self.seq = 0
        self.streams: dict[tuple[str, str], list[Delivered]] = defaultdict(list)
        self.top: dict[tuple[str, str], int] = {}
        self.gaps: list[GapRecord] = []
        self.unfilled: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        self.gap_balance = 0
        self.fired: list[tuple[str, str]] = []
        self.refused: dict[tuple[str, str], int] = {}
        self.refusals: list[dict[str, Any]] = []
        self.errors: Counter[str] = Counter()
        self.quarantined: list[str] = []
        self.other: Counter[str] = Counter()
        self._changed = trio.Event()

    def _deliver(self, key: tuple[str, str], ev: Delivered) -> None:
        self.streams[key].append(ev)
        if ev.key > self.top.get(key, -1):
            self.top[key] = ev.key

    def add(self, ev: Any) -> None:
        """Record one event (any kind; the ones not judged are only counted)."""
        self.seq += 1
        seq, kind = self.seq, type(ev)
        if kind is Trade:
            self._deliver((ev.symbol, "trade"), Delivered(
                ev.trade_id, ev.backfilled, (_e8(ev.price), _e8(ev.quantity)), seq))  # fmt: skip
        elif kind is AggTrade:
            self._deliver((ev.symbol, "aggTrade"), Delivered(
                ev.agg_trade_id, ev.backfilled,
                (_e8(ev.price), _e8(ev.quantity), ev.first_trade_id, ev.last_trade_id), seq,
            ))  # fmt: skip
        elif kind is CandleClosed:
            k = ev.candle
            self._deliver((ev.symbol, f"kline_{k.interval}"), Delivered(
                k.open_time, k.backfilled, (_e8(k.close), _e8(k.volume), k.trade_count), seq,
            ))  # fmt: skip
        elif kind in (GapDetected, GapFilled, GapUnfilled):
            name = {GapDetected: "detected", GapFilled: "filled", GapUnfilled: "unfilled"}[kind]
            why = ev.reason if kind is GapUnfilled else ""
            self.gaps.append(GapRecord(name, ev.symbol, ev.stream, ev.first, ev.last, seq, why))
            self.gap_balance += 1 if kind is GapDetected else -1
            if kind is GapUnfilled:
                self.unfilled[(ev.symbol, ev.stream)].append((ev.first, ev.last))
        elif kind is StopTriggered:
            self.fired.append((ev.symbol, ev.position_id))
        elif kind is StreamRefused:
            suffix = ev.stream.split("@", 1)[1]
            self.refused.setdefault(((ev.symbol or "").upper(), suffix), seq)
            self.refusals.append({"stream": ev.stream, "code": ev.code, "message": ev.message,
                                  "seq": seq})  # fmt: skip
        elif kind is GatewayErrorEvent:
            self.errors[ev.source] += 1
        elif kind is SymbolQuarantined:
            self.quarantined.append(ev.symbol)
        else:
            self.other[kind.__name__] += 1
        self._changed.set()

    async def changed(self) -> None:
        """Wait for the next recorded event."""
        self._changed = trio.Event()
        await self._changed.wait()

    def reached(self, ends: dict[tuple[str, str], int]) -> bool:
        """Every stream's last key delivered (or unfilled) and every gap ended."""
        if self.gap_balance > 0:
            return False
        for key, end in ends.items():
            if self.top.get(key, -1) >= end:
                continue
            if not any(first <= end <= last for first, last in self.unfilled.get(key, ())):
                return False
        return True


# --- the run ---------------------------------------------------------------------------------


@attrs.define
class _Run:
    """Mutable state of one run, read by the report."""

    params: Params
    plan: Plan
    schedule: list[Fault]
    rec: Recorder = attrs.Factory(Recorder)
    positions: list[ArmedPosition] = attrs.Factory(list)
    start_ids: dict[tuple[str, str], int] = attrs.Factory(dict)
    sub_us: int = 0
    ends: dict[tuple[str, str], int] = attrs.Factory(dict)
    truth: dict[tuple[str, str], StreamTruth] = attrs.Factory(dict)
    paths: dict[str, list[tuple[int, int]]] = attrs.Factory(dict)
    aggs: dict[str, list[tuple[int, int, int]]] = attrs.Factory(dict)
    applied: list[dict[str, Any]] = attrs.Factory(list)
    phases: dict[str, float] = attrs.Factory(dict)
    fatal: str | None = None
    settled: bool = False
    warm_up_quiet: bool = False
    subscriber_dropped: int = 0
    gateway: dict[str, Any] = attrs.Factory(dict)
    twin_matches: bool = True


def _sim_config(params: Params) -> SimulatorConfig:
    return SimulatorConfig(symbols=tuple(symbol_names(params.symbols)), seed=params.seed,
                           clock="virtual", pacing="manual")  # fmt: skip


async def _flow(sim: Simulator, counts: Sequence[int], step: float) -> None:
    """Ask for ``counts[i]`` trades at step i (a tick when 0), one step apart."""
    start = trio.current_time()
    for i, n in enumerate(counts):
        if n:
            sim.control.generate(n)
        else:
            sim.control.tick()
        await trio.sleep_until(start + (i + 1) * step)


async def _wait_for(run: _Run, sim: Simulator, ends: dict[tuple[str, str], int],
                    limit: float) -> bool:  # fmt: skip
    """Tick the exchange until the recorder `reached` ``ends`` (at most ``limit`` s)."""
    deadline = trio.current_time() + limit
    for _ in range(math.ceil(limit / _POLL) + 1):
        if run.rec.reached(ends):
            return True
        left = deadline - trio.current_time()
        if left <= 0:
            break
        with trio.move_on_after(min(_POLL, left)):
            await run.rec.changed()
        sim.control.tick()
    return run.rec.reached(ends)


async def _faults(run: _Run, sim: Simulator) -> None:
    """Play every action of the schedule at its time (seconds from now)."""
    start = trio.current_time()
    actions = sorted((a for f in run.schedule for a in f.actions), key=lambda a: a.at)
    for action in actions:
        await trio.sleep_until(start + action.at)
        result = action.call(sim.control)
        at = round(trio.current_time() - start, 3)
        value = result if isinstance(result, int | float) else None
        run.applied.append({"at": at, "action": action.label, "result": value})


def _trade_ends(sim: Simulator, names: Sequence[str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for s in names:
        m = sim.market.symbol(s)
        out[(s, "trade")] = m.next_trade_id - 1
        out[(s, "aggTrade")] = m.next_agg_id - 1
    return out


def _take_truth(run: _Run, sim: Simulator) -> None:
    """The exchange's record, now (the flow has stopped): per stream the keys generated
    since the subscription and what its REST history still holds of them."""
    names = sim.config.symbols
    for s in names:
        m = sim.market.symbol(s)
        trades = {t[0]: (t[1], t[2]) for t in m.trades}
        start, end = run.start_ids[(s, "trade")], m.next_trade_id - 1
        held = sum(1 for k in trades if start <= k <= end)
        run.truth[(s, "trade")] = StreamTruth(start, end, trades, (end - start + 1) - held)
        aggs = {a[0]: (a[1], a[2], a[3], a[4]) for a in m.aggs}
        start, end = run.start_ids[(s, "aggTrade")], m.next_agg_id - 1
        held = sum(1 for k in aggs if start <= k <= end)
        run.truth[(s, "aggTrade")] = StreamTruth(start, end, aggs, (end - start + 1) - held)
        run.paths[s] = [(t[0], t[1]) for t in m.trades]
        run.aggs[s] = [(a[0], a[3], a[4]) for a in m.aggs]
        for interval in run.params.intervals:
            step_ms = INTERVAL_MS[interval]
            rows = [r for r in m.candles.history((interval, "")) if r[END] > run.sub_us]
            served = {r[OT] // 1000: (r[CL], r[VOL], r[CNT]) for r in rows}
            key = (s, f"kline_{interval}")
            first = math.ceil((run.sub_us // 1000 - step_ms + 1) / step_ms) * step_ms
            last = max(served) if served else first - step_ms
            unservable = (last - first) // step_ms + 1 - len(served)
            run.truth[key] = StreamTruth(first, last, served, max(0, unservable))
        run.ends.update({k: t.end for k, t in run.truth.items() if k[0] == s})


async def _drive(run: _Run, sim: Simulator) -> None:
    """Subscribe, warm up, arm, inject, clear, drain, settle (see the module docstring)."""
    params, plan, rec = run.params, run.plan, run.rec
    names = sim.config.symbols
    suffixes = params.streams
    async with open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, symbols=names, streams=suffixes,
        jitter_seed=params.seed,
    ) as gw, trio.open_nursery() as nursery:  # fmt: skip
        sub = gw.subscribe(buffer=5_000_000)

        async def consume() -> None:
            async for ev in sub:
                rec.add(ev)

        nursery.start_soon(consume)
        sim.control.tick()
        run.sub_us = sim.market.now_us
        run.start_ids = {k: v + 1 for k, v in _trade_ends(sim, names).items()}
        run.phases["subscribed"] = trio.current_time()
        await _flow(sim, plan.warm, params.step)
        run.warm_up_quiet = await _wait_for(run, sim, _trade_ends(sim, names), _QUIET)
        for s in names:
            after = sim.market.symbol(s).next_trade_id
            run.twin_matches &= after == plan.after_id[s]
            entry = plan.arm_price[s] / _E8
            for pid, side, stop in positions_for(plan, s):
                gw.open_position(s, side, entry, stop_price=stop / _E8, id=pid)
                run.positions.append(ArmedPosition(pid, s, side, stop, after))
        run.phases["armed"] = trio.current_time()
        faulted = round(params.seconds / params.step)
        async with trio.open_nursery() as inner:
            inner.start_soon(_faults, run, sim)
            await _flow(sim, plan.main[:faulted], params.step)
            inner.cancel_scope.cancel()
        sim.control.clear_faults()
        run.phases["cleared"] = trio.current_time()
        await _flow(sim, plan.main[faulted:], params.step)
        sim.control.tick()
        run.phases["flow_stopped"] = trio.current_time()
        _take_truth(run, sim)
        run.twin_matches &= all(run.paths[s][-len(plan.path[s]):] == plan.path[s]
                                for s in names)  # fmt: skip
        run.settled = await _wait_for(run, sim, run.ends, params.settle)
        run.phases["settled"] = trio.current_time()
        run.subscriber_dropped = sub.dropped
        stats = gw.stats().to_dict()  # the report's part
        run.gateway = {
            "rest": stats["rest"], "router": stats["router"],
            "connections": stats["connections"],
            "symbols": {s: {k: v.get(k) for k in ("gaps", "duplicates", "backfilled",
                                                  "hold_overflows", "held", "dropped",
                                                  "stops_fired")}
                        for s, v in stats["symbols"].items()},
        }  # fmt: skip
        sub.close()
        nursery.cancel_scope.cancel()


async def run_lossless(params: Params) -> dict[str, Any]:
    """One run (see the module docstring); returns the report (`report`)."""
    if params.faults < len(KINDS):
        raise ValueError(f"--faults must be at least {len(KINDS)} (every kind once)")
    cfg = _sim_config(params)
    plan = plan_flow(cfg, params)
    schedule = build_schedule(params.seed, params.seconds, cfg.symbols, params.streams,
                              params.faults)  # fmt: skip
    run = _Run(params, plan, schedule)
    seed_trio(f"lossless:{params.seed}")
    t0 = trio.current_time()
    async with open_simulator(cfg) as sim:
        try:
            await _drive(run, sim)
        except GatewayError as exc:
            run.fatal = f"{type(exc).__name__}: {exc}"
            if not run.truth:
                _take_truth(run, sim)
    run.phases = {k: round(v - t0, 3) for k, v in run.phases.items()}
    return report(run)


# --- the verdict -----------------------------------------------------------------------------


def report(run: _Run) -> dict[str, Any]:
    """Judge the run: figures per stream, gaps, stops, the invariants and the verdict."""
    rec = run.rec
    figures: list[StreamFigures] = []
    for key, truth in sorted(run.truth.items()):
        sym, stream = key
        step = INTERVAL_MS[stream.removeprefix("kline_")] if stream.startswith("kline_") else 1
        figures.append(judge_stream(sym, stream, rec.streams.get(key, []), truth,
                                    rec.unfilled.get(key, ()), refused_seq=rec.refused.get(key),
                                    step=step))  # fmt: skip
    gaps: GapFigures = judge_gaps(rec.gaps)
    hidden = {s: hidden_trades(rec.unfilled.get((s, "trade"), ()),
                               rec.unfilled.get((s, "aggTrade"), ()), run.aggs.get(s, ()))
              for s in run.paths}  # fmt: skip
    stops: StopFigures = judge_stops(run.positions, run.paths, rec.fired, hidden)
    totals: dict[str, dict[str, int]] = {}
    fields = ("expected", "delivered", "backfilled", "duplicates", "out_of_order", "lost",
              "unfilled", "wrong", "unservable", "lost_after_refusal")  # fmt: skip
    for fig in figures:
        kind = "kline" if fig.stream.startswith("kline_") else fig.stream
        for name in dict.fromkeys((fig.stream, kind, "all")):
            row = totals.setdefault(name, dict.fromkeys(fields, 0))
            for f in fields:
                row[f] += getattr(fig, f)
    every = totals.get("all", dict.fromkeys(fields, 0))
    invariants = {
        "no event lost": every["lost"] == 0,
        "no duplicate delivered": every["duplicates"] == 0,
        "no id out of order": every["out_of_order"] == 0,
        "no event with wrong content": every["wrong"] == 0,
        "every gap ended exactly once": not (
            gaps.never_ended or gaps.ended_twice or gaps.orphan_endings
        ),
        "every crossed stop fired": stops.missed_knowable == 0,
        "no stop fired twice": stops.double_fires == 0,
        "no uncrossed stop fired": stops.false_fires == 0,
        "the gateway survived": run.fatal is None,
        "the subscriber lost nothing to its buffer": run.subscriber_dropped == 0,
        "every stream reached its last key": run.settled,
    }
    return {
        "benchmark": "lossless",
        "params": attrs.asdict(run.params),
        "ok": all(invariants.values()),
        "invariants": invariants,
        "totals": totals,
        "gaps": gaps.as_dict(),
        "stops": stops.as_dict(),
        "streams": [f.as_dict() for f in figures],
        "faults": {
            "count": len(run.schedule),
            "kinds": dict(Counter(f.kind for f in run.schedule)),
            "schedule": [f.as_dict() for f in run.schedule],
            "applied": run.applied,
        },
        "refusals": rec.refusals,
        "errors_by_source": dict(rec.errors),
        "quarantined": rec.quarantined,
        "fatal": run.fatal,
        "phases_s": run.phases,
        "twin_matches": run.twin_matches,
        "warm_up_quiet": run.warm_up_quiet,
        "subscriber_dropped": run.subscriber_dropped,
        "gateway": run.gateway,
    }


def render(data: dict[str, Any]) -> str:
    """The terminal summary: per-stream table, totals, gaps, stops, the invariants."""
    cols = ("expected", "delivered", "backfilled", "duplicates", "out_of_order", "lost",
            "unfilled", "wrong")  # fmt: skip
    heads = ("symbol/stream", "expected", "delivered", "backfilled", "dup", "out of order",
             "lost", "unfilled", "wrong")  # fmt: skip
    rows = [[f"{s['symbol']} {s['stream']}", *(s[c] for c in cols)] for s in data["streams"]]
    out = [table(heads, rows), ""]
    out.append(table(("total", *heads[1:]),
                     [[name, *(t[c] for c in cols)] for name, t in data["totals"].items()
                      if name in ("trade", "aggTrade", "kline", "all")]))  # fmt: skip
    g, st = data["gaps"], data["stops"]
    out += [
        "",
        f"gaps: {g['detected']} detected, {g['filled']} filled, {g['unfilled']} unfilled; "
        f"never ended {len(g['never_ended'])}, ended twice {len(g['ended_twice'])}, "
        f"endings without a detection {len(g['orphan_endings'])}",
        f"stops: {st['positions']} positions, {st['crossed']} crossed, {st['fired_once']} "
        f"fired once; missed {st['missed']} ({st['missed_unknowable']} unknowable), "
        f"fired twice or more {st['double_fires']}, fired uncrossed {st['false_fires']}",
        f"faults: {data['faults']['count']} ({len(data['faults']['kinds'])} kinds); "
        f"errors reported by source {data['errors_by_source']}; fatal {data['fatal']}",
        "",
    ]
    out += _offences(data)
    out += [f"  [{'ok' if v else 'BROKEN'}] {k}" for k, v in data["invariants"].items()]
    out.append(f"verdict: {'LOSSLESS' if data['ok'] else 'INVARIANTS BROKEN'}")
    return "\n".join(out)


def _offences(data: dict[str, Any]) -> list[str]:
    """One line per stream, gap and position that broke an invariant (first keys named)."""
    out = []
    for s in data["streams"]:
        parts = []
        if s["lost"]:
            extra = f", {s['lost_after_refusal']} after its StreamRefused" if s[
                "lost_after_refusal"] else ""  # fmt: skip
            parts.append(f"lost {s['lost']}{extra}: {s['lost_sample']}")
        if s["duplicates"]:
            parts.append(f"duplicates {s['duplicates']}: {s['duplicate_sample']}")
        if s["out_of_order"]:
            parts.append(f"out of order {s['out_of_order']} (key, highest before): "
                         f"{s['out_of_order_sample'][:3]}")  # fmt: skip
        if s["wrong"]:
            parts.append(f"wrong {s['wrong']}: {s['wrong_sample']}")
        if parts:
            out.append(f"  {s['symbol']} {s['stream']}: " + "; ".join(parts))
    g = data["gaps"]
    for name in ("never_ended", "ended_twice", "orphan_endings"):
        for gap in g[name][:5]:
            out.append(f"  gap {name}: {gap['symbol']} {gap['stream']} "
                       f"{gap['first']}..{gap['last']}")  # fmt: skip
    out += [f"  stop {r['id']} (stop {r['stop_e8'] / _E8:g}): {r['verdict']}"
            for r in data["stops"]["rows"] if r["verdict"] != "ok"]  # fmt: skip
    return [*(["offences:"] if out else []), *out, ""]


# --- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``lossless`` options."""
    d = Params()
    parser.add_argument("--symbols", type=int, default=d.symbols)
    parser.add_argument("--seconds", type=float, default=d.seconds, help="faulted phase (s)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--rate", type=float, default=d.rate, help="trades/s, all symbols")
    parser.add_argument("--faults", type=int, default=d.faults,
                        help=f"faults to inject (at least {len(KINDS)}: every kind once)")
    parser.add_argument("--drain", type=float, default=d.drain, help="flow after clearing (s)")
    parser.add_argument("--settle", type=float, default=d.settle,
                        help="at most this long for the last events and gap endings (s)")
    parser.add_argument("--clock", choices=("mock", "real"), default=d.clock)
    parser.add_argument("--json", type=Path, default=None, help="write the report here")


def quick(args: argparse.Namespace) -> None:
    """Shrink to 4 symbols and a 30 s faulted phase."""
    args.symbols, args.seconds = 4, 30.0
    args.faults = max(len(KINDS), 22)


def params_of(args: argparse.Namespace) -> Params:
    """The `Params` of parsed options."""
    return Params(
        symbols=args.symbols, seconds=args.seconds, seed=args.seed, rate=args.rate,
        faults=args.faults, drain=args.drain, settle=args.settle, clock=args.clock,
    )  # fmt: skip


def main(args: argparse.Namespace) -> int:
    """Run, print, write the JSON; 1 when an invariant is broken."""
    logging.basicConfig(level=logging.ERROR)
    params = params_of(args)
    info = machine_info()
    wall = time.perf_counter()
    clock = trio.testing.MockClock(autojump_threshold=0) if params.clock == "mock" else None
    data = trio.run(run_lossless, params, clock=clock)
    data["wall_s"] = round(time.perf_counter() - wall, 2)
    data["machine"] = finish_machine_info(info)
    print(render(data))
    trio_s = data["phases_s"].get("settled", 0.0)
    print(f"trio time {trio_s:.1f} s ({params.clock} clock), wall {data['wall_s']} s")
    path = args.json if args.json is not None else args.out / "lossless.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"report: {path}")
    return 0 if data["ok"] else 1


"""``gateway soak [--chaos]``: a long run against the embedded exchange that proves, from
the exchange's own ledger, that nothing is lost, doubled or reordered, and that every
crossed stop fires exactly once, under every fault (with ``--chaos``).

The exchange runs in its own process (`gateway.app.chaos_exchange`, driven over its
stdin/stdout), the gateway (`open_gateway`, streams ``trade`` and ``aggTrade``) in this
one, with one subscriber taking every event into bounded per-stream checks
(`chaos_ledger`). ``--clock mock`` runs both in this process under trio's MockClock
instead: deterministic for a seed, minutes of soak in seconds (the test suite's form).

Phases: a quiet start (``--quiet`` s, no fault; positions armed at its start), the
faulted phase (the seeded `chaos_faults` schedule, every kind at least once), the drain
(``--drain`` s without faults), then the window closes at the exchange's last ids and the
run waits (at most ``--settle`` s) until every stream reached them.

Positions: per symbol ``--crossers`` LONG and SHORT stops 8 % and more away from a calm
random walk, each crossed by one trade the exchange makes at its price (at a recorded
trade id, some inside gaps, stalls and outages), then one back; and four decoys never
traded through (one tick past the deepest crossing, and half / one and a half times the
price).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from gateway import (
    GatewayError,
    StopTriggered,
    Trade,
)
from gateway.app.chaos_exchange import LocalExchange, exchange_config, open_chaos_exchange
from gateway.app.chaos_faults import EXTRA_KINDS, KINDS, Fault, Step, build_schedule
from gateway.app.soak_exchange import (
    Exchange,
    history_of,
    open_process_exchange,
)
from gateway.app.soak_verdict import STREAMS, Recorder, render, summarize

__all__ = ["SoakParams", "add_soak_arguments", "main_soak", "render", "run_soak"]

log = logging.getLogger(__name__)

_TICK = 0.01  # the exchange's tick size (SimulatorConfig default)
_SETTLE_POLL = 0.25


@attrs.frozen(slots=True, kw_only=True)
class SoakParams:
    """One run's options (see ``gateway soak --help``)."""

    duration: float = 300.0  #: seconds in all: warm-up + faulted phase + drain
    seed: int = 1
    symbols: int = 10
    rate: float = 1000.0  #: trades per second, all symbols together
    chaos: bool = False
    faults: int = 0  #: 0: one every 8 s of the faulted phase (at least every kind once)
    quiet: float = 10.0  #: seconds before the first fault
    #: RSS growth is measured from this time on: faults run during the warm-up, so that
    #: what the worst backlogs need (held trades, a subscriber's burst) is already
    #: allocated, and growth after it means a leak
    warmup: float = 60.0
    drain: float = 30.0
    settle: float = 120.0
    interval: float = 5.0  #: seconds between samples
    crossers: int = 3  #: crossed stops per side and symbol
    big_gap: int = 25_000  #: the most ids a large gap drops
    clock: str = "real"  #: "real" (exchange in its own process) or "mock" (one process)
    max_rss_growth: float = 5.0  #: percent after warm-up (judged on runs of 5 min or more)
    #: "tuned": glibc returns large freed buffers to the OS (`gateway.app.memory`), as
    #: ``gateway run`` does; "default": the allocator as the process found it
    malloc: str = "tuned"
    kinds: tuple[str, ...] = KINDS  #: the fault kinds drawn (each at least once)
    #: the gateway's ``hold_max_seconds`` (None: its default): how long live trades after
    #: a gap wait, in order, for the backfill before the gap ends unfilled
    hold_seconds: float | None = None
    summary: str | None = None

    @property
    def fault_count(self) -> int:
        """The faults to inject (0 without ``--chaos``)."""
        if not self.chaos:
            return 0
        span = self.duration - self.quiet - self.drain
        return max(len(self.kinds), self.faults or int(span / 8))


# --- gateway-side faults ---------------------------------------------------------------------


class GatewayFaults:
    """The faults injected inside the gateway through its public seams: a trade callback
    that raises, a close hook that raises or hangs (on chosen positions, once each), and
    a symbol actor crashed on purpose (`Gateway.kill_symbol`: the supervisor restarts it
    with its state), now or from the close hook of its next stop."""

    def __init__(self) -> None:
        self.raise_next = 0
        self.callback_raised_at: list[tuple[int, float]] = []
        self.callback_recovery: dict[int, float] = {}
        self.callback_calls = 0
        self.bad_hooks: dict[str, tuple[str, int]] = {}  # position id -> (how, fault index)
        self.hook_failed_at: dict[str, float] = {}
        self.hook_recovery: dict[int, float] = {}
        self.hook_calls = 0
        self.crashes = 0
        self.kill_on_close: set[str] = set()  # symbols armed by crash_after_trigger
        self._gw: Any = None

    def on_trade(self, ev: Any) -> None:
        """The user callback: raises when a fault asked for it, else counts."""
        self.callback_calls += 1
        if self.raise_next:
            self.raise_next -= 1
            raise RuntimeError("chaos: the user's trade callback raises")
        if self.callback_raised_at:
            now = trio.current_time()
            for idx, at in self.callback_raised_at:
                self.callback_recovery[idx] = now - at
            self.callback_raised_at.clear()

    async def close_hook(self, ev: StopTriggered) -> None:
        """The user close hook: a chosen position's first call raises or hangs; an armed
        symbol's actor is killed first (crash_after_trigger)."""
        self.hook_calls += 1
        if ev.symbol in self.kill_on_close:
            self.kill_on_close.discard(ev.symbol)
            if self._gw.kill_symbol(ev.symbol, "chaos: crash after a trigger"):
                self.crashes += 1
        bad = self.bad_hooks.get(ev.position_id)
        pid = ev.position_id
        if bad is not None and pid not in self.hook_failed_at:
            self.hook_failed_at[pid] = trio.current_time()
            if bad[0] == "hook_raise":
                raise RuntimeError(f"chaos: close hook raises for {pid}")
            await trio.sleep_forever()  # the gateway's close_hook_timeout ends it
        if bad is not None and bad[1] not in self.hook_recovery:
            self.hook_recovery[bad[1]] = trio.current_time() - self.hook_failed_at[pid]

    def crash(self, gw: Any, symbol: str) -> None:
        """Crash ``symbol``'s actor now, through the public lever (`Gateway.kill_symbol`):
        restarted by its supervisor, what arrives meanwhile queued, nothing lost."""
        if gw.kill_symbol(symbol, "chaos: actor_crash"):
            self.crashes += 1

    def crash_after_trigger(self, gw: Any, symbol: str) -> None:
        """Crash ``symbol``'s actor from the close hook of its next stop to fire: the
        trigger is kept, its close is in flight while the actor restarts (once)."""
        self._gw = gw
        self.kill_on_close.add(symbol)


# --- the run ---------------------------------------------------------------------------------


@attrs.define
class _Run:
    params: SoakParams
    names: list[str]
    schedule: list[Fault]
    rec: Recorder
    gf: GatewayFaults = attrs.Factory(GatewayFaults)
    crossers: dict[str, deque[tuple[str, int]]] = attrs.Factory(dict)
    positions: list[tuple[str, str, str, int]] = attrs.Factory(list)  # id, symbol, side, stop
    applied: list[dict[str, Any]] = attrs.Factory(list)
    crossings: list[dict[str, Any]] = attrs.Factory(list)
    injected: Counter[str] = attrs.Factory(Counter)
    samples: list[dict[str, Any]] = attrs.Factory(list)
    ledger: dict[str, Any] = attrs.Factory(dict)
    ends: dict[tuple[str, str], int] = attrs.Factory(dict)
    settled: bool = False
    fatal: str | None = None
    gateway: dict[str, Any] = attrs.Factory(dict)
    subscriber_dropped: int = 0
    t0: float = 0.0
    exchange_pid: int | None = None


def seed_trio(seed: str) -> None:
    """Seed the order in which trio runs a batch of ready tasks (its private random
    source; skipped if a trio version has none)."""
    source = getattr(trio._core._run, "_r", None)
    if isinstance(source, random.Random):
        source.seed(f"{seed}:trio")


def _rss_mb(pid: int | None = None) -> float:
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return math.nan


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def _arm(run: _Run, gw: Any, mids: dict[str, int]) -> list[dict[str, Any]]:
    """The positions of every symbol (module docstring); returns the exchange commands."""
    cmds = []
    j_max = run.params.crossers
    for sym in run.names:
        m = mids[sym]
        d, step = round(0.08 * m), max(1, round(0.01 * m))
        plan: list[tuple[str, str, int]] = []
        order: deque[tuple[str, int]] = deque()
        for j in range(j_max):
            plan.append((f"{sym}:L{j}", "LONG", m - d - j * step))
            plan.append((f"{sym}:S{j}", "SHORT", m + d + j * step))
            order.append((f"{sym}:L{j}", m - d - j * step))
            order.append((f"{sym}:S{j}", m + d + j * step))
        deep = (j_max - 1) * step
        plan += [(f"{sym}:L-edge", "LONG", m - d - deep - 1),
                 (f"{sym}:S-edge", "SHORT", m + d + deep + 1),
                 (f"{sym}:L-far", "LONG", m // 2),
                 (f"{sym}:S-far", "SHORT", m * 3 // 2)]  # fmt: skip
        run.crossers[sym] = order
        for pid, side, stop in plan:
            cmds.append({"op": "arm", "symbol": sym, "id": pid, "side": side, "stop": stop})
            run.positions.append((pid, sym, side, stop))
    return cmds


async def _do(run: _Run, ex: Exchange, gw: Any, fault: Fault, step: Step) -> dict[str, int]:
    """Play one step; returns the exchange's next trade ids (the recovery marks)."""
    what = step.what
    reply: dict[str, Any]
    if what[0] == "control":
        reply = await ex.call({"op": "control", "method": what[1], "args": list(what[2]),
                               "kwargs": what[3]})  # fmt: skip
    elif what[0] == "cross":
        sym = what[1]
        order = run.crossers.get(sym)
        if not order:
            reply = await ex.call({"op": "mark"})
            run.crossings.append({"fault": fault.index, "symbol": sym, "skipped": True})
        else:
            pid, ticks = order.popleft()
            reply = await ex.call({"op": "cross", "symbol": sym, "ticks": ticks})
            run.crossings.append({"fault": fault.index, "kind": fault.kind, "symbol": sym,
                                  "position": pid, "ids": reply.get("result"),
                                  "at": round(trio.current_time() - run.t0, 3)})  # fmt: skip
    else:
        action, sym = what[1], what[2]
        reply = await ex.call({"op": "mark"})
        if action == "crash":
            run.gf.crash(gw, sym)
        elif action == "crash_after_trigger":
            run.gf.crash_after_trigger(gw, sym)
        elif action == "callback_raise":
            run.gf.raise_next += 1
            run.gf.callback_raised_at.append((fault.index, trio.current_time()))
        elif action in ("hook_raise", "hook_hang"):
            order = run.crossers.get(sym)
            if order:
                run.gf.bad_hooks[order[0][0]] = (action, fault.index)
    run.applied.append({"fault": fault.index, "at": round(trio.current_time() - run.t0, 3),
                        "step": step.label, "ok": reply.get("ok"),
                        "error": reply.get("error")})  # fmt: skip
    marks: dict[str, int] = reply.get("next", {})
    return marks


async def _faults(run: _Run, ex: Exchange, gw: Any) -> None:
    """Play the schedule: every step at its time (from the run's start)."""
    steps = sorted(((s.at, f.index, n, f, s) for f in run.schedule
                    for n, s in enumerate(f.steps)), key=lambda x: (x[0], x[1], x[2]))  # fmt: skip
    for _, _, n, fault, step in steps:
        await trio.sleep_until(run.t0 + step.at)
        marks = await _do(run, ex, gw, fault, step)
        if n == 0:
            run.injected[fault.kind] += 1
            if fault.kind == "callback_raise" or fault.kind.startswith("hook_"):
                continue  # measured by the callback / the hook themselves
            wanted = [fault.symbol] if fault.symbol else run.names
            run.rec.expect(fault.index, {s: marks[s] for s in wanted if s in marks},
                           trio.current_time())  # fmt: skip


async def _sample(run: _Run, gw: Any, sub: Any) -> None:
    """A sample every ``interval`` s until cancelled; what memory is held where, too."""
    p = run.params
    for k in range(1, 10**9):  # bounded by the run's cancellation
        await trio.sleep_until(run.t0 + k * p.interval)
        stats = gw.stats()
        symbols = stats.symbols.values()
        run.samples.append({
            "t_s": round(trio.current_time() - run.t0, 3),
            "rss_mb": _rss_mb(),
            # live Python memory blocks: back to a level after a burst while RSS stays up
            # is CPython keeping its arenas (a high-water mark), not a leak
            "py_blocks": sys.getallocatedblocks(),
            "exchange_rss_mb": _rss_mb(run.exchange_pid) if run.exchange_pid else None,
            "events": run.rec.events,
            "reconnects": sum(c.reconnects for c in stats.connections),
            "faults": sum(run.injected.values()),
            "cpu_s": round(time.process_time(), 2),
            "exchange_cpu_s": _cpu_s(run.exchange_pid) if run.exchange_pid else None,
            "rest_throttled": stats.rest.throttled if stats.rest is not None else None,
            "held": sum(v.held for v in symbols),
            "subscriber_queued": len(sub),
            "backfill_queued": stats.rest.queued if stats.rest is not None else 0,
        })  # fmt: skip


def _settled(run: _Run) -> bool:
    """Every stream reached the window's end with no gap open, and every fault injected
    has recovered (a fault late in the run may still be on its way back)."""
    rec, gf = run.rec, run.gf
    hooks_done = all(bad[1] in gf.hook_recovery for pid, bad in gf.bad_hooks.items()
                     if pid in gf.hook_failed_at)  # fmt: skip
    return (rec.reached(run.ends) and not any(rec.left.values())
            and not gf.callback_raised_at and hooks_done)  # fmt: skip


_BATCH = 4096  # events the soak's subscriber takes per wake-up at most


async def _settle(run: _Run) -> bool:
    """Wait (at most ``--settle`` s) until `_settled`."""
    limit = run.params.settle
    for _ in range(math.ceil(limit / _SETTLE_POLL) + 1):
        if _settled(run):
            return True
        await trio.sleep(_SETTLE_POLL)
    return run.rec.reached(run.ends)


def _hold(p: SoakParams) -> dict[str, Any]:
    """The gateway override for ``--hold-seconds`` (none by default)."""
    return {} if p.hold_seconds is None else {"hold_max_seconds": p.hold_seconds}


async def _drive(run: _Run, ex: Exchange) -> None:
    """Open the gateway, arm, inject, drain, close the window, settle."""
    from gateway.api import open_gateway

    p, rec, gf = run.params, run.rec, run.gf
    async with open_gateway(
        url=ex.ws_url, rest_url=ex.rest_url, symbols=run.names, streams=STREAMS,
        close_hook=gf.close_hook, silence_timeout=5.0, trade_silence_floor=5.0,
        close_hook_timeout=3.0, max_restarts=20, restart_period=10.0, fallback_after=0.0,
        jitter_seed=p.seed,
        **_hold(p),
    ) as gw, trio.open_nursery() as nursery:  # fmt: skip
        sub = gw.subscribe(buffer=2_000_000)

        async def consume() -> None:
            # In batches: one event per receive is one scheduling round each, and a
            # symbol publishes a REST page (1000 rows) in one round.
            add = rec.add
            while True:
                try:
                    batch = await sub.receive_batch(_BATCH)
                except trio.EndOfChannel:
                    return
                for ev in batch:
                    add(ev)

        nursery.start_soon(consume)
        gw.on(Trade, gf.on_trade)
        run.t0 = trio.current_time()
        nursery.start_soon(_sample, run, gw, sub)
        start = await ex.call({"op": "start"})
        for cmd in _arm(run, gw, start["result"]):
            reply = await ex.call(cmd)
            if not reply.get("ok"):
                raise GatewayError(f"the exchange refused {cmd}: {reply.get('error')}")
            gw.open_position(cmd["symbol"], "LONG" if cmd["side"] == "LONG" else "SHORT",
                             round(start["result"][cmd["symbol"]] * _TICK, 8),
                             stop_price=round(cmd["stop"] * _TICK, 8), id=cmd["id"])  # fmt: skip
        async with trio.open_nursery() as inner:
            inner.start_soon(_faults, run, ex, gw)
            await trio.sleep_until(run.t0 + p.duration - p.drain)
            inner.cancel_scope.cancel()
        await ex.call({"op": "control", "method": "clear_faults"})
        await trio.sleep_until(run.t0 + p.duration)
        ledger = await ex.call({"op": "ledger"})
        run.ledger = ledger["result"]
        for sym, book in run.ledger["symbols"].items():
            run.ends[(sym, "trade")] = book["trade"][1]
            run.ends[(sym, "aggTrade")] = book["agg"][1]
        run.settled = await _settle(run)
        run.samples.append({"t_s": round(trio.current_time() - run.t0, 3), "rss_mb": _rss_mb(),
                            "py_blocks": sys.getallocatedblocks(),
                            "exchange_rss_mb": _rss_mb(run.exchange_pid)
                            if run.exchange_pid else None, "events": rec.events,
                            "reconnects": sum(c.reconnects for c in gw.stats().connections),
                            "faults": sum(run.injected.values()), "end": True})  # fmt: skip
        run.subscriber_dropped = sub.dropped
        stats = gw.stats().to_dict()  # the summary JSON's part
        run.gateway = {
            "restarts": {s: v["restarts"] for s, v in stats["symbols"].items()},
            "dead_letters": sum(v["dead_letters"] for v in stats["symbols"].values()),
            "reconnects": sum(c["reconnects"] for c in stats["connections"]),
            "connections": stats["connections"], "router": stats["router"],
            "rest": stats["rest"], "callbacks": stats["callbacks"],
            "hook_calls": gf.hook_calls, "callback_calls": gf.callback_calls,
            "crashes_injected": gf.crashes,
        }  # fmt: skip
        sub.close()
        nursery.cancel_scope.cancel()


async def run_soak(params: SoakParams, log_path: Path | None = None) -> dict[str, Any]:
    """One run (module docstring); returns the summary (`summarize`)."""
    names = [f"S{i:03d}USDT" for i in range(params.symbols)]
    last = params.duration - params.drain  # faults end this long before the window closes
    schedule = (build_schedule(params.seed, params.quiet, last, names, params.fault_count,
                               params.big_gap, params.kinds)
                if params.chaos else [])  # fmt: skip
    run = _Run(params, names, schedule, Recorder(names))
    wall = time.perf_counter()
    try:
        if params.clock == "mock":
            seed_trio(f"soak:{params.seed}")
            cfg = exchange_config(tuple(names), params.seed, params.rate, clock="virtual",
                                  history=history_of(params))  # fmt: skip
            async with open_chaos_exchange(cfg) as core:
                await _drive(run, LocalExchange(core))
        else:
            async with open_process_exchange(params, names, log_path) as ex:
                run.exchange_pid = ex.pid
                await _drive(run, ex)
    except GatewayError as exc:
        run.fatal = f"{type(exc).__name__}: {exc}"
    out = summarize(run)
    out["wall_s"] = round(time.perf_counter() - wall, 1)
    return out


# --- command line ------------------------------------------------------------------------------


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``soak`` options (shared by ``gateway soak`` and ``python -m benchmarks soak``)."""
    d = SoakParams()
    add = parser.add_argument
    add("--chaos", action="store_true", help="inject every fault kind on a seeded schedule")
    add("--duration", type=float, default=d.duration, help="seconds in all")
    add("--seed", type=int, default=d.seed, help="seed of the market, the faults and the stops")
    add("--symbols", type=int, default=d.symbols, help="how many symbols")
    add("--rate", type=float, default=d.rate, help="trades per second, all symbols")
    add("--faults", type=int, default=d.faults,
        help=f"faults to inject (0: one per 8 s; at least {len(KINDS)})")  # fmt: skip
    add("--quiet", type=float, default=d.quiet, help="seconds before the first fault")
    add("--warmup", type=float, default=d.warmup,
        help="seconds (faults included) before RSS growth is measured")  # fmt: skip
    add("--drain", type=float, default=d.drain, help="seconds without faults at the end")
    add("--settle", type=float, default=d.settle, help="at most this long for the last ids")
    add("--interval", type=float, default=d.interval, help="seconds between samples")
    add("--crossers", type=int, default=d.crossers, help="crossed stops per side and symbol")
    add("--big-gap", type=int, default=d.big_gap, help="the most ids one large gap drops")
    add("--clock", choices=("real", "mock"), default=d.clock,
        help="real: exchange in its own process; mock: one process under MockClock")  # fmt: skip
    add("--max-rss-growth", type=float, default=d.max_rss_growth,
        help="percent RSS growth allowed after warm-up (runs of 5 min or more)")  # fmt: skip
    add("--malloc", choices=("tuned", "default"), default=d.malloc,
        help="tuned: large freed buffers go back to the OS, as in gateway run; default: the "
             "C library's own settings (default %(default)s)")  # fmt: skip
    add("--hold-seconds", type=float, default=None,
        help="the gateway's hold_max_seconds (default: the gateway's own, 10 s)")  # fmt: skip
    add("--kinds", default=",".join(d.kinds), metavar="KIND,...",
        help=f"the fault kinds to draw from (default: every kind, {', '.join(d.kinds)}; "
             f"also: {', '.join(EXTRA_KINDS)})")  # fmt: skip
    add("--summary", metavar="FILE", default=None, help="write the summary JSON here")


def params_of(args: argparse.Namespace) -> SoakParams:
    """`SoakParams` from parsed options."""
    return SoakParams(
        duration=args.duration, seed=args.seed, symbols=args.symbols, rate=args.rate,
        chaos=args.chaos, faults=args.faults, quiet=args.quiet, warmup=args.warmup,
        drain=args.drain,
        settle=args.settle, interval=args.interval, crossers=args.crossers,
        big_gap=args.big_gap, clock=args.clock, max_rss_growth=args.max_rss_growth,
        malloc=args.malloc, kinds=tuple(k for k in args.kinds.replace(" ", "").split(",") if k),
        hold_seconds=args.hold_seconds,
        summary=args.summary,
    )  # fmt: skip


def run_params(params: SoakParams) -> dict[str, Any]:
    """Run (in a fresh trio run) and return the summary."""
    log_path = Path(params.summary).with_suffix(".exchange.log") if params.summary else None
    if params.clock == "mock":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(run_soak, params, None, clock=clock)
    return trio.run(run_soak, params, log_path)


def main_soak(args: argparse.Namespace) -> int:
    """``gateway soak``: run, print the table, write the summary; 0 on pass, 1 on fail."""
    logging.basicConfig(level=logging.ERROR)
    params = params_of(args)
    if params.duration <= max(params.quiet, params.warmup) + params.drain:
        print("gateway soak: --duration must be longer than --quiet (and --warmup) plus "
              "--drain",
              file=sys.stderr)  # fmt: skip
        return 2
    unknown = sorted(set(params.kinds) - set(KINDS) - set(EXTRA_KINDS))
    if unknown or not params.kinds:
        print(f"gateway soak: unknown --kinds {unknown}; known: {', '.join(KINDS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    if params.malloc == "tuned":
        from gateway.app.memory import tune_malloc

        tune_malloc()
    data = run_params(params)
    print(render(data))
    if params.summary:
        path = Path(params.summary)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return 0 if data["verdict"] == "pass" else 1

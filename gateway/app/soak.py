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
import subprocess
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio
import trio.testing

from gateway import (
    AggTrade,
    GapDetected,
    GapFilled,
    GapUnfilled,
    GatewayError,
    GatewayErrorEvent,
    StopTriggered,
    SymbolQuarantined,
    Trade,
)
from gateway.app.chaos_exchange import LocalExchange, exchange_config, open_chaos_exchange
from gateway.app.chaos_faults import EXTRA_KINDS, KINDS, Fault, Step, build_schedule
from gateway.app.chaos_ledger import Spans, StreamCheck, judge_stop, judge_stream

__all__ = ["SoakParams", "add_soak_arguments", "main_soak", "render", "run_soak"]

log = logging.getLogger(__name__)

_TICK = 0.01  # the exchange's tick size (SimulatorConfig default)
_STREAMS = ("trade", "aggTrade")
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


# --- the exchange, in its own process ------------------------------------------------


class Exchange(Protocol):
    """The soak's view of the exchange: its URLs and one command at a time."""

    ws_url: str
    rest_url: str
    pid: int | None

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]: ...


class ProcessExchange:
    """`gateway.app.chaos_exchange` in a child process; commands over its stdin."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.ws_url = self.rest_url = ""
        self.pid: int | None = proc.pid
        self._buf = b""
        self._lock = trio.Lock()

    async def _line(self) -> dict[str, Any]:
        out = self.proc.stdout
        assert out is not None
        for _ in range(1_000_000):  # bounded: a reply is far shorter than 64 GB
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                reply: dict[str, Any] = json.loads(line)
                return reply
            chunk = await out.receive_some(1 << 20)
            if not chunk:
                raise GatewayError("the exchange process ended")
            self._buf += chunk
        raise GatewayError("the exchange sent an endless line")

    async def ready(self) -> None:
        """Wait for the exchange's ready line (at most 60 s)."""
        with trio.fail_after(60):
            hello = await self._line()
        self.ws_url, self.rest_url = hello["ws_url"], hello["rest_url"] or ""

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send ``cmd``, wait for its reply (at most 60 s)."""
        stdin = self.proc.stdin
        assert stdin is not None
        async with self._lock:
            with trio.fail_after(60):
                await stdin.send_all(json.dumps(cmd).encode() + b"\n")
                return await self._line()


@asynccontextmanager
async def open_process_exchange(
    params: SoakParams, names: list[str], log_path: Path | None
) -> AsyncIterator[ProcessExchange]:
    """Start the exchange process; on exit ask it to quit (killed after 10 s)."""
    argv = [sys.executable, "-m", "gateway.app.chaos_exchange", "--symbols", ",".join(names),
            "--seed", str(params.seed), "--rate", str(params.rate),
            "--history", str(_history(params))]  # fmt: skip
    err = (open(log_path, "wb")  # noqa: ASYNC230, SIM115 - once, before anything runs
           if log_path is not None else subprocess.DEVNULL)
    try:
        proc = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=err)  # fmt: skip
        try:
            link = ProcessExchange(proc)
            await link.ready()
            yield link
            with trio.move_on_after(10):
                await link.call({"op": "quit"})
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await proc.wait()
    finally:
        if not isinstance(err, int):
            err.close()


def _history(params: SoakParams) -> int:
    """Trades the exchange's REST side keeps per symbol: the largest gap plus 15,000."""
    return params.big_gap + 15_000


# --- what the subscriber saw -------------------------------------------------------------


class Recorder:
    """Every event the subscriber received, reduced to bounded checks, plus recovery."""

    def __init__(self, names: list[str]) -> None:
        self.checks = {(s, k): StreamCheck() for s in names for k in _STREAMS}
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
        self.kill_on_close: dict[str, Any] = {}  # symbol -> its gateway (crash_after_trigger)

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
        gw = self.kill_on_close.pop(ev.symbol, None)
        if gw is not None and gw.kill_symbol(ev.symbol, "chaos: crash after a trigger"):
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
        self.kill_on_close[symbol] = gw


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


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


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
        url=ex.ws_url, rest_url=ex.rest_url, symbols=run.names, streams=_STREAMS,
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
                                  history=_history(params))  # fmt: skip
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


# --- the verdict -----------------------------------------------------------------------------


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

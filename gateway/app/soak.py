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
    Trade,
)
from gateway.app.chaos_exchange import LocalExchange, exchange_config, open_chaos_exchange
from gateway.app.chaos_faults import EXTRA_KINDS, KINDS, Fault, build_schedule
from gateway.app.soak_exchange import (
    Exchange,
    history_of,
    open_process_exchange,
)
from gateway.app.soak_faults import GatewayFaults, play_schedule
from gateway.app.soak_options import SoakParams, add_soak_arguments, params_of
from gateway.app.soak_sampling import sample_at_end, sample_every_interval
from gateway.app.soak_verdict import STREAMS, Recorder, render, summarize

__all__ = ["SoakParams", "add_soak_arguments", "main_soak", "render", "run_soak"]

log = logging.getLogger(__name__)

_TICK = 0.01  # the exchange's tick size (SimulatorConfig default)
_SETTLE_POLL = 0.25


# --- the run ---------------------------------------------------------------------------------


@attrs.define
class _Run:
    """One run's plan and everything it measured: filled by the driver, the faults
    (`soak_faults`) and the samples (`soak_sampling`), read by the verdict."""

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
        nursery.start_soon(sample_every_interval, run, gw, sub)
        start = await ex.call({"op": "start"})
        for cmd in _arm(run, gw, start["result"]):
            reply = await ex.call(cmd)
            if not reply.get("ok"):
                raise GatewayError(f"the exchange refused {cmd}: {reply.get('error')}")
            gw.open_position(cmd["symbol"], "LONG" if cmd["side"] == "LONG" else "SHORT",
                             round(start["result"][cmd["symbol"]] * _TICK, 8),
                             stop_price=round(cmd["stop"] * _TICK, 8), id=cmd["id"])  # fmt: skip
        async with trio.open_nursery() as inner:
            inner.start_soon(play_schedule, run, ex, gw)
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
        sample_at_end(run, gw)
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

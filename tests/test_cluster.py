"""Issue 17, processes: `gateway cluster`'s parent with real worker processes, the
embedded exchange in its own process and a private redis-server, read back by the
parent's checking consumer (trade ids per symbol: a gap or a duplicate is counted).

- two workers: every trade of every symbol arrives once, in order per symbol;
- ``kill -9`` of a worker: it is restarted, its symbols resume, nothing is doubled, and
  the trades it missed while down are reported as gaps;
- 2 -> 3 workers: about a third of the symbols move, make-before-break, and nothing is
  lost or doubled across the handover;
- a stop whose worker dies between the trigger and the close fires exactly once, and the
  restarted worker closes it.

Real processes and real time: every wait is bounded with ``fail_after``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import trio

from gateway.cli import main
from gateway.cluster.parent import Cluster, ClusterParams, open_cluster
from gateway.cluster.positions import RedisPositions
from gateway.cluster.redis_client import redis_client
from gateway.cluster.wire import decode_entry

SYMBOLS = tuple(f"S{i:02d}USDT" for i in range(12))


def _params(**overrides: object) -> ClusterParams:
    options: dict[str, object] = {"workers": 2, "symbols": SYMBOLS, "streams": ("trade",),
                                  "rate": 600.0, "handover": 0.5}  # fmt: skip
    options.update(overrides)
    return ClusterParams(**options)  # type: ignore[arg-type]


def _total(cluster: Cluster) -> int:
    return sum(sum(kinds.values()) for kinds in cluster.received.values())


def _trades(cluster: Cluster, symbol: str) -> int:
    return cluster.received.get(symbol, {}).get("trade", 0)


async def _every_symbol(cluster: Cluster, symbols: tuple[str, ...] | list[str], more: int,
                        than: dict[str, int] | None = None) -> None:  # fmt: skip
    """Wait until every one of ``symbols`` has ``more`` trades read back (beyond ``than``)."""
    base = than or {}
    with trio.fail_after(60):
        await cluster.wait_received(
            lambda _: all(_trades(cluster, s) >= base.get(s, 0) + more for s in symbols))


async def test_two_workers_deliver_every_trade_of_every_symbol_once_in_order() -> None:
    async with open_cluster(_params()) as cluster:
        await _every_symbol(cluster, SYMBOLS, 40)
        summary = await cluster.summary()
    shares = [w["symbols"] for w in summary["workers"].values()]
    assert sorted(s for share in shares for s in share) == sorted(SYMBOLS) and all(shares)
    assert summary["consumer"]["duplicates"] == summary["consumer"]["gaps"] == 0
    assert summary["consumer"]["undecodable"] == 0
    assert summary["redis"]["private"] is True and summary["verdict"] == "pass"
    assert sum(w["events_published"] for w in summary["workers"].values()) > 0


async def test_a_worker_killed_with_sigkill_is_restarted_and_its_symbols_resume() -> None:
    async with open_cluster(_params(max_restarts=3)) as cluster:
        await _every_symbol(cluster, SYMBOLS, 20)
        victim = cluster.slots["w0"]
        killed = victim.pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        with trio.fail_after(60):
            slot = await cluster.wait_restarted("w0", 1)
        before = {s: _trades(cluster, s) for s in SYMBOLS}
        await _every_symbol(cluster, SYMBOLS, 20, than=before)  # the victim's ones too
        summary = await cluster.summary()
    w0 = summary["workers"]["w0"]
    assert w0["restarts"] == 1 and w0["exits"] == [-signal.SIGKILL] and slot.pid != killed
    assert summary["workers"]["w1"]["restarts"] == 0
    assert summary["consumer"]["duplicates"] == 0  # nothing doubled by the restart
    # What w0 missed while it was down is not invented: the consumer reports it.
    assert summary["consumer"]["gaps"] <= len(victim.symbols)
    assert summary["verdict"] == "pass"


async def test_going_from_two_to_three_workers_moves_a_third_and_loses_nothing() -> None:
    symbols = tuple(f"M{i:02d}USDT" for i in range(24))
    async with open_cluster(_params(symbols=symbols)) as cluster:
        await _every_symbol(cluster, symbols, 10)
        with trio.fail_after(90):
            moved = await cluster.resize(3)
        assert list(moved) == ["w2"]  # only the new worker gains symbols
        assert 4 <= len(moved["w2"]) <= 14  # about a third of 24
        assert cluster.slots["w2"].symbols == moved["w2"]
        before = {s: _trades(cluster, s) for s in symbols}
        await _every_symbol(cluster, symbols, 20, than=before)
        summary = await cluster.summary()
    assert summary["consumer"]["gaps"] == summary["consumer"]["duplicates"] == 0
    owners = {s: w for w, info in summary["workers"].items() for s in info["symbols"]}
    assert sorted(owners) == sorted(symbols)
    assert summary["verdict"] == "pass"


async def test_a_stop_whose_worker_dies_between_trigger_and_close_fires_exactly_once() -> None:
    # w0 is started with a fault: the moment one of its stops has fired in Redis, before
    # its close, it SIGKILLs itself. Its restart finds the position fired, not closed, and
    # closes it without firing it again; the other position fires once on the new life.
    params = _params(faults=("w0:die-before-close",), max_restarts=3)
    async with open_cluster(params) as cluster:
        await _every_symbol(cluster, SYMBOLS, 5)
        symbol = cluster.slots["w0"].symbols[0]
        price = cluster.last_price[symbol]
        async with redis_client(cluster.redis_url) as client:
            positions = RedisPositions(client, params.prefix)
            ids = [await positions.open(symbol, "LONG", price, stop_price=price * 0.9995),
                   await positions.open(symbol, "SHORT", price, stop_price=price * 1.0005)]
            with trio.fail_after(60):
                await cluster.wait_restarted("w0", 1)  # the fault fired with the first stop
                await cluster.wait_received(
                    lambda r: r.get(symbol, {}).get("stop", 0) >= 2)
                states = [(await positions.get(i))["state"] for i in ids]
                while states != ["closed", "closed"]:  # the second close follows its stop
                    seen = _total(cluster)  # look again after the next event read back
                    await cluster.wait_received(lambda _, seen=seen: _total(cluster) > seen)
                    states = [(await positions.get(i))["state"] for i in ids]
            stops = await client.xrange(f"{params.prefix}:{symbol}:stop")
        summary = await cluster.summary()
    assert summary["workers"]["w0"]["exits"] == [-signal.SIGKILL]
    fired = [decode_entry(e.field_values) for e in stops]
    assert sorted(e.position_id for e in fired) == sorted(ids)  # each fired exactly once
    assert summary["consumer"]["received"][symbol]["stop"] == 2


def test_the_cli_runs_a_cluster_and_writes_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    code = main(["cluster", "--workers", "2", "--symbols", "BTCUSDT,ETHUSDT,BNBUSDT",
                 "--streams", "trade", "--duration", "4", "--summary", str(out)])  # fmt: skip
    summary = json.loads(out.read_text())
    assert code == 0, summary["verdict"]
    assert set(summary) >= {"workers", "consumer", "redis", "verdict"}
    assert set(summary["workers"]) == {"w0", "w1"}
    assert summary["redis"]["private"] is True
    assert summary["consumer"]["events"] > 0

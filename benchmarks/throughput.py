"""Throughput: frames per second through the whole gateway against a bare trio-websocket
receive-and-parse loop, on the same loopback feed, for 1, 10, 100 and 1000 symbols.

Run: ``python -m benchmarks throughput [--symbols 1,10,100,1000] [--rounds 5]
[--source feed|simulator] [--quick]``.

The feed runs in its own process (`benchmarks.feed_server`, the simulator's market
pre-rendered, so the sender is not the bottleneck; ``--source simulator`` uses
``gateway simulate --pacing max`` itself, which on a 2-core machine is sender-bound and
shown for reference). For each symbol count the rounds are interleaved (bare, gateway,
gateway, bare, ...), each on a fresh connection: a warm-up, then frames counted over a
fixed window. Medians are reported with their spread, and the gateway as a ratio of
the bare loop measured in the same run.

Feed shapes (``--feed``, default both): ``paced``, batches of 256 frames written back to
back; ``backlog``, every rendered frame (``--frames``) in one write per pass, the way a
socket's buffer fills after a network hiccup. Each figure is reported per feed.

The bare loop is our ceiling: ``await ws.get_message()`` + ``orjson.loads``, nothing
else, with the gateway's own trio-websocket options. The gateway is ``open_gateway``
with one ``@trade`` stream per symbol and an armed stop-loss per symbol that never fires:
decode to a typed event, route, symbol state (last price, stop-loss check, latency
record), publish (no subscriber by default;
``--subscriber`` adds one draining catch-all subscriber).

Peers: python-binance, when installed, consumes the same feed in its own process
(`benchmarks.peer_python_binance`; its socket manager's ``STREAM_URL`` instance attribute
points at the feed). cryptofeed is not measured: its endpoints are hard-coded and it
loads symbol data from the real REST API at start (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import trio
from trio_websocket import open_websocket_url

from benchmarks import harness
from gateway.api import open_gateway
from gateway.core.streams import chunk_for_control

_WS_OPTIONS: dict[str, Any] = {
    "message_queue_size": 256, "max_message_size": 8 * 2**20, "receive_buffer_size": 65536,
}  # fmt: skip  # the gateway's own Connection options
_SUBSCRIBE_PAUSE = 0.25  # the exchange allows 5 incoming messages a second


class _Counter:
    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames = 0


#: The feed server's pacing for each feed shape.
_PACING = {"paced": "max", "backlog": "backlog"}


async def _window(read: Callable[[], int], warmup: float, duration: float) -> float:
    """Frames per second counted by ``read`` over ``duration`` s after ``warmup`` s."""
    await trio.sleep(warmup)
    f0, t0 = read(), time.perf_counter()
    await trio.sleep(duration)
    return (read() - f0) / (time.perf_counter() - t0)


async def bare_round(url: str, streams: list[str], warmup: float, duration: float) -> float:
    """The ceiling: trio-websocket ``get_message`` + ``orjson.loads``, nothing else."""
    counter = _Counter()
    rate = 0.0
    with trio.fail_after(warmup + duration + 60):
        async with open_websocket_url(f"{url}/stream?timeUnit=MICROSECOND", **_WS_OPTIONS) as ws:
            for rid, chunk in enumerate(chunk_for_control(streams), start=1):
                req = {"method": "SUBSCRIBE", "params": chunk, "id": rid}
                await ws.send_message(orjson.dumps(req).decode())
                await trio.sleep(_SUBSCRIBE_PAUSE)

            async with trio.open_nursery() as nursery:

                async def receive() -> None:
                    get, loads = ws.get_message, orjson.loads
                    while True:
                        loads(await get())
                        counter.frames += 1

                nursery.start_soon(receive)
                rate = await _window(lambda: counter.frames, warmup, duration)
                nursery.cancel_scope.cancel()
    return rate


async def gateway_round(
    url: str, symbols: list[str], warmup: float, duration: float, subscriber: bool,
    batch: int = 0,
) -> float:
    """Frames per second through ``open_gateway`` (counted at the router)."""
    rate = 0.0
    with trio.fail_after(warmup + duration + 120):
        async with open_gateway(
            symbols=tuple(symbols), url=url, time_unit="MICROSECOND", streams=("trade",),
            **harness.STREAM_ONLY,
        ) as gw, trio.open_nursery() as nursery:  # fmt: skip
            for symbol in symbols:  # an armed stop per symbol, far below: it never fires
                gw.open_position(symbol, "LONG", 100.0, quantity=1.0, stop_price=0.0001)
            if subscriber:
                sub = gw.subscribe()

                async def drain() -> None:
                    if batch:  # many events per wake-up
                        while True:
                            await sub.receive_batch(batch)
                    async for _ in sub:
                        pass

                nursery.start_soon(drain)
            router = gw._router
            rate = await _window(lambda: router.frames, warmup, duration)
            nursery.cancel_scope.cancel()
    return rate


async def python_binance_round(
    url: str, streams: list[str], warmup: float, duration: float
) -> float:
    """The peer: python-binance's socket manager in its own (asyncio) process."""
    argv = [sys.executable, "-m", "benchmarks.peer_python_binance", url, str(warmup),
            str(duration), *streams]  # fmt: skip
    with trio.fail_after(warmup + duration + 90):
        proc = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"python-binance peer failed: {proc.stderr.decode()[-500:]}")
    return float(orjson.loads(proc.stdout.splitlines()[-1])["rate"])


def _python_binance_available() -> bool:
    return importlib.util.find_spec("binance") is not None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _peers() -> list[dict[str, Any]]:
    cryptofeed = {
        "name": "cryptofeed", "installed_version": _version("cryptofeed"), "status": "skipped",
        "reason": "not measured yet: it runs against the embedded exchange (a subclass with "
        "loopback endpoints, over TLS: tests/test_conformance_cryptofeed.py), but this "
        "benchmark's pre-rendered feed serves neither TLS nor REST",
    }  # fmt: skip
    version = _version("python-binance")
    binance = {
        "name": "python-binance", "installed_version": version,
        "status": "measured" if version else "skipped",
        "reason": "BinanceSocketManager.multiplex_socket, its STREAM_URL instance attribute "
        "pointed at the loopback feed; asyncio, in its own process"
        if version else "not installed (pip install python-binance to measure it)",
    }  # fmt: skip
    return [cryptofeed, binance]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every symbol count; returns the JSON-ready results."""
    machine = harness.machine_info()
    results: list[dict[str, Any]] = []
    feeds = args.feed or list(_PACING)
    if unknown := [f for f in feeds if f not in _PACING]:
        raise SystemExit(f"--feed: unknown feed shape(s) {unknown}; choose from {list(_PACING)}")
    cases_run = [(feed, n) for feed in (["simulator"] if args.source == "simulator" else feeds)
                 for n in args.symbols]  # fmt: skip
    for feed, n in cases_run:
        names = harness.symbol_names(n)
        streams = [f"{s.lower()}@trade" for s in names]
        if feed == "simulator":
            argv = harness.simulator_argv(names, rate=1000, seed=args.seed, pacing="max")
        else:
            argv = harness.feed_argv(n, pacing=_PACING[feed], rate=0, seed=args.seed,
                                     frames=args.frames)  # fmt: skip
        rates: dict[str, list[float]] = {"bare": [], "gateway": []}
        source_cpu: list[float] = []
        with harness.ServerProcess(argv) as server:
            cases: list[tuple[str, Callable[[], Awaitable[float]]]] = [
                ("bare", partial(bare_round, server.url, streams, args.warmup, args.duration)),
                ("gateway", partial(gateway_round, server.url, names, args.warmup,
                                    args.duration, args.subscriber or bool(args.subscriber_batch),
                                    args.subscriber_batch)),
            ]  # fmt: skip
            if _python_binance_available():
                rates["python-binance"] = []
                cases.append(("python-binance", partial(
                    python_binance_round, server.url, streams, args.warmup, args.duration,
                )))  # fmt: skip
            for round_no in range(args.rounds):
                for name, fn in cases if round_no % 2 == 0 else cases[::-1]:
                    c0, t0 = server.cpu_seconds(), time.perf_counter()
                    rates[name].append(trio.run(fn))
                    source_cpu.append((server.cpu_seconds() - c0) / (time.perf_counter() - t0))
                    print(f"  {feed:<8} {n:>5} symbols  round {round_no + 1}  {name:<8}"
                          f" {rates[name][-1]:>10,.0f} frames/s", flush=True)  # fmt: skip
        bare, gw = harness.spread(rates["bare"]), harness.spread(rates["gateway"])
        ratios = [g / b for g, b in zip(rates["gateway"], rates["bare"], strict=False) if b]
        results.append({
            "feed": feed, "symbols": n, "bare": {**bare, "values": rates["bare"]},
            "gateway": {**gw, "values": rates["gateway"]},
            "ratio_of_medians": gw["median"] / bare["median"] if bare["median"] else 0.0,
            "ratio_per_round": ratios,
            "source_cpu_share_median": statistics.median(source_cpu),
            "peers": {
                name: {**harness.spread(vals), "values": vals,
                       "ratio_of_medians": statistics.median(vals) / bare["median"]}
                for name, vals in rates.items() if name not in ("bare", "gateway") and vals
            },
        })  # fmt: skip
    return {
        "benchmark": "throughput",
        "params": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": harness.finish_machine_info(machine),
        "results": results,
        "peers": _peers(),
    }


def report(data: dict[str, Any]) -> str:
    """The terminal table."""
    rows = []
    for r in data["results"]:
        rows.append([
            r.get("feed", "paced"), r["symbols"], r["bare"]["median"], r["gateway"]["median"],
            f"{r['ratio_of_medians']:.2f}",
            f"{r['bare']['spread_pct']:.0f}% / {r['gateway']['spread_pct']:.0f}%",
            f"{100 * r['source_cpu_share_median']:.0f}%",
        ])  # fmt: skip
    out = [
        f"throughput, frames/s (median of {data['params']['rounds']} interleaved rounds; "
        f"source: {data['params']['source']})",
        harness.table(
            ["feed", "symbols", "bare loop", "gateway", "gateway/bare", "spread bare/gw",
             "sender CPU"],
            rows,
        ),
    ]
    res = data["results"]
    by_n = {r["symbols"]: r["gateway"]["median"] for r in res if r.get("feed") != "backlog"}
    if 10 in by_n and 1000 in by_n and by_n[10]:
        out.append(f"gateway 1000 vs 10 symbols: {by_n[1000] / by_n[10]:.2f}")
    for p in data["peers"]:
        out.append(f"peer {p['name']}: {p['status']} ({p['reason']})")
        for r in res:
            peer = r.get("peers", {}).get(p["name"])
            if peer:
                out.append(f"  {r.get('feed', 'paced'):<8} {r['symbols']:>5} symbols: "
                           f"{peer['median']:,.0f} frames/s, "
                           f"{peer['ratio_of_medians']:.2f} of the bare loop, gateway/peer "
                           f"{r['gateway']['median'] / peer['median']:.2f}")  # fmt: skip
    out.append(harness.machine_line(data["machine"]))
    return "\n".join(out)


def plot(data: dict[str, Any], path: Path) -> None:
    """Throughput versus symbol count per feed shape, bare and gateway, min-max bars."""
    plt = harness.pyplot()
    all_res = data["results"]
    xs = sorted({r["symbols"] for r in all_res})
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for feed in dict.fromkeys(r.get("feed", "paced") for r in all_res):
        res = [r for r in all_res if r.get("feed", "paced") == feed]
        fx = [r["symbols"] for r in res]
        for key, label in (("bare", "bare trio-websocket + orjson"), ("gateway", "gateway")):
            med = [r[key]["median"] for r in res]
            lo = [m - r[key]["min"] for m, r in zip(med, res, strict=False)]
            hi = [r[key]["max"] - m for m, r in zip(med, res, strict=False)]
            ax.errorbar(fx, med, yerr=[lo, hi], marker="o", capsize=4,
                        label=f"{label} ({feed})")  # fmt: skip
        peers = sorted({name for r in res for name in r.get("peers", {})})
        for name in peers:
            pts = [(r["symbols"], r["peers"][name]["median"]) for r in res if name in r["peers"]]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="s", linestyle="--",
                    label=f"peer: {name} ({feed})")  # fmt: skip
        for r in res:
            ax.annotate(f"{r['ratio_of_medians']:.0%}", (r["symbols"], r["gateway"]["median"]),
                        textcoords="offset points", xytext=(0, -16), ha="center")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("symbols (one @trade stream each)")
    ax.set_ylabel("frames per second")
    ax.set_title(f"Throughput (median, min-max of {data['params']['rounds']} rounds)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``throughput`` options."""
    add = parser.add_argument
    add("--symbols", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 100, 1000],
        help="comma-separated symbol counts (default 1,10,100,1000)")  # fmt: skip
    add("--rounds", type=int, default=5, help="interleaved rounds per case")
    add("--warmup", type=float, default=1.0, help="seconds before counting, per round")
    add("--duration", type=float, default=3.0, help="seconds counted per round")
    add("--source", choices=["feed", "simulator"], default="feed")
    add("--feed", type=lambda s: [x for x in s.split(",") if x], default=None,
        help="feed shapes, comma-separated: paced (batches of 256 frames back to back) and "
             "backlog (every rendered frame in one write per pass); default both")  # fmt: skip
    add("--frames", type=int, default=50_000, help="distinct frames the feed renders")
    add("--subscriber", action="store_true", help="add a draining catch-all subscriber")
    add("--subscriber-batch", type=int, default=0, metavar="N",
        help="the subscriber takes up to N events per wake-up (receive_batch); 0: one at a "
             "time (async for)")  # fmt: skip
    add("--seed", type=int, default=1)


def quick(args: argparse.Namespace) -> None:
    """Shrink ``args`` to the --quick run (well under 30 s)."""
    args.symbols, args.rounds, args.warmup, args.duration = [1, 10], 1, 0.3, 1.0
    if args.feed is None:
        args.feed = ["paced"]
    args.frames = 5000


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run, print, write JSON and PNG; returns the data."""
    logging.getLogger("gateway").setLevel(logging.WARNING)
    data = run(args)
    print(report(data))
    json_path = harness.write_json(args.out, "throughput", data)
    plot(data, args.out / "throughput.png")
    print(f"wrote {json_path} and {args.out / 'throughput.png'}")
    return data

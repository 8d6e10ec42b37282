"""Cluster: events per second from the exchange to a remote consumer through Redis
Streams with 1 and 2 workers, next to the single-process gateway; then latency to the
remote consumer at a fixed rate.

Run: ``python -m benchmarks cluster [--symbols 100] [--rounds 3] [--duration 5]
[--latency-rate 20000] [--quick]``.

The exchange is the pre-rendered feed (`benchmarks.feed_server`, its own process, trade
frames with the send time patched in) and Redis a private ``redis-server``, both shared
by every round. Contenders, in interleaved rounds on a fresh feed connection each:

- ``single``: one gateway in this process with one catch-all subscriber counting events
  (no Redis): the in-process ceiling;
- ``cluster-1``, ``cluster-2``: `gateway.cluster.parent.open_cluster` with 1 or 2 worker
  processes publishing to Redis; the events/s are those the cluster's checking consumer
  (a remote consumer in this process, decoding every entry, one task) read back, and
  beside them the entries/s the workers published.

Latency: the feed paced at ``--latency-rate`` trades/s, 2 workers, and one remote
consumer (no checking consumer beside it) recording, per event, now minus the worker's
receive time (``rns``) and minus the exchange's event time (``E``, ms). Targets (issue
17): 2 workers >= 1.6x one worker; remote p99 < 5 ms. All processes share this
machine's cores; the summary says how many.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import trio

from benchmarks import harness
from gateway.api import open_gateway
from gateway.cluster.consumer import open_remote_feed
from gateway.cluster.parent import Cluster, ClusterParams, open_cluster
from gateway.cluster.redis_server import PrivateRedis

CONTENDERS = ("single", "cluster-1", "cluster-2")


def _published(figures: dict[str, dict[str, str]]) -> int:
    return sum(int(f.get("published", 0)) for f in figures.values())


async def single_round(
    url: str, names: list[str], warmup: float, duration: float
) -> dict[str, float]:
    """One in-process gateway and a catch-all subscriber: events/s it takes."""
    count = [0]
    options: dict[str, Any] = {"url": url, "streams": ("trade",), **harness.STREAM_ONLY}
    async with open_gateway(symbols=tuple(names), **options) as gw, trio.open_nursery() as nursery:
        sub = gw.subscribe()

        async def drain() -> None:
            async for _ in sub:
                count[0] += 1

        nursery.start_soon(drain)
        await trio.sleep(warmup)
        c0, t0 = count[0], time.perf_counter()
        await trio.sleep(duration)
        rate = (count[0] - c0) / (time.perf_counter() - t0)
        nursery.cancel_scope.cancel()
    return {"received": rate, "published": rate}


def _params(
    url: str, redis_url: str, names: list[str], workers: int, prefix: str
) -> ClusterParams:
    return ClusterParams(workers=workers, symbols=tuple(names), streams=("trade",),
                         redis_url=redis_url, url=url, rest_url="", prefix=prefix,
                         maxlen=200_000)  # fmt: skip


async def cluster_round(
    url: str, redis_url: str, names: list[str], workers: int, warmup: float, duration: float,
    prefix: str,
) -> dict[str, float]:  # fmt: skip
    """``workers`` worker processes: events/s read back by the remote consumer, and
    entries/s the workers published."""
    async with open_cluster(_params(url, redis_url, names, workers, prefix)) as cluster:
        await trio.sleep(warmup)
        p0 = _published(await cluster.worker_figures())
        r0, t0 = _total(cluster), time.perf_counter()
        await trio.sleep(duration)
        r1, t1 = _total(cluster), time.perf_counter()
        p1 = _published(await cluster.worker_figures())
    return {"received": (r1 - r0) / (t1 - t0), "published": (p1 - p0) / (t1 - t0)}


def _total(cluster: Cluster) -> int:
    return sum(sum(k.values()) for k in cluster.received.values())


async def latency_round(url: str, redis_url: str, names: list[str], warmup: float,
                        duration: float, prefix: str) -> dict[str, Any]:  # fmt: skip
    """2 workers on a paced feed; a remote consumer's latency per event."""
    from_receive, from_event = harness.new_hdr(), harness.new_hdr()
    params = _params(url, redis_url, names, 2, prefix)
    async with open_cluster(params, consume=False), open_remote_feed(
        redis_url, names, ["trade"], prefix=prefix, start="$",
    ) as feed:  # fmt: skip
        count = 0
        with trio.move_on_after(warmup + duration):
            t_measure = trio.current_time() + warmup
            async for event in feed:
                if trio.current_time() < t_measure:
                    continue
                now = time.time_ns()
                from_receive.record_value(max(1, now - event.receive_ns))
                from_event.record_value(max(1, now - event.event_time * 1_000_000))
                count += 1
    return {"events": count, "rate": count / duration,
            "receive_to_remote_us": harness.hdr_summary(from_receive),
            "event_to_remote_us": harness.hdr_summary(from_event)}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The throughput rounds, then the latency run; JSON-ready results."""
    machine = harness.machine_info()
    names = harness.symbol_names(args.symbols)
    server = PrivateRedis()
    trio.run(server.start)
    rates: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS}
    try:
        argv = harness.feed_argv(args.symbols, pacing="max", rate=0, seed=1, frames=args.frames)
        with harness.ServerProcess(argv) as feed:
            cases: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
                ("single", partial(single_round, feed.url, names, args.warmup, args.duration)),
            ]
            for workers in (1, 2):
                cases.append((f"cluster-{workers}", partial(
                    cluster_round, feed.url, server.url, names, workers, args.warmup,
                    args.duration, f"bench{workers}")))  # fmt: skip
            for round_no in range(args.rounds):
                for name, fn in cases if round_no % 2 == 0 else cases[::-1]:
                    rates[name].append(trio.run(fn))
                    r = rates[name][-1]
                    print(f"  round {round_no + 1}  {name:<10} received {r['received']:>9,.0f}/s"
                          f"  published {r['published']:>9,.0f}/s", flush=True)  # fmt: skip
        latency: dict[str, Any] | None = None
        if args.latency_rate:
            argv = harness.feed_argv(args.symbols, pacing="rate", rate=args.latency_rate,
                                     seed=1, frames=args.frames)  # fmt: skip
            with harness.ServerProcess(argv) as feed:
                latency = trio.run(latency_round, feed.url, server.url, names, args.warmup,
                                   args.latency_duration, "latency")  # fmt: skip
    finally:
        trio.run(server.stop)
        server.cleanup()
    med = {c: {k: statistics.median(r[k] for r in rates[c]) for k in ("received", "published")}
           for c in CONTENDERS}  # fmt: skip
    one, two = med["cluster-1"]["received"], med["cluster-2"]["received"]
    targets = [
        {"target": "2 workers / 1 worker (events to the remote consumer)",
         "measured": two / one if one else 0.0, "goal": ">= 1.60",
         "met": bool(one) and two / one >= 1.6},
    ]  # fmt: skip
    if latency and latency["receive_to_remote_us"].get("count"):
        p99 = latency["event_to_remote_us"]["p99"]
        targets.append({"target": "exchange event -> remote consumer p99 (us)",
                        "measured": p99, "goal": "< 5000", "met": p99 < 5000})  # fmt: skip
    return {
        "benchmark": "cluster",
        "params": {k: v for k, v in vars(args).items() if k != "func"},
        "rounds": rates, "medians": med, "latency": latency, "targets": targets,
        "machine": harness.finish_machine_info(machine),
    }


def report(data: dict[str, Any]) -> str:
    """The terminal tables."""
    med = data["medians"]
    base = med["single"]["received"]
    rows = [[c, f"{med[c]['received']:,.0f}", f"{med[c]['published']:,.0f}",
             f"{med[c]['received'] / base:.2f}" if base else "-"] for c in CONTENDERS]  # fmt: skip
    out = [f"cluster throughput, events/s (median of {data['params']['rounds']} interleaved "
           f"rounds, {data['params']['symbols']} symbols)",
           harness.table(["contender", "to the remote consumer", "published", "of single"],
                         rows)]  # fmt: skip
    if lat := data.get("latency"):
        out.append(f"latency at {lat['rate']:,.0f} events/s to the remote consumer (us):")
        out.append(harness.table(
            ["from", "p50", "p90", "p99", "p99.9", "max"],
            [[name, *(f"{lat[key].get(p, 0):,.0f}" for p in ("p50", "p90", "p99", "p99.9",
                                                              "max"))]
             for name, key in (("worker receive", "receive_to_remote_us"),
                               ("exchange event (ms clock)", "event_to_remote_us"))]))  # fmt: skip
    out.append(harness.table(["target", "measured", "goal", "met"],
                             [[t["target"], f"{t['measured']:.2f}", t["goal"],
                               "yes" if t["met"] else "NO"] for t in data["targets"]]))  # fmt: skip
    out.append(harness.machine_line(data["machine"]))
    return "\n".join(out)


def plot(data: dict[str, Any], path: Path) -> None:
    """Bars: events/s to the remote consumer and published, per contender."""
    plt = harness.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    med = data["medians"]
    xs = range(len(CONTENDERS))
    ax.bar([x - 0.2 for x in xs], [med[c]["received"] for c in CONTENDERS], 0.4,
           label="to the remote consumer")  # fmt: skip
    ax.bar([x + 0.2 for x in xs], [med[c]["published"] for c in CONTENDERS], 0.4,
           label="published (in-process: taken)")  # fmt: skip
    ax.set_xticks(list(xs), list(CONTENDERS))
    ax.set_ylabel("events per second")
    ax.set_title(f"Cluster, {data['params']['symbols']} symbols "
                 f"(median of {data['params']['rounds']} rounds)")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cluster`` options."""
    add = parser.add_argument
    add("--symbols", type=int, default=100, help="symbols, one trade stream each")
    add("--rounds", type=int, default=3, help="interleaved rounds per contender")
    add("--warmup", type=float, default=3.0, help="seconds before counting, per round")
    add("--duration", type=float, default=5.0, help="seconds counted per round")
    add("--frames", type=int, default=50_000, help="distinct frames the feed renders")
    add("--latency-rate", type=float, default=20_000.0,
        help="trades/s of the latency run (0: skip)")
    add("--latency-duration", type=float, default=10.0, help="seconds of the latency run")


def quick(args: argparse.Namespace) -> None:
    """Shrink ``args`` to the --quick run."""
    args.symbols, args.rounds, args.warmup, args.duration = 10, 1, 1.5, 1.5
    args.frames, args.latency_rate, args.latency_duration = 5_000, 2_000.0, 2.0


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run, print, write the JSON; returns the data."""
    logging.getLogger("gateway").setLevel(logging.ERROR)
    data = run(args)
    print(report(data))
    path = harness.write_json(args.out, "cluster", data)
    plot(data, args.out / "cluster.png")
    print(f"wrote {path} and {args.out / 'cluster.png'}")
    return data

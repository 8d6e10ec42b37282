"""Throughput: frames per second through the whole gateway against a bare trio-websocket
receive-and-parse loop, on the same loopback feed, for 1, 10, 100 and 1000 symbols.

Run: ``python -m benchmarks throughput [--symbols 1,10,100,1000] [--rounds 5]
[--feed paced,backlog,recorded] [--connections 1,2,4] [--source feed|simulator]
[--quick]``.

The feed runs in its own process (`benchmarks.feed_server`, frames pre-rendered, so the
sender is not the bottleneck; ``--source simulator`` uses ``gateway simulate --pacing
max`` itself, which on a 2-core machine is sender-bound and shown for reference). For
each case the rounds are interleaved (bare, gateway, gateway with a subscriber,
python-binance, then the reverse order), each on a fresh connection: a warm-up, then
frames counted over a fixed window. Medians are reported with their spread, and every
contender as a ratio of the bare loop measured in the same run.

Feed shapes (``--feed``, default all three), each reported on its own: ``paced``,
batches of 256 trade frames written back to back; ``backlog``, every rendered frame
(``--frames``) in one write per pass, the way a socket's buffer fills after a network
hiccup; ``recorded``, the real Binance recordings (depth diffs, book tickers, klines,
aggregate trades) looped over the symbols with their ids rewritten
(`benchmarks.recorded_feed`). The feed serves each connection only the streams it
subscribed to, so at 100 symbols and more the same frames are also measured over 2 and
4 connections (``--connections``) in one process: the bare loop then runs one task per
connection, the gateway shards its streams as it does for any connection limit.

The bare loop is the issue's baseline: ``await ws.get_message()`` + ``orjson.loads``,
nothing else, with the gateway's own trio-websocket options. A second bare loop, ``bare,
own conn``, does the same over the gateway's connection class (whose reader queues whole
frames without a scheduler pass each, taken ``RECEIVE_BURST`` at a time): the ceiling of
the gateway's own transport, so ``gateway/own`` is what the gateway's work leaves of it.
The gateway is ``open_gateway`` with the feed's streams for each symbol and an armed
stop-loss per symbol that never fires: decode to a typed event, route, symbol state
(sequence, last price, stop-loss check, latency record), publish to nobody, or (the
``with subscriber`` rounds) to one draining catch-all subscriber.

After the throughput cases: the decode ratio (`decode_frame` of a trade frame against
``orjson.loads`` of it, CPU time, interleaved rounds) and the latency run of
`benchmarks.latency` at 20,000 trades/s over 100 symbols; then every target of issue 16
with its same-run baseline and whether it is met.

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
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from benchmarks import harness, latency
from benchmarks.recorded_feed import KINDS
from gateway.api import open_gateway
from gateway.core.codec import decode_frame
from gateway.core.streams import chunk_for_control
from gateway.runtime.connection import RECEIVE_BURST
from gateway.runtime.websocket import open_websocket

_WS_OPTIONS: dict[str, Any] = {
    "message_queue_size": 256, "max_message_size": 8 * 2**20, "receive_buffer_size": 65536,
}  # fmt: skip  # the gateway's own Connection options
_SUBSCRIBE_PAUSE = 0.25  # the exchange allows 5 incoming messages a second


class _Counter:
    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames = 0


#: The feed server's pacing for each feed shape (``recorded``: the real recordings).
_PACING = {"paced": "max", "backlog": "backlog", "recorded": "max"}
#: The streams each symbol subscribes to, per feed shape (default: trade).
_STREAMS = {"recorded": KINDS}


async def _window(read: Callable[[], int], warmup: float, duration: float) -> float:
    """Frames per second counted by ``read`` over ``duration`` s after ``warmup`` s."""
    await trio.sleep(warmup)
    f0, t0 = read(), time.perf_counter()
    await trio.sleep(duration)
    return (read() - f0) / (time.perf_counter() - t0)


@asynccontextmanager
async def _bare_socket(url: str, own: bool) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket to the feed: trio-websocket's own, or (``own``) the gateway's connection
    class (`gateway.runtime.websocket.open_websocket`), with the same options."""
    resource = "/stream?timeUnit=MICROSECOND"
    if not own:
        async with open_websocket_url(f"{url}{resource}", **_WS_OPTIONS) as ws:
            yield ws
        return
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        ws = await open_websocket(nursery, stream, parts.hostname, resource, None)
        try:
            yield ws
        finally:
            nursery.cancel_scope.cancel()
            await stream.aclose()


async def bare_round(
    url: str, streams: list[str], warmup: float, duration: float, connections: int = 1,
    own: bool = False,
) -> float:  # fmt: skip
    """The ceiling: trio-websocket ``get_message`` + ``orjson.loads``, nothing else; over
    ``connections`` sockets, each with its share of the streams (as the gateway shards).
    ``own``: over the gateway's connection class, taking queued frames as the gateway
    does (`get_message_nowait`, up to `RECEIVE_BURST` a wake-up)."""
    counter = _Counter()
    rate = 0.0
    share = -(-len(streams) // connections)
    shards = [streams[i:i + share] for i in range(0, len(streams), share)]

    async def receive(shard: list[str], task_status: trio.TaskStatus[None]) -> None:
        async with _bare_socket(url, own) as ws:
            for rid, chunk in enumerate(chunk_for_control(shard), start=1):
                req = {"method": "SUBSCRIBE", "params": chunk, "id": rid}
                await ws.send_message(orjson.dumps(req).decode())
                await trio.sleep(_SUBSCRIBE_PAUSE)
            task_status.started()
            get, loads = ws.get_message, orjson.loads
            if not own:
                while True:
                    loads(await get())
                    counter.frames += 1
            take = ws.get_message_nowait  # type: ignore[attr-defined]
            while True:
                loads(await get())
                counter.frames += 1
                for _ in range(RECEIVE_BURST - 1):
                    try:
                        loads(take())
                    except trio.WouldBlock:
                        break
                    counter.frames += 1

    with trio.fail_after(warmup + duration + 60):
        async with trio.open_nursery() as nursery:
            for shard in shards:
                await nursery.start(receive, shard)
            rate = await _window(lambda: counter.frames, warmup, duration)
            nursery.cancel_scope.cancel()
    return rate


async def gateway_round(
    url: str, symbols: list[str], warmup: float, duration: float, subscriber: bool,
    batch: int = 0, *, streams: tuple[str, ...] = ("trade",), connections: int = 1,
) -> float:
    """Frames per second through ``open_gateway`` (counted at the router), its streams
    spread over ``connections`` connections."""
    rate = 0.0
    with trio.fail_after(warmup + duration + 120):
        async with open_gateway(
            symbols=tuple(symbols), url=url, time_unit="MICROSECOND", streams=streams,
            max_streams_per_connection=-(-len(symbols) * len(streams) // connections),
            **harness.STREAM_ONLY,
        ) as gw, trio.open_nursery() as nursery:  # fmt: skip
            # An armed stop per symbol that never fires: below any price the exchange lists
            # (its smallest tick is 1e-8; the recordings have prices near 1e-6).
            for symbol in symbols:
                gw.open_position(symbol, "LONG", 100.0, quantity=1.0, stop_price=1e-12)
            taken = [0]
            sub: Any = None
            if subscriber:
                sub = gw.subscribe()

                async def drain() -> None:
                    if batch:  # many events per wake-up
                        while True:
                            taken[0] += len(await sub.receive_batch(batch))
                    async for _ in sub:
                        taken[0] += 1

                nursery.start_soon(drain)
            router = gw._router
            await trio.sleep(warmup)
            f0, d0, k0, t0 = router.frames, _dropped(sub), taken[0], time.perf_counter()
            await trio.sleep(duration)
            f1, d1, k1, t1 = router.frames, _dropped(sub), taken[0], time.perf_counter()
            rate = (f1 - f0) / (t1 - t0)
            if sub is not None and d1 > d0:  # only the frames whose events all arrived count
                rate *= (k1 - k0) / ((k1 - k0) + (d1 - d0))
                print(f"  the subscriber missed {d1 - d0:,} of {(k1 - k0) + (d1 - d0):,} "
                      "events: the rate counts the delivered share", flush=True)  # fmt: skip
            nursery.cancel_scope.cancel()
    return rate


def _dropped(sub: Any) -> int:
    """Events ``sub`` missed (a latest-value event replaced by a newer one is not one)."""
    return int(sub.dropped - sub.conflated) if sub is not None else 0


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


def _feed_argv(feed: str, n: int, names: list[str], args: argparse.Namespace) -> list[str]:
    if feed == "simulator":
        return harness.simulator_argv(names, rate=1000, seed=args.seed, pacing="max")
    argv = harness.feed_argv(n, pacing=_PACING[feed], rate=0, seed=args.seed,
                             frames=args.frames)  # fmt: skip
    if feed != "recorded":
        return argv
    # Enough frames that every symbol gets traffic (each pass over the recordings feeds
    # about 30 symbols), then the real frames looped over them.
    frames = max(args.frames, 100 * n)
    return [*argv[: argv.index("--frames") + 1], str(frames), "--frames-from", "recorded"]


def _measure_case(feed: str, n: int, conns: int, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved rounds of every contender on one feed shape, symbol count and number
    of connections; the JSON-ready result."""
    names = harness.symbol_names(n)
    suffixes = _STREAMS.get(feed, ("trade",))
    streams = [f"{s.lower()}@{suffix}" for s in names for suffix in suffixes]
    rates: dict[str, list[float]] = {"bare": [], "bare-own": [], "gateway": []}
    source_cpu: list[float] = []
    failures: list[str] = []
    with harness.ServerProcess(_feed_argv(feed, n, names, args)) as server:
        gateway = partial(gateway_round, server.url, names, args.warmup, args.duration,
                          streams=suffixes, connections=conns)  # fmt: skip
        cases: list[tuple[str, Callable[[], Awaitable[float]]]] = [
            ("bare", partial(bare_round, server.url, streams, args.warmup, args.duration,
                             conns)),
            ("bare-own", partial(bare_round, server.url, streams, args.warmup, args.duration,
                                 conns, own=True)),
            ("gateway", partial(gateway, False)),
        ]  # fmt: skip
        if args.subscriber:
            rates["gateway+subscriber"] = []
            cases.append(("gateway+subscriber", partial(gateway, True, args.subscriber_batch)))
        # python-binance names every stream in its URL: past the exchange's 1024 streams a
        # connection, that URL is too long for an HTTP request line (the feed refuses it).
        if _python_binance_available() and conns == 1 and args.peers and len(streams) <= 1024:
            rates["python-binance"] = []
            cases.append(("python-binance", partial(
                python_binance_round, server.url, streams, args.warmup, args.duration,
            )))  # fmt: skip
        for round_no in range(args.rounds):
            for name, fn in cases if round_no % 2 == 0 else cases[::-1]:
                c0, t0 = server.cpu_seconds(), time.perf_counter()
                try:
                    rates[name].append(trio.run(fn))
                except RuntimeError as exc:  # a peer that failed: reported, the run goes on
                    if name != "python-binance":
                        raise
                    failures.append(f"{name}: {exc}"[:300])
                    cases = [c for c in cases if c[0] != name]  # not in the next rounds
                    continue
                source_cpu.append((server.cpu_seconds() - c0) / (time.perf_counter() - t0))
                print(f"  {feed:<8} {n:>5} symbols {conns} conn  round {round_no + 1}  "
                      f"{name:<18} {rates[name][-1]:>10,.0f} frames/s", flush=True)  # fmt: skip
    bare, gw = harness.spread(rates["bare"]), harness.spread(rates["gateway"])
    ratios = [g / b for g, b in zip(rates["gateway"], rates["bare"], strict=False) if b]
    return {
        "feed": feed, "symbols": n, "connections": conns,
        "bare": {**bare, "values": rates["bare"]}, "gateway": {**gw, "values": rates["gateway"]},
        "ratio_of_medians": gw["median"] / bare["median"] if bare["median"] else 0.0,
        "ratio_per_round": ratios,
        "source_cpu_share_median": statistics.median(source_cpu),
        "failures": failures,
        "peers": {
            name: {**harness.spread(vals), "values": vals,
                   "ratio_of_medians": statistics.median(vals) / bare["median"]}
            for name, vals in rates.items() if name not in ("bare", "gateway") and vals
        },
    }  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure every feed shape, symbol count and connection count; then the decode and
    latency targets. Returns the JSON-ready results."""
    machine = harness.machine_info()
    feeds = args.feed or list(_PACING)
    if unknown := [f for f in feeds if f not in _PACING]:
        raise SystemExit(f"--feed: unknown feed shape(s) {unknown}; choose from {list(_PACING)}")
    results = [
        _measure_case(feed, n, conns, args)
        for feed in (["simulator"] if args.source == "simulator" else feeds)
        for n in args.symbols
        for conns in ([1] + [c for c in args.connections if c > 1 and n >= 100])
    ]  # fmt: skip
    data: dict[str, Any] = {
        "benchmark": "throughput",
        "params": {k: v for k, v in vars(args).items() if k != "func"},
        "results": results,
        "decode": _decode_ratio(args.decode_rounds) if args.decode_rounds else None,
        "latency": _latency(args) if args.latency_duration else None,
        "peers": _peers(),
    }
    data["targets"] = targets(data)
    data["machine"] = harness.finish_machine_info(machine)
    return data


def _decode_ratio(rounds: int, number: int = 20_000) -> dict[str, Any]:
    """Decode of a trade frame against ``orjson.loads`` of the same frame, CPU time per
    call, rounds interleaved (each first in turn); the median ratio and its range."""
    frame = orjson.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": 1_767_225_600_000_123, "s": "BTCUSDT", "t": 4_123_456_789,
        "p": "94231.17000000", "q": "0.00125000", "T": 1_767_225_600_000_101, "m": True,
        "M": True}}).decode()  # fmt: skip
    ratios, bare, ours = [], [], []
    pair: list[tuple[str, Callable[[], object]]] = [
        ("bare", lambda: orjson.loads(frame)), ("decode", lambda: decode_frame(frame, 1))]
    for i in range(rounds):
        timed = {name: harness.per_call_ns(fn, number)
                 for name, fn in (pair if i % 2 == 0 else pair[::-1])}  # fmt: skip
        bare.append(timed["bare"])
        ours.append(timed["decode"])
        ratios.append(timed["decode"] / timed["bare"])
    return {"frame_bytes": len(frame), "orjson_loads_ns": statistics.median(bare),
            "decode_ns": statistics.median(ours), "ratio": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)], "rounds": rounds}  # fmt: skip


def _latency(args: argparse.Namespace) -> dict[str, Any]:
    """The latency benchmark's measurement at 20,000 trades/s over 100 symbols on the
    pre-rendered feed: receive -> handled percentiles (`benchmarks.latency`)."""
    ns = argparse.Namespace(symbols=100, rate=20_000.0, duration=args.latency_duration,
                            warmup=2.0, streams="trade", seed=args.seed, source="feed",
                            subscriber_buffer=10_000)  # fmt: skip
    data = latency.run(ns)
    overall = data["latency_us"]["overall"]
    return {"rate": ns.rate, "symbols": ns.symbols, "achieved": data["achieved"],
            "drops": data["drops"], "receive_to_handled_us": overall["receive_to_handled"],
            "receive_to_subscriber_us": overall["receive_to_subscriber"]}  # fmt: skip


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's targets, each with what was measured, its same-run baseline and whether
    it is met."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: float, baseline: str, goal: str, met: bool) -> None:
        out.append({"target": name, "measured": measured, "baseline": baseline,
                    "goal": goal, "met": met})  # fmt: skip

    for r in data["results"]:
        if r["connections"] != 1:
            continue
        feed, n, bare = r["feed"], r["symbols"], r["bare"]["median"]
        base = f"bare loop {bare:,.0f}/s"
        goal = {100: 0.80, 1000: 0.75}.get(n)
        if goal is not None:
            add(f"{feed} {n} symbols: gateway / bare", r["ratio_of_medians"], base,
                f">= {goal:.2f}", r["ratio_of_medians"] >= goal)  # fmt: skip
        sub = r["peers"].get("gateway+subscriber")
        if sub and n == 100:
            add(f"{feed} {n} symbols: gateway with a subscriber / bare",
                sub["ratio_of_medians"], base, ">= 0.70", sub["ratio_of_medians"] >= 0.70)
        peer = r["peers"].get("python-binance")
        if peer:
            lead = r["gateway"]["median"] / peer["median"] if peer["median"] else 0.0
            add(f"{feed} {n} symbols: gateway / python-binance", lead,
                f"python-binance {peer['median']:,.0f}/s", ">= 1.30", lead >= 1.30)
    if dec := data.get("decode"):
        add("decode of a trade / orjson.loads", dec["ratio"],
            f"orjson.loads {dec['orjson_loads_ns']:.0f} ns", "<= 2.00", dec["ratio"] <= 2.0)
    if lat := data.get("latency"):
        handled = lat["receive_to_handled_us"]
        rate = f"at {lat['achieved']['frames_per_s']:,.0f} frames/s"
        add("receive -> handled p99 (us)", handled.get("p99", 0.0), rate, "< 1000",
            0 < handled.get("p99", 0.0) < 1000)
        add("receive -> handled p99.9 (us)", handled.get("p99.9", 0.0), rate, "< 5000",
            0 < handled.get("p99.9", 0.0) < 5000)
    return out


def report(data: dict[str, Any]) -> str:
    """The terminal table, then the targets."""
    rows = []
    for r in data["results"]:
        sub = r["peers"].get("gateway+subscriber")
        own = r["peers"].get("bare-own")
        rows.append([
            r.get("feed", "paced"), r["symbols"], r.get("connections", 1), r["bare"]["median"],
            r["gateway"]["median"], f"{r['ratio_of_medians']:.2f}",
            f"{sub['ratio_of_medians']:.2f}" if sub else "-",
            f"{own['median']:,.0f}" if own else "-",
            f"{r['gateway']['median'] / own['median']:.2f}" if own and own["median"] else "-",
            f"{r['bare']['spread_pct']:.0f}% / {r['gateway']['spread_pct']:.0f}%",
            f"{100 * r['source_cpu_share_median']:.0f}%",
        ])  # fmt: skip
    out = [
        f"throughput, frames/s (median of {data['params']['rounds']} interleaved rounds; "
        f"source: {data['params']['source']})",
        harness.table(
            ["feed", "symbols", "conns", "bare loop", "gateway", "gateway/bare",
             "with subscriber/bare", "bare, own conn", "gateway/own", "spread bare/gw",
             "sender CPU"],
            rows,
        ),
    ]  # fmt: skip
    res = data["results"]
    for feed in dict.fromkeys(r.get("feed", "paced") for r in res):
        by_n = {r["symbols"]: r["gateway"]["median"] for r in res
                if r.get("feed", "paced") == feed and r.get("connections", 1) == 1}  # fmt: skip
        if 10 in by_n and 1000 in by_n and by_n[10]:
            out.append(f"{feed}: gateway 1000 vs 10 symbols {by_n[1000] / by_n[10]:.2f}")
    for r in res:
        for failure in r.get("failures", ()):
            out.append(f"{r['feed']} {r['symbols']} symbols: a peer failed: {failure}")
    for p in data["peers"]:
        out.append(f"peer {p['name']}: {p['status']} ({p['reason']})")
        for r in res:
            peer = r.get("peers", {}).get(p["name"])
            if peer:
                out.append(f"  {r.get('feed', 'paced'):<8} {r['symbols']:>5} symbols: "
                           f"{peer['median']:,.0f} frames/s, "
                           f"{peer['ratio_of_medians']:.2f} of the bare loop, gateway/peer "
                           f"{r['gateway']['median'] / peer['median']:.2f}")  # fmt: skip
    if data.get("targets"):
        out.append("targets (issue 16; same-run baselines):")
        out.append(harness.table(
            ["target", "measured", "goal", "baseline", "met"],
            [[t["target"], f"{t['measured']:.2f}", t["goal"], t["baseline"],
              "yes" if t["met"] else "NO"] for t in data["targets"]],
        ))  # fmt: skip
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
        help="feed shapes, comma-separated: paced (batches of 256 trade frames back to "
             "back), backlog (every rendered frame in one write per pass) and recorded "
             "(the real recordings looped, ids rewritten); default all three")  # fmt: skip
    add("--frames", type=int, default=50_000, help="distinct frames the feed renders")
    add("--connections", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4],
        help="connection counts measured at 100 symbols and more (default 1,2,4)")
    add("--no-subscriber", dest="subscriber", action="store_false",
        help="skip the rounds with a draining catch-all subscriber")
    add("--subscriber-batch", type=int, default=0, metavar="N",
        help="the subscriber takes up to N events per wake-up (receive_batch); 0: one at a "
             "time (async for)")  # fmt: skip
    add("--no-peers", dest="peers", action="store_false", help="skip python-binance")
    add("--decode-rounds", type=int, default=15, help="rounds of the decode ratio (0: skip)")
    add("--latency-duration", type=float, default=10.0,
        help="seconds of the latency target's run at 20,000 trades/s (0: skip)")
    add("--seed", type=int, default=1)


def quick(args: argparse.Namespace) -> None:
    """Shrink ``args`` to the --quick run (well under 30 s)."""
    args.symbols, args.rounds, args.warmup, args.duration = [1, 10], 1, 0.3, 1.0
    if args.feed is None:
        args.feed = ["paced"]
    args.frames, args.decode_rounds, args.latency_duration, args.peers = 5000, 3, 0.0, False


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run, print, write JSON and PNG; returns the data."""
    logging.getLogger("gateway").setLevel(logging.WARNING)
    data = run(args)
    print(report(data))
    json_path = harness.write_json(args.out, "throughput", data)
    plot(data, args.out / "throughput.png")
    print(f"wrote {json_path} and {args.out / 'throughput.png'}")
    return data

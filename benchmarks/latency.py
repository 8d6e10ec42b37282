"""Latency: per symbol and overall percentiles at a fixed total rate, from the exchange's
event time to a subscriber's channel.

Run: ``python -m benchmarks latency [--symbols 100] [--rate 20000] [--duration 25]
[--streams trade] [--seed 1] [--source simulator|feed] [--quick]``.

The exchange runs in its own process: ``gateway simulate`` (``--source simulator``, the
default) at ``--rate`` trades per second in total with microsecond event times, or the
pre-rendered feed (``--source feed``, `benchmarks.feed_server`), which paces the
simulator's trades at the rate for a fraction of the CPU (the simulator cannot generate
much more than 15-20k trades/s on a 2-core machine that also runs the gateway). The
gateway connects with ``time_unit=MICROSECOND``, opens a LONG position per symbol whose
stop (0.01) never fires, and one subscriber task takes every trade and records
``time.time_ns() - event.receive_ns`` on receipt. After ``--warmup`` seconds every
recorder is reset; then ``--duration`` seconds are measured.

Figures (HDR histograms, p50 / p90 / p99 / p99.9 / max, µs):

(a) exchange_to_receive: event time (µs, from the exchange's wall clock; same host) to
    the frame's receive time. Includes the sender's batching: the simulator stamps a
    whole 5 ms burst with one time.
(b) receive_to_handled: frame receive time to the end of the symbol's handler.
(c) receive_to_stop_decision: frame receive time to the moment the stop-loss check of
    that trade is done (the gateway records it on every trade; each symbol here has an
    armed position that never fires).
(d) receive_to_subscriber: frame receive time to the subscriber task having the event.

Also: achieved rate, drops (symbol mailboxes, the subscriber's channel, malformed
frames, reconnects), CPU of the gateway process (process_time, getrusage) and of the
exchange process (/proc).
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from benchmarks import harness
from gateway.api import Gateway, open_gateway
from gateway.core.events import Trade
from gateway.core.latency import LatencyRecorder

METRICS = ("exchange_to_receive", "receive_to_handled", "receive_to_stop_decision",
           "receive_to_subscriber")  # fmt: skip
_TARGET_P99_US = 1000.0
_TARGET_P999_US = 5000.0


def source_argv(args: argparse.Namespace, names: list[str], rate: float) -> list[str]:
    """The exchange process for ``args.source``."""
    if args.source == "feed":
        return harness.feed_argv(len(names), pacing="rate", rate=rate, seed=args.seed,
                                 frames=max(5000, min(200_000, int(rate * 2))))  # fmt: skip
    return harness.simulator_argv(names, rate=rate, seed=args.seed)


class Probe:
    """The measuring side inside the gateway process: positions, a subscriber, counters."""

    def __init__(self, gw: Gateway, symbols: list[str], buffer: int) -> None:
        self.gw = gw
        self.symbols = symbols
        self.states = [gw._state(s) for s in symbols]
        self.sub_latency = {s: LatencyRecorder() for s in symbols}
        self.sub = gw.subscribe(kinds=Trade, buffer=buffer)
        self.received = 0
        for s in symbols:  # a LONG whose stop never fires: the check runs on every trade
            gw.open_position(s, "LONG", 100.0, quantity=1.0, stop_price=0.01)

    async def subscriber(self) -> None:
        """Record receive-to-subscriber latency of every trade, on receipt."""
        recs, now = self.sub_latency, time.time_ns
        async for ev in self.sub:
            recs[ev.symbol].record(now() - ev.receive_ns)
            self.received += 1

    def reset(self) -> None:
        """Forget every latency value so far (the warm-up)."""
        for st in self.states:
            st.latency.exchange.reset()
            st.latency.handled.reset()
            st.latency.stop.reset()
        for rec in self.sub_latency.values():
            rec.reset()

    def counters(self) -> dict[str, int]:
        """Counters to difference over the measured window."""
        gw = self.gw
        return {
            "handled": sum(st.machine.handled for st in self.states),
            "symbol_dropped": sum(
                st.dropped + (st.mailbox.dropped if st.mailbox is not None else 0)
                for st in self.states
            ),
            "subscriber_received": self.received,
            "subscriber_dropped": self.sub.dropped,
            "frames": gw._router.frames,
            "malformed": gw._router.malformed,
            "unknown": gw._router.unknown,
            "reconnects": sum(c.reconnects for c in gw._connections),
            "stops_fired": sum(st.machine.stops.fired for st in self.states),
        }

    def recorders(self, symbol_index: int) -> dict[str, LatencyRecorder]:
        """The four recorders of one symbol, by metric name."""
        st = self.states[symbol_index]
        return {
            "exchange_to_receive": st.latency.exchange,
            "receive_to_handled": st.latency.handled,
            "receive_to_stop_decision": st.latency.stop,
            "receive_to_subscriber": self.sub_latency[self.symbols[symbol_index]],
        }


async def measure(url: str, names: list[str], args: argparse.Namespace,
                  server: harness.ServerProcess) -> dict[str, Any]:  # fmt: skip
    """Run the gateway against ``url``; warm up, reset, measure; returns the figures."""
    streams = tuple(args.streams.split(","))
    async with open_gateway(
        symbols=tuple(names), url=url, time_unit="MICROSECOND", streams=streams,
        **harness.STREAM_ONLY,
    ) as gw, trio.open_nursery() as nursery:  # fmt: skip
        probe = Probe(gw, names, args.subscriber_buffer)
        nursery.start_soon(probe.subscriber)
        await trio.sleep(args.warmup)
        probe.reset()
        before = probe.counters()
        cpu = harness.CpuMeter()
        cpu.start()
        src0, t0 = server.cpu_seconds(), time.perf_counter()
        end = t0 + args.duration
        for _ in range(math.ceil(args.duration) + 1):  # bounded; one-second steps
            left = end - time.perf_counter()
            if left <= 0:
                break
            await trio.sleep(min(1.0, left))
        wall = time.perf_counter() - t0
        cpu_used = cpu.stop()
        source_share = (server.cpu_seconds() - src0) / wall
        after = probe.counters()
        nursery.cancel_scope.cancel()

    per_symbol: dict[str, dict[str, Any]] = {}
    overall = {m: harness.new_hdr() for m in METRICS}
    for i, sym in enumerate(names):
        per_symbol[sym] = {}
        for metric, rec in probe.recorders(i).items():
            hist = harness.fold([rec])
            overall[metric].add(hist)
            per_symbol[sym][metric] = harness.hdr_summary(hist)
    delta = {k: after[k] - before[k] for k in after}
    return {
        "achieved": {
            "target_rate": args.rate,
            "frames_per_s": delta["frames"] / wall,
            "handled_per_s": delta["handled"] / wall,
            "subscriber_per_s": delta["subscriber_received"] / wall,
            "measured_s": wall,
        },
        "counters": delta,
        "drops": {
            k: delta[k]
            for k in ("symbol_dropped", "subscriber_dropped", "malformed", "unknown", "reconnects")
        },
        "cpu": {"gateway_process": cpu_used, "exchange_process_share_of_one_core": source_share},
        "latency_us": {
            "overall": {m: harness.hdr_summary(h) for m, h in overall.items()},
            "per_symbol": per_symbol,
        },
        "notes": {
            "receive_to_stop_decision": "recorded by the gateway on every trade, when its "
            "stop-loss check is done (each symbol has an armed position that never fires)",
            "exchange_to_receive": "event time is stamped per sender burst (5 ms ticks)",
        },
    }


def run_against_source(
    name: str,
    args: argparse.Namespace,
    body: Callable[[str, list[str], argparse.Namespace, harness.ServerProcess],
                   Awaitable[dict[str, Any]]],
) -> dict[str, Any]:  # fmt: skip
    """Start the exchange process, run ``body`` in trio against it, stop it; returns the
    JSON-ready data of benchmark ``name`` (parameters and machine included)."""
    machine = harness.machine_info()
    names = harness.symbol_names(args.symbols)
    with harness.ServerProcess(source_argv(args, names, args.rate)) as server:
        result = trio.run(body, server.url, names, args, server)
    return {
        "benchmark": name,
        "params": {k: v for k, v in vars(args).items() if k != "func"},
        "machine": harness.finish_machine_info(machine),
        **result,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the exchange process, measure, stop it; returns the JSON-ready data."""
    return run_against_source("latency", args, measure)


def report(data: dict[str, Any]) -> str:
    """The terminal table."""
    overall = data["latency_us"]["overall"]
    per = data["latency_us"]["per_symbol"]
    rows = []
    for m in METRICS:
        s = overall[m]
        if not s.get("count"):
            rows.append([m, "-", "-", "-", "-", "-", "-", 0])
            continue
        worst = max((v[m].get("p99", 0.0), sym) for sym, v in per.items())
        rows.append([m, s["p50"], s["p90"], s["p99"], s["p99.9"], s["max"],
                     f"{worst[0]:.0f} ({worst[1]})", int(s["count"])])  # fmt: skip
    a, d, c = data["achieved"], data["drops"], data["cpu"]
    h = overall["receive_to_handled"]
    ok = h.get("p99", math.inf) < _TARGET_P99_US and h.get("p99.9", math.inf) < _TARGET_P999_US
    p = data["params"]
    lines = [
        f"latency, µs: {p['symbols']} symbols, {p['rate']:,.0f} msgs/s target, "
        f"{p['duration']} s measured after {p['warmup']} s warm-up, source {p['source']}",
        harness.table(
            [
                "metric (all symbols)",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "max",
                "worst p99 (symbol)",
                "count",
            ],
            rows,
        ),
        f"achieved: {a['frames_per_s']:,.0f} frames/s, {a['handled_per_s']:,.0f} handled/s, "
        f"{a['subscriber_per_s']:,.0f} to the subscriber/s",
        "drops: " + ", ".join(f"{k} {v}" for k, v in d.items()),
        f"CPU: gateway {100 * c['gateway_process']['cpu_share_of_one_core']:.0f}% of a core, "
        f"exchange {100 * c['exchange_process_share_of_one_core']:.0f}% of a core",
        f"target receive_to_handled p99 < 1 ms and p99.9 < 5 ms: {'met' if ok else 'NOT met'}",
        harness.machine_line(data["machine"]),
    ]
    return "\n".join(lines)


def plot(data: dict[str, Any], path: Path) -> None:
    """Per-symbol p50 / p99 / p99.9 of each metric (one panel per metric, log scale)."""
    plt = harness.pyplot()
    per = data["latency_us"]["per_symbol"]
    syms = list(per)
    panels = list(METRICS)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3 * len(panels)), sharex=True)
    for ax, metric in zip(axes, panels, strict=False):
        for q, style in (("p50", "-"), ("p99", "--"), ("p99.9", ":"), ("max", "")):
            ys = [per[s][metric].get(q, float("nan")) for s in syms]
            if style:
                ax.plot(range(len(syms)), ys, style, label=q)
            else:
                ax.plot(range(len(syms)), ys, ".", markersize=3, label=q)
        ax.set_yscale("log")
        ax.set_ylabel("µs")
        ax.set_title(metric.replace("_", " "))
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(loc="upper right", fontsize=8, ncol=4)
    axes[-1].set_xlabel("symbol index")
    p = data["params"]
    fig.suptitle(f"Latency per symbol: {p['symbols']} symbols, {p['rate']:,.0f} msgs/s, "
                 f"{p['duration']} s, source {p['source']}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``latency`` options."""
    add = parser.add_argument
    add("--symbols", type=int, default=100, help="number of symbols (default %(default)s)")
    add("--rate", type=float, default=20_000.0, help="trades per second in total")
    add("--duration", type=float, default=25.0, help="seconds measured after the warm-up")
    add("--warmup", type=float, default=3.0, help="seconds before the recorders are reset")
    add("--streams", default="trade", help="stream suffixes per symbol (comma-separated)")
    add("--seed", type=int, default=1)
    add("--source", choices=["simulator", "feed"], default="simulator")
    add("--subscriber-buffer", type=int, default=10_000, help="the subscriber's channel bound")


def quick(args: argparse.Namespace) -> None:
    """Shrink ``args`` to the --quick run (well under 30 s)."""
    args.symbols, args.rate, args.duration, args.warmup = 10, 2000.0, 3.0, 1.0


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run, print, write JSON and PNG; returns the data."""
    logging.getLogger("gateway").setLevel(logging.WARNING)
    data = run(args)
    print(report(data))
    json_path = harness.write_json(args.out, "latency", data)
    plot(data, args.out / "latency.png")
    print(f"wrote {json_path} and {args.out / 'latency.png'}")
    return data

"""Soak: a long run at a steady rate, sampling memory, event-loop lag, latency and
counters every few seconds, to show that nothing grows without bound.

Run: ``python -m benchmarks soak [--duration 1800] [--interval 5] [--warmup 60]
[--symbols 100] [--rate 5000] [--source simulator|feed] [--quick]``.

``--chaos`` runs the chaos soak instead (``gateway soak --chaos``, `gateway.app.soak`:
every fault on a seeded schedule, judged against the exchange's ledger) and plots RSS
and the recovery of every fault (``<out>/chaos-soak.json`` and ``.png``).

The set-up is the latency benchmark's (exchange in its own process, µs event times, a
position per symbol, one subscriber taking every trade). A lag probe sleeps 0.1 s again
and again and records how much later than asked it woke up. Every ``--interval`` s a
sample records: RSS (/proc/self/statm), Python's allocated blocks, gc collections,
handled and dropped counts, loop lag (max, p99, mean over the interval) and the
interval's receive-to-handled and receive-to-subscriber percentiles (recorders reset
each sample). The report gives RSS growth from the end of ``--warmup`` to the end, and
the least-squares slope of RSS after warm-up, projected to 30 minutes.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import trio

from benchmarks import harness
from benchmarks.latency import Probe, run_against_source
from gateway.api import open_gateway
from gateway.core.latency import LatencyRecorder

_LAG_SLEEP = 0.1


class LagProbe:
    """Sleeps `_LAG_SLEEP` s in a loop; each oversleep (s) is kept until `take`."""

    def __init__(self) -> None:
        self.values: list[float] = []

    async def run(self) -> None:
        """Measure until cancelled."""
        while True:
            t0 = trio.current_time()
            await trio.sleep(_LAG_SLEEP)
            self.values.append(trio.current_time() - t0 - _LAG_SLEEP)

    def take(self) -> dict[str, float]:
        """Max, p99 and mean oversleep (ms) since the last call; forgets them."""
        vals, self.values = sorted(self.values), []
        if not vals:
            return {"max_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "n": 0}
        p99 = vals[min(len(vals) - 1, int(0.99 * len(vals)))]
        return {"max_ms": 1000 * vals[-1], "p99_ms": 1000 * p99,
                "mean_ms": 1000 * statistics.fmean(vals), "n": len(vals)}  # fmt: skip


class GcPauses:
    """Wall time of each garbage collection (gc.callbacks), kept until `take`."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))

    def take(self) -> dict[str, float]:
        """Count and longest pause (ms) per generation since the last call; forgets them."""
        pauses, self.pauses = self.pauses, []
        out: dict[str, float] = {}
        for gen in (0, 1, 2):
            mine = [p for g, p in pauses if g == gen]
            out[f"gen{gen}_count"] = len(mine)
            out[f"gen{gen}_max_ms"] = 1000 * max(mine, default=0.0)
        return out


class IntervalLatency:
    """Per-sample percentiles from the recorders' own buckets, plus a running total.

    Each sample merges the symbols' `LatencyRecorder` buckets (cheap) and resets them;
    the HDR histogram is built once, at the end, from the total after warm-up. (Reading
    four percentiles from an HdrHistogram with this range is pure Python over ~30k
    counts: tens of ms, which showed up as event-loop lag when done every sample.)
    """

    def __init__(self) -> None:
        self.total = LatencyRecorder()

    def take(self, recorders: list[LatencyRecorder], keep: bool) -> dict[str, float]:
        """The interval's p50 / p90 / p99 / p99.9 / max (µs); resets ``recorders``."""
        merged = LatencyRecorder()
        for rec in recorders:
            merged.merge(rec)
            rec.reset()
        if keep:
            self.total.merge(merged)
        if not merged.count:
            return {"count": 0}
        pcts = merged.percentiles(harness.PERCENTILES)
        out = {f"p{q:g}": v / 1000 for q, v in pcts.items()}
        out["max"] = merged.max / 1000
        out["count"] = merged.count
        return out


async def soak(url: str, names: list[str], args: argparse.Namespace,
               server: harness.ServerProcess) -> dict[str, Any]:  # fmt: skip
    """Run the gateway for ``args.duration`` s, sampling every ``args.interval`` s."""
    samples: list[dict[str, Any]] = []
    lag = LagProbe()
    gc_pauses = GcPauses()
    handled_lat, sub_lat = IntervalLatency(), IntervalLatency()
    gc.callbacks.append(gc_pauses)
    try:
        await _soak_body(url, names, args, server, samples, lag, gc_pauses, handled_lat, sub_lat)
    finally:
        gc.callbacks.remove(gc_pauses)
    summary = summarize(samples, args.warmup)
    summary["after_warmup_latency_us"] = {
        "receive_to_handled": harness.hdr_summary(harness.fold([handled_lat.total])),
        "receive_to_subscriber": harness.hdr_summary(harness.fold([sub_lat.total])),
    }
    return {"samples": samples, "summary": summary}


async def _soak_body(
    url: str, names: list[str], args: argparse.Namespace, server: harness.ServerProcess,
    samples: list[dict[str, Any]], lag: LagProbe, gc_pauses: GcPauses,
    handled_lat: IntervalLatency, sub_lat: IntervalLatency,
) -> None:  # fmt: skip
    async with open_gateway(
        symbols=tuple(names), url=url, time_unit="MICROSECOND",
        streams=tuple(args.streams.split(",")), **harness.STREAM_ONLY,
    ) as gw, trio.open_nursery() as nursery:  # fmt: skip
        probe = Probe(gw, names, args.subscriber_buffer)
        nursery.start_soon(probe.subscriber)
        nursery.start_soon(lag.run)
        start = time.perf_counter()
        last = probe.counters()
        last_t, last_cpu, last_src = start, time.process_time(), server.cpu_seconds()
        steps = max(1, math.ceil(args.duration / args.interval))
        for step in range(1, steps + 1):  # bounded: one sample per interval
            await trio.sleep_until(trio.current_time() + max(
                0.0, start + step * args.interval - time.perf_counter()))  # fmt: skip
            now, cpu, src = time.perf_counter(), time.process_time(), server.cpu_seconds()
            counters = probe.counters()
            dt = now - last_t
            samples.append({
                "t_s": now - start,
                "rss_mb": harness.rss_bytes() / 2**20,
                "allocated_blocks": sys.getallocatedblocks(),
                "gc_collections": [g["collections"] for g in gc.get_stats()],
                "handled_per_s": (counters["handled"] - last["handled"]) / dt,
                "frames_per_s": (counters["frames"] - last["frames"]) / dt,
                "gateway_cpu_share": (cpu - last_cpu) / dt,
                "exchange_cpu_share": (src - last_src) / dt,
                "counters": counters,
                "loop_lag": lag.take(),
                "gc": gc_pauses.take(),
                "receive_to_handled_us": handled_lat.take(
                    [s.latency.handled for s in probe.states], now - start > args.warmup),
                "receive_to_subscriber_us": sub_lat.take(
                    list(probe.sub_latency.values()), now - start > args.warmup),
            })  # fmt: skip
            last, last_t, last_cpu, last_src = counters, now, cpu, src
            s = samples[-1]
            print(
                f"  t={s['t_s']:7.1f}s rss={s['rss_mb']:7.1f} MB "
                f"blocks={s['allocated_blocks']:>9,} handled/s={s['handled_per_s']:>8,.0f} "
                f"lag max={s['loop_lag']['max_ms']:6.1f} ms "
                f"gc2 max={s['gc']['gen2_max_ms']:5.1f} ms "
                f"p99 handled={s['receive_to_handled_us'].get('p99', 0):8.0f} µs",
                flush=True,
            )
        nursery.cancel_scope.cancel()


def _slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=False)) / den if den else 0.0


def summarize(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    """RSS growth after warm-up, its slope, and the worst loop lag and latency."""
    after = [s for s in samples if s["t_s"] >= warmup] or samples[-1:]
    base, end = after[0], samples[-1]
    xs = [s["t_s"] / 60 for s in after]
    slope_rss = _slope(xs, [s["rss_mb"] for s in after])
    slope_blocks = _slope(xs, [float(s["allocated_blocks"]) for s in after])
    c = end["counters"]
    return {
        "rss_mb_at_warmup_end": base["rss_mb"],
        "rss_mb_end": end["rss_mb"],
        "rss_growth_pct_after_warmup": 100 * (end["rss_mb"] - base["rss_mb"]) / base["rss_mb"],
        "rss_slope_mb_per_min": slope_rss,
        "rss_projected_growth_pct_30min": 100 * slope_rss * 30 / base["rss_mb"],
        "allocated_blocks_at_warmup_end": base["allocated_blocks"],
        "allocated_blocks_end": end["allocated_blocks"],
        "allocated_blocks_slope_per_min": slope_blocks,
        "measured_after_warmup_s": end["t_s"] - base["t_s"],
        "loop_lag_max_ms": max(s["loop_lag"]["max_ms"] for s in after),
        "loop_lag_p99_ms_worst_interval": max(s["loop_lag"]["p99_ms"] for s in after),
        "gc_pause_max_ms": max(max(s["gc"][f"gen{g}_max_ms"] for g in (0, 1, 2))
                               for s in after),
        "gc_gen2_collections": sum(s["gc"]["gen2_count"] for s in after),
        "handled_per_s_median": statistics.median(s["handled_per_s"] for s in after),
        "receive_to_handled_p99_us_worst_interval": max(
            s["receive_to_handled_us"].get("p99", 0.0) for s in after),
        "receive_to_subscriber_p99_us_worst_interval": max(
            s["receive_to_subscriber_us"].get("p99", 0.0) for s in after),
        "totals": {k: c[k] for k in ("handled", "symbol_dropped", "subscriber_dropped",
                                     "malformed", "reconnects")},
    }  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the exchange process, soak, stop it; returns the JSON-ready data."""
    return run_against_source("soak", args, soak)


def report(data: dict[str, Any]) -> str:
    """The terminal summary."""
    s, p = data["summary"], data["params"]
    rows = [
        ["RSS at warm-up end / end (MB)",
         f"{s['rss_mb_at_warmup_end']:.1f} / {s['rss_mb_end']:.1f}"],
        ["RSS growth after warm-up", f"{s['rss_growth_pct_after_warmup']:+.2f}%"],
        ["RSS slope after warm-up", f"{s['rss_slope_mb_per_min']:+.3f} MB/min"],
        ["RSS growth projected to 30 min", f"{s['rss_projected_growth_pct_30min']:+.2f}%"],
        ["allocated blocks warm-up end / end",
         f"{s['allocated_blocks_at_warmup_end']:,} / {s['allocated_blocks_end']:,}"],
        ["loop lag max / worst interval p99 (ms)",
         f"{s['loop_lag_max_ms']:.1f} / {s['loop_lag_p99_ms_worst_interval']:.1f}"],
        ["longest gc pause (ms), gen-2 collections",
         f"{s['gc_pause_max_ms']:.1f}, {s['gc_gen2_collections']}"],
        ["handled/s (median of intervals)", f"{s['handled_per_s_median']:,.0f}"],
        ["receive→handled p50/p99/p99.9/max after warm-up (µs)",
         _pcts(s["after_warmup_latency_us"]["receive_to_handled"])],
        ["receive→subscriber p50/p99/p99.9/max after warm-up (µs)",
         _pcts(s["after_warmup_latency_us"]["receive_to_subscriber"])],
        ["receive→handled p99, worst interval (µs)",
         f"{s['receive_to_handled_p99_us_worst_interval']:,.0f}"],
        ["receive→subscriber p99, worst interval (µs)",
         f"{s['receive_to_subscriber_p99_us_worst_interval']:,.0f}"],
        ["totals", ", ".join(f"{k} {v:,}" for k, v in s["totals"].items())],
    ]  # fmt: skip
    return "\n".join([
        f"soak: {p['symbols']} symbols at {p['rate']:,.0f} msgs/s for {p['duration']} s "
        f"(warm-up {p['warmup']} s, a sample every {p['interval']} s, source {p['source']})",
        harness.table(["figure", "value"], rows),
        harness.machine_line(data["machine"]),
    ])  # fmt: skip


def _pcts(s: dict[str, float]) -> str:
    if not s.get("count"):
        return "-"
    return " / ".join(f"{s[k]:,.0f}" for k in ("p50", "p99", "p99.9", "max"))


def plot(data: dict[str, Any], path: Path) -> None:
    """RSS and allocated blocks, loop lag, and interval p99 latency over time."""
    plt = harness.pyplot()
    samples = data["samples"]
    t = [s["t_s"] for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    ax1.plot(t, [s["rss_mb"] for s in samples], marker=".", label="RSS (MB)")
    ax1.axvline(data["params"]["warmup"], color="grey", linestyle=":", label="end of warm-up")
    ax1.set_ylabel("RSS (MB)")
    ax1b = ax1.twinx()
    ax1b.plot(t, [s["allocated_blocks"] / 1e3 for s in samples], color="tab:orange",
              alpha=0.6, label="allocated blocks (k)")  # fmt: skip
    ax1b.set_ylabel("allocated blocks (thousands)")
    ax1.legend(loc="upper left", fontsize=8)
    ax1b.legend(loc="lower right", fontsize=8)
    ax1.set_title("memory")
    ax2.plot(t, [s["loop_lag"]["max_ms"] for s in samples], label="max")
    ax2.plot(t, [s["loop_lag"]["p99_ms"] for s in samples], label="p99")
    ax2.set_ylabel("ms")
    ax2.set_title("event-loop lag (oversleep of a 0.1 s sleep)")
    ax2.legend(fontsize=8)
    for key, label in (("receive_to_handled_us", "receive→handled"),
                       ("receive_to_subscriber_us", "receive→subscriber")):  # fmt: skip
        ax3.plot(t, [s[key].get("p99", float("nan")) for s in samples], label=f"{label} p99")
    ax3.set_yscale("log")
    ax3.set_ylabel("µs")
    ax3.set_xlabel("seconds")
    ax3.set_title("latency per interval")
    ax3.legend(fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
    p = data["params"]
    fig.suptitle(f"Soak: {p['symbols']} symbols, {p['rate']:,.0f} msgs/s, {p['duration']} s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``soak`` options (``--chaos`` and the options after it: ``gateway soak``'s)."""
    add = parser.add_argument
    add("--chaos", action="store_true",
        help="the chaos soak (gateway soak --chaos): every fault, judged on the ledger")
    add("--faults", type=int, default=0, help="--chaos: faults (0: one per 8 s)")
    add("--quiet", type=float, default=20.0, help="--chaos: seconds before the first fault")
    add("--drain", type=float, default=30.0, help="--chaos: seconds without faults at the end")
    add("--settle", type=float, default=120.0, help="--chaos: at most this long for last ids")
    add("--crossers", type=int, default=3, help="--chaos: crossed stops per side and symbol")
    add("--big-gap", type=int, default=25_000, help="--chaos: most ids a large gap drops")
    add("--clock", choices=("real", "mock"), default="real", help="--chaos: see gateway soak")
    add("--max-rss-growth", type=float, default=5.0, help="--chaos: percent after warm-up")
    add("--kinds", default=",".join(_chaos_kinds()), help="--chaos: fault kinds drawn")
    add("--hold-seconds", type=float, default=None, help="--chaos: gateway hold_max_seconds")
    add("--malloc", choices=("tuned", "default"), default="tuned",
        help="--chaos: see gateway soak --malloc")  # fmt: skip
    add("--summary", type=Path, default=None,
        help="--chaos: the summary JSON (default <out>/chaos-soak.json; the plot beside it)")
    add("--symbols", type=int, default=100)
    add("--rate", type=float, default=5000.0, help="trades per second in total")
    add("--duration", type=float, default=300.0, help="seconds in all (warm-up included)")
    add("--interval", type=float, default=5.0, help="seconds between samples")
    add("--warmup", type=float, default=60.0, help="seconds before RSS growth is counted")
    add("--streams", default="trade", help="stream suffixes per symbol (comma-separated)")
    add("--seed", type=int, default=1)
    add("--source", choices=["simulator", "feed"], default="simulator")
    add("--subscriber-buffer", type=int, default=10_000, help="the subscriber's channel bound")


def quick(args: argparse.Namespace) -> None:
    """Shrink ``args`` to the --quick run (well under 30 s; --chaos: every kind, mock clock)."""
    args.symbols, args.rate, args.duration, args.interval, args.warmup = 10, 1000.0, 6.0, 1.0, 2.0
    if args.chaos:
        args.symbols, args.rate, args.duration, args.interval = 4, 200.0, 60.0, 1.0
        args.quiet, args.warmup, args.drain, args.crossers, args.big_gap = 5.0, 5.0, 15.0, 2, 12_000
        args.clock = "mock"


def _chaos_kinds() -> tuple[str, ...]:
    from gateway.app.chaos_faults import KINDS

    return KINDS


def main_chaos(args: argparse.Namespace) -> int:
    """``soak --chaos``: run `gateway.app.soak`, print, write the JSON and the plot."""
    from gateway.app.soak import main_soak

    summary = args.summary if args.summary is not None else args.out / "chaos-soak.json"
    args.summary = str(summary)
    code = main_soak(args)
    if summary.exists():
        png = Path(summary).with_suffix(".png")
        plot_chaos(json.loads(Path(summary).read_text()), png)
        print(f"wrote {summary} and {png}", file=sys.stderr)  # the verdict stays last
    return code


_GROUPS = {
    "connection": ("close_abrupt", "close_1008", "close_1011", "subscribe_1008",
                   "subscribe_reset", "server_shutdown", "lifetime_close", "refuse_connections",
                   "oversized_frame"),
    "silence": ("stall_silent", "stall_pinging", "zombie"),
    "frames": ("garbage_frames", "wrong_types", "unknown_event", "duplicate_frames"),
    "gaps and REST": ("gap_small", "gap_large", "rest_5xx", "rest_429", "rest_timeout",
                      "rest_down"),
    "in the gateway": ("actor_crash", "callback_raise", "hook_raise", "hook_hang",
                       "crash_after_trigger"),
}  # fmt: skip


def plot_chaos(data: dict[str, Any], path: Path) -> None:
    """RSS of both processes over time, the events the gateway kept in memory (held behind
    gaps, queued for the subscriber), and each fault's recovery time when injected."""
    plt = harness.pyplot()
    samples, p = data["samples"], data["params"]
    t = [s["t_s"] for s in samples]
    fig, (ax1, ax3, ax2) = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
    ax1.plot(t, [s["rss_mb"] for s in samples], label="gateway process RSS (MB, left)")
    ax1.axvline(p["warmup"], color="grey", linestyle=":", label="end of warm-up")
    ax1.set_ylabel("gateway MB")
    ex = [s.get("exchange_rss_mb") for s in samples]
    if any(v is not None for v in ex):
        ax1b = ax1.twinx()
        ax1b.plot(t, [math.nan if v is None else v for v in ex], color="grey", alpha=0.5,
                  label="exchange process RSS (MB, right)")  # fmt: skip
        ax1b.set_ylabel("exchange MB")
        ax1b.legend(loc="lower right", fontsize=8)
    ax1.set_title(f"RSS (gateway after warm-up: {data['rss_mb']['after_warmup']} MB, "
                  f"peak {data['rss_mb']['peak']}, end {data['rss_mb']['end']}; "
                  f"growth {data['rss_growth_pct_after_warmup']}%)")  # fmt: skip
    ax1.legend(loc="upper left", fontsize=8)
    for key, label in (("held", "events held behind gaps (all symbols, live and backfilled)"),
                       ("subscriber_queued", "events queued for the subscriber"),
                       ("backfill_queued", "backfill requests queued")):  # fmt: skip
        ax3.plot(t, [s.get(key) or 0 for s in samples], label=label, linewidth=1)
    ax3.axvline(p["warmup"], color="grey", linestyle=":")
    ax3.set_ylabel("count (sampled)")
    ax3.set_title("what the gateway process kept in memory, at each sample")
    ax3.legend(loc="upper left", fontsize=8)
    group_of = {k: g for g, kinds in _GROUPS.items() for k in kinds}
    for group in _GROUPS:
        pts = [(at, r) for at, kind, r in data["recovery_series"] if group_of.get(kind) == group]
        if pts:
            ax2.scatter([a for a, _ in pts], [max(r, 1e-3) for _, r in pts], s=14, label=group)
    ax2.set_yscale("log")
    ax2.set_ylabel("seconds until every affected stream was live again")
    ax2.set_xlabel("seconds into the run (fault injected)")
    ax2.set_title("recovery per fault")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax3, ax2):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"Chaos soak: {p['symbols']} symbols, {p['rate']:,.0f} trades/s, "
                 f"{p['duration']:g} s, {data['faults_total']} faults: "
                 f"{data['verdict']}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: argparse.Namespace) -> dict[str, Any] | int:
    """Run, print, write JSON and PNG; returns the data (``--chaos``: the exit status)."""
    if args.chaos:
        return main_chaos(args)
    logging.getLogger("gateway").setLevel(logging.WARNING)
    data = run(args)
    print(report(data))
    json_path = harness.write_json(args.out, "soak", data)
    plot(data, args.out / "soak.png")
    print(f"wrote {json_path} and {args.out / 'soak.png'}")
    return data

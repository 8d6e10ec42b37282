"""Cost of LatencyRecorder.record against HdrHistogram.record_value, per call.

Run: ``python -m benchmarks.latency_recorder [--n 200000] [--rounds 5]``.
Interleaved rounds over the same realistic values (log-normal around 60 µs, in
ns); each round also times a do-nothing method call, the baseline every
recording pays. Prints medians (ns per call), the net cost above the baseline,
and HDR's cost as a multiple of ours.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from hdrh.histogram import HdrHistogram

from gateway.core.latency import LatencyRecorder


class _Noop:
    __slots__ = ()

    def record(self, value_ns: int) -> None:
        pass


def _time_loop(fn: Callable[[int], object], values: list[int]) -> float:
    start = time.perf_counter_ns()
    for v in values:
        fn(v)
    return (time.perf_counter_ns() - start) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="values per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    values = [int(rng.lognormvariate(11, 1)) for _ in range(args.n)]

    results: dict[str, list[float]] = {"baseline": [], "recorder": [], "hdr": []}
    for _ in range(args.rounds):
        results["baseline"].append(_time_loop(_Noop().record, values))
        results["recorder"].append(_time_loop(LatencyRecorder().record, values))
        hdr = HdrHistogram(1, 3_600_000_000_000, 3)
        results["hdr"].append(_time_loop(hdr.record_value, values))

    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["baseline"]
    print(f"values per round: {args.n}, rounds: {args.rounds} (median ns per call)")
    for name in ("baseline", "recorder", "hdr"):
        net = med[name] - base
        print(f"  {name:<9} {med[name]:8.1f} ns   net of baseline {net:8.1f} ns")
    print(f"  hdr / recorder: {med['hdr'] / med['recorder']:.1f}x gross, "
          f"{(med['hdr'] - base) / max(med['recorder'] - base, 1e-9):.1f}x net")  # fmt: skip


if __name__ == "__main__":
    main()

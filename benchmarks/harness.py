"""Shared pieces of the end-to-end benchmarks: server subprocesses, machine description,
HDR summaries, process resource readings, JSON and plot output, tables.

Every subprocess is started on 127.0.0.1 with port 0 (the server prints the port it
chose), waited for with a deadline, and stopped with SIGINT, then SIGKILL after a
timeout: nothing outlives the benchmark, whatever happens in between.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from gateway.core.latency import LatencyRecorder

#: Percentiles every latency figure reports (plus max and count).
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
#: Highest value the HDR histograms track: 10 minutes in ns (record_value returns False above).
HDR_HIGHEST_NS = 600 * 1_000_000_000
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PACKAGES = (
    "trio-market-gateway", "trio", "trio-websocket", "wsproto", "orjson", "msgspec", "attrs",
    "cattrs", "hdrhistogram", "matplotlib",
)  # fmt: skip


#: Gateway options of the streaming benchmarks: the pre-rendered feed serves no REST, and
#: these runs measure the stream path only (no symbol check, no backfill requests).
STREAM_ONLY: dict[str, Any] = {"rest_url": "", "check_symbols": False}


# --- subprocesses ----------------------------------------------------------------------


class ServerProcess:
    """A server subprocess that prints ``ws_url=ws://127.0.0.1:PORT`` once it listens.

    Use as a context manager: entering waits (at most ``ready_timeout`` s) for the line
    and sets `url`; leaving stops it (SIGINT, then SIGKILL after ``stop_timeout`` s).
    """

    def __init__(
        self, argv: Sequence[str], *, ready_timeout: float = 30.0, stop_timeout: float = 5.0
    ) -> None:
        self.argv = list(argv)
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: list[str] = []

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            self.url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode(errors="replace")
                    self.output.append(text)
                    if text.startswith("ws_url="):
                        return text.split()[0].removeprefix("ws_url=")
        tail = "\n".join(self.output[-20:])
        raise RuntimeError(f"server {self.argv[:4]} did not start in time; output:\n{tail}")

    @property
    def pid(self) -> int:
        """The subprocess id."""
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time used by the subprocess so far (0.0 once it is gone)."""
        return proc_cpu_seconds(self.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        """Stop the subprocess: SIGINT, wait, SIGKILL after the timeout; idempotent."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(self.stop_timeout)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def simulator_argv(
    symbols: Sequence[str], *, rate: float, seed: int, pacing: str = "rate",
    time_unit: str = "MICROSECOND",
) -> list[str]:  # fmt: skip
    """The command that runs ``gateway simulate`` (no REST side) on a free loopback port."""
    return [
        sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())",
        "simulate", "--host", "127.0.0.1", "--port", "0", "--no-rest",
        "--symbols", ",".join(symbols), "--rate", str(rate), "--seed", str(seed),
        "--pacing", pacing, "--time-unit", time_unit, "--clock", "wall",
        "--log-level", "WARNING",
    ]  # fmt: skip


def feed_argv(symbols: int, *, pacing: str, rate: float, seed: int, frames: int) -> list[str]:
    """The command that runs the pre-rendered feed server (`benchmarks.feed_server`)."""
    return [
        sys.executable, "-m", "benchmarks.feed_server", "--symbols", str(symbols),
        "--pacing", pacing, "--rate", str(rate), "--seed", str(seed), "--frames", str(frames),
    ]  # fmt: skip


def symbol_names(n: int) -> list[str]:
    """``n`` synthetic symbol names (``S0000USDT``...), the same in every benchmark."""
    return [f"S{i:04d}USDT" for i in range(n)]


# --- process and machine readings --------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` from /proc (0.0 if unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def rss_bytes() -> int:
    """This process's resident set size now (not the peak), from /proc/self/statm."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


class CpuMeter:
    """CPU used by this process between `start` and `stop` (process_time and getrusage)."""

    def __init__(self) -> None:
        self._wall = self._cpu = self._utime = self._stime = 0.0
        self.result: dict[str, float] = {}

    def start(self) -> None:
        """Take the starting readings."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self._utime, self._stime = ru.ru_utime, ru.ru_stime
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Take the end readings; returns (and keeps in `result`) seconds and core share."""
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.result = {
            "wall_s": wall,
            "process_time_s": cpu,
            "user_s": ru.ru_utime - self._utime,
            "system_s": ru.ru_stime - self._stime,
            "cpu_share_of_one_core": cpu / wall if wall > 0 else 0.0,
            "max_rss_bytes": float(ru.ru_maxrss * 1024),
        }
        return self.result


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures came from: CPU, cores, OS, Python, package versions, load now."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "loadavg_start": list(os.getloadavg()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def finish_machine_info(info: dict[str, Any]) -> dict[str, Any]:
    """Add the load average and time at the end of the run to `machine_info`'s dict."""
    info["loadavg_end"] = list(os.getloadavg())
    info["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return info


# --- latency figures ---------------------------------------------------------------------


def new_hdr() -> Any:
    """An empty HdrHistogram in ns, 1 ns .. `HDR_HIGHEST_NS`, 3 significant figures."""
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(1, HDR_HIGHEST_NS, 3)


def fold(recorders: Iterable[LatencyRecorder]) -> Any:
    """Fold ``recorders`` into one new HdrHistogram (values above the top are clamped)."""
    hist = new_hdr()
    for rec in recorders:
        rec.to_hdr(hist)
    return hist


def hdr_summary(hist: Any) -> dict[str, float]:
    """p50 / p90 / p99 / p99.9 / max in µs and the count of an HdrHistogram."""
    count = int(hist.get_total_count())
    if not count:
        return {"count": 0}
    out: dict[str, float] = {f"p{q:g}": hist.get_value_at_percentile(q) / 1000 for q in PERCENTILES}
    out["max"] = hist.get_max_value() / 1000
    out["mean"] = hist.get_mean_value() / 1000
    out["count"] = count
    return out


def per_call_ns(fn: Callable[[], object], number: int) -> float:
    """CPU time of this process per call of ``fn`` over ``number`` calls, in ns (time spent
    waiting while the shared machine's other processes run is not counted: in wall time
    single rounds swung by +-30 % here)."""
    start = time.process_time_ns()
    for _ in range(number):
        fn()
    return (time.process_time_ns() - start) / number


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and (max - min) / median of repeated measurements."""
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": 100 * (max(values) - min(values)) / med if med else 0.0,
        "rounds": len(values),
    }


# --- output --------------------------------------------------------------------------------


def write_json(out_dir: Path, name: str, data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``out_dir/name.json`` (directories created); returns the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    return path


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain aligned text table (first column left, the rest right aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        parts = [row[0].ljust(widths[0]), *rest]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_line(info: Mapping[str, Any]) -> str:
    """One line for the terminal: CPU, cores, Python and the load averages."""
    start = ", ".join(f"{x:.2f}" for x in info["loadavg_start"])
    end = ", ".join(f"{x:.2f}" for x in info.get("loadavg_end", []))
    return (
        f"{info['cpu_model']}, {info['cpus_usable']} cores, Python {info['python']}; "
        f"load average start [{start}] end [{end}]"
    )

"""The benchmark harness keeps working: each end-to-end benchmark's --quick run writes
its JSON (expected structure, positive rates) and its plot. No speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from benchmarks.harness import ServerProcess, feed_argv, symbol_names

ROOT = Path(__file__).resolve().parent.parent


def _run(command: str, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", command, "--quick", "--out", str(out), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / f"{command}.png").stat().st_size > 0
    data = json.loads((out / f"{command}.json").read_text())
    assert data["benchmark"] == command
    machine = data["machine"]
    for key in ("cpu_model", "cpus_usable", "python", "packages", "loadavg_start", "loadavg_end"):
        assert key in machine
    assert data["params"]["quick"] is True
    return data  # type: ignore[no-any-return]


@pytest.mark.parametrize("command", ["latency", "throughput", "soak"])
def test_quick_run_writes_expected_json(command: str, tmp_path: Path) -> None:
    data = _run(command, tmp_path)
    if command == "latency":
        assert data["achieved"]["handled_per_s"] > 0
        assert data["achieved"]["frames_per_s"] > 0
        overall = data["latency_us"]["overall"]
        for metric in ("exchange_to_receive", "receive_to_handled",
                       "receive_to_stop_decision", "receive_to_subscriber"):  # fmt: skip
            summary = overall[metric]
            assert summary["count"] > 0
            assert 0 <= summary["p50"] <= summary["p99"] <= summary["p99.9"] <= summary["max"]
        assert len(data["latency_us"]["per_symbol"]) == data["params"]["symbols"]
        assert set(data["drops"]) >= {"symbol_dropped", "subscriber_dropped"}
        assert data["cpu"]["gateway_process"]["process_time_s"] > 0
    elif command == "throughput":
        assert [r["symbols"] for r in data["results"]] == data["params"]["symbols"]
        for r in data["results"]:
            assert r["bare"]["median"] > 0 and r["gateway"]["median"] > 0
            assert r["ratio_of_medians"] > 0
        assert {p["name"] for p in data["peers"]} == {"cryptofeed", "python-binance"}
        for r in data["results"]:  # the subscriber rounds run by default
            assert r["connections"] == 1 and r["peers"]["gateway+subscriber"]["median"] > 0
        decode = [t for t in data["targets"] if t["target"].startswith("decode")]
        assert len(decode) == 1 and decode[0]["measured"] > 0 and decode[0]["goal"] == "<= 2.00"
    else:
        assert len(data["samples"]) >= 3
        for s in data["samples"]:
            assert s["rss_mb"] > 0 and s["handled_per_s"] > 0
            assert s["loop_lag"]["n"] > 0
        assert "rss_growth_pct_after_warmup" in data["summary"]


def test_the_throughput_backlog_feed_is_measured_and_reported_as_such(tmp_path: Path) -> None:
    """The backlog feed shape (every rendered frame in one write) runs end to end."""
    data = _run("throughput", tmp_path, "--feed", "backlog")
    assert [(r["feed"], r["symbols"]) for r in data["results"]] == [("backlog", 1), ("backlog", 10)]
    for r in data["results"]:
        assert r["bare"]["median"] > 0 and r["gateway"]["median"] > 0


def test_the_route_profile_lists_the_hot_path_functions() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_route", "--frames", "2000", "--symbols", "10"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("route", "fast_event", "take_trade", "deliver", "publish"):
        assert f"({name})" in proc.stdout


def test_the_feed_serves_each_connection_only_its_streams() -> None:
    """The throughput feed (`benchmarks.feed_server`) sends a connection the frames of the
    streams it subscribed to (or named in ``?streams=``), and nothing else, so that the
    gateway spread over several connections gets each frame once."""
    names = [s.lower() for s in symbol_names(4)]

    async def symbols_seen(url: str, path: str, subscribe: list[str]) -> set[str]:
        seen: set[str] = set()
        with trio.fail_after(30):
            async with open_websocket_url(url + path) as ws:
                if subscribe:
                    await ws.send_message(orjson.dumps(
                        {"method": "SUBSCRIBE", "params": subscribe, "id": 1}).decode())
                for _ in range(200):  # bounded: the reply, then frames
                    message = orjson.loads(await ws.get_message())
                    if "stream" in message:
                        seen.add(message["stream"].partition("@")[0])
        return seen

    for pacing in ("max", "backlog"):
        argv = feed_argv(4, pacing=pacing, rate=0, seed=1, frames=400)
        with ServerProcess(argv) as server:
            assert trio.run(symbols_seen, server.url, "/stream",
                            [f"{n}@trade" for n in names[:2]]) == set(names[:2])  # fmt: skip
            assert trio.run(symbols_seen, server.url, f"/stream?streams={names[3]}@trade",
                            []) == {names[3]}  # fmt: skip


def test_the_cluster_benchmark_quick_run_measures_every_contender(tmp_path: Path) -> None:
    data = _run("cluster", tmp_path)
    for contender in ("single", "cluster-1", "cluster-2"):
        assert data["medians"][contender]["received"] > 0
        assert data["medians"][contender]["published"] > 0
    assert data["latency"]["receive_to_remote_us"]["count"] > 0
    assert [t["goal"] for t in data["targets"]] == [">= 1.60", "< 5000"]

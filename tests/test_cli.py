"""The ``gateway`` command in subprocesses: run, bad configs, help, replay, record, and
runs that never go live (a dead port, a listener that never answers, a refusing
exchange): each ends on time, on a signal or on its error, with its summary."""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.app.demo import DEMO_SYMBOLS
from gateway.app.replay import merge_recordings
from gateway.simulator.replay import load_recording
from tests._loopback import dead_port
from tests.recorded_data import RECORDINGS, recorded_dir, stream_frames
from tests.test_docs_transcripts import shape

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = [sys.executable, "-m", "gateway"]
#: ``gateway`` with every look-up and connect not to loopback refused and reported.
GUARDED_GATEWAY = [sys.executable, "-c", "import sys; from tests._conformance_runner import "
                   "guard_network; guard_network(); from gateway.cli import main; "
                   "sys.exit(main(sys.argv[1:]))"]  # fmt: skip
RECORDED_STREAMS = "aggTrade,kline_1m,depth@100ms,bookTicker"


def gateway(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def printed_summary(stdout: str) -> dict[str, dict[str, Any]]:
    """The ``summary SYMBOL events k=v ... candles k=v ... stops=N ...`` lines, parsed."""
    out: dict[str, dict[str, Any]] = {}
    for line in stdout.splitlines():
        m = re.match(r"summary (\S+) events (.*) candles (.*) (stops=.*)$", line)
        if m is None:
            continue
        sym, events, candles, rest = m.groups()
        fields = dict(w.split("=") for w in rest.split())
        out[sym] = {
            "events": {k: int(v) for k, v in (w.split("=") for w in events.split() if w != "-")},
            "candles_closed": {
                k: int(v) for k, v in (w.split("=") for w in candles.split() if w != "-")
            },
            "stops_fired": int(fields["stops"]),
            "dropped": int(fields["drops"]),
            "restarts": int(fields["restarts"]),
        }
    return out


def test_run_demo_streams_every_symbol_closes_candles_fires_the_stop_and_agrees_with_json(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    proc = gateway("run", "--duration", "5", "--plain", "--summary", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    for sym in DEMO_SYMBOLS:
        assert any(line.startswith("status ") and f" {sym} last " in line for line in lines)
    assert any(line.startswith("candle ") and " closed O " in line for line in lines)
    stops = [line for line in lines if line.startswith("stop-loss BTCUSDT demo-1 LONG")]
    assert len(stops) == 1

    summary = json.loads(out.read_text())
    assert summary["format"] == 2 and summary["embedded"] and summary["ended_by"] == "duration"
    assert summary["went_live"] is True and summary["error"] is None
    assert list(summary["symbols"]) == list(DEMO_SYMBOLS)
    printed = printed_summary(proc.stdout)
    assert list(printed) == list(DEMO_SYMBOLS)
    for sym, row in printed.items():
        written = summary["symbols"][sym]
        assert {k: written[k] for k in row} == row
        assert written["events"]["Trade"] > 0 and written["latency_us"]["receive_to_handled"]
    assert sum(s["candles_closed"]["1s"] for s in summary["symbols"].values()) >= 1
    assert summary["symbols"]["BTCUSDT"]["stops_fired"] == 1
    assert [s["position_id"] for s in summary["stop_losses"]] == ["demo-1"]
    assert summary["connections"][0]["reconnects"] == 0
    assert summary["router"]["malformed"] == 0 and summary["router"]["unknown"] == 0


def test_ctrl_c_ends_the_run_cleanly_with_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with subprocess.Popen(
        [*GATEWAY, "run", "--plain", "--summary", str(out), "--symbols", "BTCUSDT"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("status "):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "summary run" in rest and "ended_by=interrupt went_live=yes" in rest
    assert json.loads(out.read_text())["ended_by"] == "interrupt"


@contextmanager
def silent_port() -> Iterator[socket.socket]:
    """A loopback listener whose kernel accepts TCP connections that nobody ever answers
    (``accept()`` on it tells a test that a client is connecting)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        s.settimeout(20)
        yield s


def first_line(
    proc: subprocess.Popen[str], prefix: str, timeout: float = 20, seen: list[str] | None = None
) -> str:
    """The first standard-output line starting with ``prefix``, waited for at most
    ``timeout`` seconds ("" if the output ended first); lines up to it go to ``seen``."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if seen is not None:
                seen.append(line.rstrip("\n"))
            if line.startswith(prefix):
                found.put(line)
                return
        found.put("")

    threading.Thread(target=read, daemon=True).start()
    return found.get(timeout=timeout)


def never_live(summary: dict[str, Any]) -> dict[str, Any]:
    """The one connection of a summary of a run that never went live."""
    assert summary["format"] == 2 and summary["went_live"] is False
    assert summary["symbols"] == {} and summary["error"].startswith("never went live")
    [conn] = summary["connections"]
    assert conn["went_live"] is False and conn["frames"] == 0
    assert conn["state"] in ("idle", "connecting", "reconnecting")  # idle: not started yet
    return dict(conn)


def test_run_against_a_dead_port_ends_at_the_duration_with_its_summary(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    started = time.monotonic()
    proc = gateway("run", "--url", f"ws://127.0.0.1:{dead_port()}", "--duration", "3",
                   "--plain", "--summary", str(out), timeout=20)  # fmt: skip
    assert 3 <= time.monotonic() - started < 20
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(out.read_text())
    assert summary["ended_by"] == "duration"
    assert "still connecting when --duration (3 s) ended" in summary["error"]
    assert never_live(summary)["reconnects"] >= 1
    assert "ended_by=duration went_live=no" in proc.stdout
    assert "summary error never went live" in proc.stdout


def test_run_against_a_dead_port_logs_could_not_connect(tmp_path: Path) -> None:
    port = dead_port()
    proc = gateway("run", "--url", f"ws://127.0.0.1:{port}", "--duration", "2", "--plain",
                   "--status-every", "0", timeout=20)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"could not connect to 127.0.0.1:{port}" in proc.stderr
    assert "connection lost" not in proc.stderr


@pytest.mark.parametrize(
    ("signum", "status", "ended_by"),
    [(signal.SIGINT, 130, "interrupt"), (signal.SIGTERM, 143, "terminate")],
)
def test_a_signal_while_connecting_ends_the_run_with_its_summary(
    tmp_path: Path, signum: int, status: int, ended_by: str
) -> None:
    out = tmp_path / "out.json"
    with silent_port() as listener, subprocess.Popen(
        [*GATEWAY, "run", "--url", f"ws://127.0.0.1:{listener.getsockname()[1]}",
         "--rest-url", "", "--duration", "60", "--plain", "--summary", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    ) as proc:  # fmt: skip
        try:
            # no REST: the listing check would be the first to hang on the listener
            client, _ = listener.accept()  # the gateway is connecting: its upgrade hangs
            with client:  # kept open until the run ended: a close would be a reconnect
                proc.send_signal(signum)
                rest, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == status, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"ended_by={ended_by} went_live=no" in rest
    summary = json.loads(out.read_text())
    assert summary["ended_by"] == ended_by and "while connecting" in summary["error"]
    assert never_live(summary)["state"] == "connecting"


def test_a_second_ctrl_c_ends_the_process_at_once_even_when_the_run_is_stuck(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    # The summary is written through out.json.tmp: a FIFO there (and no reader) blocks
    # that write, so after the first Ctrl-C the run is stuck in a blocking call.
    os.mkfifo(tmp_path / "out.json.tmp")
    with silent_port() as listener, subprocess.Popen(
        [*GATEWAY, "run", "--url", f"ws://127.0.0.1:{listener.getsockname()[1]}",
         "--duration", "60", "--plain", "--summary", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    ) as proc:  # fmt: skip
        try:
            first_line(proc, "gateway: exchange ")
            proc.send_signal(signal.SIGINT)
            assert first_line(proc, "summary error never went live: interrupted")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGINT, err
    assert not out.exists()


def test_run_against_an_exchange_refusing_connections_ends_at_the_duration(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    with subprocess.Popen(
        [*GATEWAY, "simulate", "--port", "0", "--no-rest", "--fault", "0:refuse 600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    ) as sim:  # fmt: skip
        try:
            url = first_line(sim, "ws_url=").split()[0].removeprefix("ws_url=")
            assert "refuse 600: ok" in first_line(sim, "fault at ")
            proc = gateway("run", "--url", url, "--duration", "3", "--plain",
                           "--symbols", "BTCUSDT", "--summary", str(out), timeout=20)  # fmt: skip
        finally:
            sim.send_signal(signal.SIGINT)
            try:
                sim.communicate(timeout=15)
            except subprocess.TimeoutExpired:  # SIGINT ignored (a background job's lot)
                sim.kill()
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["ended_by"] == "duration"
    conn = never_live(summary)
    assert conn["reconnects"] >= 1 and "503" in conn["last_error"]


def test_run_that_runs_out_of_attempts_before_going_live_ends_by_error(tmp_path: Path) -> None:
    config = tmp_path / "quick.toml"
    config.write_text("[gateway.reconnect]\ninitial = 0.05\ncap = 0.1\n")
    out = tmp_path / "out.json"
    proc = gateway("run", "--url", f"ws://127.0.0.1:{dead_port()}", "--config", str(config),
                   "--max-attempts", "2", "--plain", "--summary", str(out), timeout=20)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["ended_by"] == "error" and summary["went_live"] is False
    assert "gave up after 2 attempts" in summary["error"]
    [conn] = summary["connections"]
    assert (conn["state"], conn["reconnects"], conn["went_live"]) == ("failed", 1, False)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[gateway]\nsymbols = ['BTCUSDT']\nreconect = 1\n",
         ["unknown key reconect", "allowed:", "reconnect", "symbols"]),
        ("[gateway]\nsymbols = ['BTCUSDT']\ncandle_buffer = 'big'\n",
         ["candle_buffer", "expected an integer"]),
        ("[gateway]\nsymbols = ['BTCUSDT']\nstreams = ['kline_7m']\n",
         ["streams", "kline_7m", "allowed: 1s, 1m, 3m"]),
    ],
)  # fmt: skip
def test_a_bad_config_file_exits_2_naming_the_key_without_a_traceback(
    tmp_path: Path, toml: str, words: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    proc = gateway("run", "--config", str(path), "--plain", "--duration", "1")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("gateway run: ") and len(proc.stderr.splitlines()) == 1
    for word in words:
        assert word in proc.stderr


def test_the_example_config_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = gateway("run", "--config", "examples/gateway.toml", "--duration", "1", "--plain",
                   "--summary", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert list(summary["symbols"]) == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]


def test_help_lists_every_command_and_each_shows_its_defaults() -> None:
    top = gateway("--help")
    assert top.returncode == 0
    for command in ("run", "record", "replay", "simulate"):
        assert re.search(rf"^\s+{command}\s+\S", top.stdout, re.M), command
        sub = gateway(command, "--help")
        assert sub.returncode == 0 and "(default:" in sub.stdout, command


def _recorded_counts(recording: str) -> dict[str, dict[str, int]]:
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for frame in stream_frames(recording):
        counts[frame.event.symbol][type(frame.event).__name__] += 1
    return {sym: dict(c) for sym, c in counts.items()}


def test_run_against_a_replay_of_each_real_recording_counts_every_event(tmp_path: Path) -> None:
    servers = {
        rec: subprocess.Popen(
            [*GATEWAY, "replay", str(recorded_dir() / rec / "stream.txt"), "--speed", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for rec in RECORDINGS
    }
    try:
        runs = {}
        for rec, server in servers.items():
            assert server.stdout is not None
            url = next(line for line in server.stdout if line.startswith("ws_url="))[7:].strip()
            streams = load_recording(recorded_dir() / rec / "stream.txt").streams
            symbols = ",".join(dict.fromkeys(s.split("@")[0].upper() for s in streams))
            runs[rec] = subprocess.Popen(
                [*GATEWAY, "run", "--url", url, "--symbols", symbols, "--streams",
                 RECORDED_STREAMS, "--duration", "3", "--plain", "--status-every", "0",
                 "--summary", str(tmp_path / f"{rec}.json")],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            )  # fmt: skip
        for rec, run in runs.items():
            _, err = run.communicate(timeout=30)
            assert run.returncode == 0, err
            summary = json.loads((tmp_path / f"{rec}.json").read_text())
            got = {s: v["events"] for s, v in summary["symbols"].items() if v["events"]}
            assert got == _recorded_counts(rec), rec
            assert summary["router"]["malformed"] == 0 and summary["router"]["unknown"] == 0
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGINT)
            out, err = server.communicate(timeout=15)
            assert server.returncode == 0, err
            assert "replay: finished" in out


def test_record_writes_rotated_gzip_files_that_replay_as_a_recording(tmp_path: Path) -> None:
    out = tmp_path / "rec.txt.gz"
    proc = gateway("record", "--out", str(out), "--max-bytes", "20k", "--duration", "1.5",
                   "--plain", "--status-every", "0", "--symbols", "BTCUSDT,ETHUSDT",
                   "--summary", str(tmp_path / "s.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"^recorded (\d+) frames to (.*)$", proc.stdout, re.M)
    assert m is not None
    files = m.group(2).split(", ")
    assert files[0] == str(out) and len(files) >= 2 and files[1] == f"{out}.1"
    merged = load_recording(merge_recordings(files, tmp_path / "merged.txt"))
    assert len(merged.frames) == int(m.group(1))
    assert merged.url.startswith("ws://127.0.0.1:") and "btcusdt@trade" in merged.url
    summary = json.loads((tmp_path / "s.json").read_text())
    assert len(merged.frames) >= summary["router"]["frames"] - 1  # all but the SUBSCRIBE reply
    assert {f.stream.split("@")[0] for f in merged.frames} == {"btcusdt", "ethusdt"}


def test_empty_streams_on_the_command_line_exit_2_with_a_clear_message() -> None:
    proc = gateway("run", "--streams", "", "--duration", "1", "--plain")
    assert proc.returncode == 2, proc.stderr
    assert "gateway run: --streams must name at least one stream suffix" in proc.stderr
    assert "Traceback" not in proc.stderr


CLI_DOC = (ROOT / "docs" / "cli.md").read_text()


@contextmanager
def serving(
    *argv: str, seen: list[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``gateway simulate`` or ``replay`` process and the ``gateway run`` command it
    suggests (its ``try:`` line); stopped with SIGINT at the end. Its standard output
    goes to ``seen``, whole once the block ends."""
    with subprocess.Popen(
        [*GATEWAY, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    ) as server:  # fmt: skip
        try:
            line = first_line(server, "try: ", seen=seen)
            assert line.startswith(("try: gateway run --url ws://127.0.0.1:",
                                    "try: gateway run --url wss://127.0.0.1:")), line
            yield server, line[len("try: ") :].strip()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                rest, _ = server.communicate(timeout=15)
                if seen is not None:
                    seen.extend(rest.splitlines())
            finally:
                server.kill()


def run_suggested(command: str, tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    """Run the suggested ``gateway run`` (3 s) behind a network guard that refuses (and
    the test then fails on) any look-up or connect not to loopback; its exit status,
    stderr and JSON summary."""
    words = shlex.split(command)
    assert words[:2] == ["gateway", "run"], words
    out = tmp_path / "suggested.json"
    proc = subprocess.run(
        [*GUARDED_GATEWAY, *words[1:], *extra, "--duration", "3", "--plain",
         "--status-every", "0", "--log-level", "INFO", "--summary", str(out)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )  # fmt: skip
    refused = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"kind": "refused"')]
    assert not refused, f"the run asked a host other than 127.0.0.1: {refused}"
    summary = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, proc.stderr, summary


def test_the_run_command_simulate_prints_goes_live_and_syncs_the_order_books(
    tmp_path: Path,
) -> None:
    with serving("simulate", "--port", "0", "--rest-port", "0", "--symbols", "BTCUSDT,ETHUSDT",
                 "--log-level", "WARNING") as (_, command):  # fmt: skip
        assert "--symbols BTCUSDT,ETHUSDT" in command and "depth@100ms" in command
        assert "--rest-url" not in command  # REST on the stream port: the derived one
        status, err, summary = run_suggested(command, tmp_path)
        assert status == 0, err
        assert summary["went_live"] is True and summary["error"] is None, summary
        for sym in ("BTCUSDT", "ETHUSDT"):
            assert f"{sym}: order book synced at" in err, err
        assert "symbols not checked" not in err and "api.binance.com" not in err
        # the same exchange refuses a symbol it does not list, naming it (exit 2)
        words = command.replace("BTCUSDT,ETHUSDT", "BTCUSDT,FOOBARUSDT")
        status, err, _ = run_suggested(words, tmp_path)
        assert status == 2, err
        assert "gateway run: symbols: not listed on http://127.0.0.1:" in err
        assert "'FOOBARUSDT'" in err and "Traceback" not in err


def test_the_run_command_simulate_tls_prints_trusts_its_ca_and_goes_live(tmp_path: Path) -> None:
    with serving("simulate", "--tls", "--port", "0", "--rest-port", "0", "--symbols", "BTCUSDT",
                 "--log-level", "WARNING") as (_, command):  # fmt: skip
        assert "--url wss://127.0.0.1:" in command and "--ca-file " in command
        status, err, summary = run_suggested(command, tmp_path)
        assert status == 0, err
        assert summary["went_live"] is True and summary["error"] is None, summary
        assert "BTCUSDT: order book synced at" in err, err
        # without the CA: a clear certificate error, never a hang
        words = shlex.split(command)
        at = words.index("--ca-file")
        status, err, summary = run_suggested(shlex.join(words[:at] + words[at + 2 :]), tmp_path,
                                             "--max-attempts", "1")  # fmt: skip
        assert status != 0 and "certificate verify failed" in err.lower(), err


@pytest.mark.parametrize("recording", RECORDINGS)
def test_the_run_command_replay_prints_syncs_every_book_without_asking_any_other_host(
    tmp_path: Path, recording: str
) -> None:
    path = recorded_dir() / recording / "stream.txt"
    depth = {s.split("@")[0].upper() for s in load_recording(path).streams if "@depth" in s}
    printed: list[str] = []
    with serving("replay", str(path), "--speed", "0", seen=printed) as (_, command):
        assert "--rest-url" not in command  # REST (the recorded snapshots) on the same port
        status, err, summary = run_suggested(command, tmp_path)
    if f"$ gateway replay tests/data/binance-recorded/{recording}/" in CLI_DOC:  # its transcript
        shown = CLI_DOC.split(f"$ gateway replay tests/data/binance-recorded/{recording}/")[1]
        lines = shown.split("```")[0].strip().splitlines()[1:]
        missing = [ln for ln in lines if not any(shape(ln).match(out) for out in printed)]
        assert lines and not missing, (missing, printed)
    assert status == 0, err
    assert summary["went_live"] is True and summary["error"] is None, summary
    assert sum(sum(s["events"].values()) for s in summary["symbols"].values()) > 0
    assert depth and all(f"{sym}: order book synced at" in err for sym in depth), err
    assert "api.binance.com" not in err and "symbols not checked" not in err


def test_the_run_command_simulate_replay_prints_names_the_recording_and_syncs_its_books(
    tmp_path: Path,
) -> None:
    """``gateway simulate --replay FILE`` lists the recording's symbols, serves the
    ``rest.txt`` beside it and suggests a run of the recording's own streams."""
    path = recorded_dir() / "2021-10-12" / "stream.txt"
    rec = load_recording(path)
    depth = {s.split("@")[0].upper() for s in rec.streams if "@depth" in s}
    symbols = list(dict.fromkeys(s.split("@")[0].upper() for s in rec.streams))
    with serving("simulate", "--replay", str(path), "--speed", "0", "--port", "0",
                 "--log-level", "WARNING") as (_, command):  # fmt: skip
        assert f"--symbols {','.join(symbols)} " in command, command
        suffixes = dict.fromkeys(s.split("@", 1)[1] for s in rec.streams)
        assert command.endswith(f"--streams {','.join(suffixes)}"), command
        assert "BTCUSDT" not in command, command
        status, err, summary = run_suggested(command, tmp_path)
    assert status == 0, err
    assert summary["went_live"] is True and summary["error"] is None, summary
    assert depth and all(f"{sym}: order book synced at" in err for sym in depth), err
    assert "api.binance.com" not in err and "symbols not checked" not in err


def test_every_option_of_every_command_shows_its_default_in_help() -> None:
    import argparse

    from gateway.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in sub.choices.items():
        text = " ".join(command.format_help().split())
        for action in command._actions:
            if not action.option_strings or action.nargs == 0:
                continue  # positional, or a flag (off unless given)
            help_text = " ".join(command._get_formatter()._expand_help(action).split())
            assert "default" in help_text or "(required)" in help_text, (name, action.dest)
            assert help_text in text
            if action.default not in (None, [], argparse.SUPPRESS):  # the value itself, shown
                shown = action.default
                if isinstance(shown, (list, tuple)):
                    shown = ",".join(map(str, shown))
                spaced = str(shown).replace(",", ", ")  # a long list wraps at its spaces
                assert str(shown) in help_text or spaced in help_text, (name, action.dest)

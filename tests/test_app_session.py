"""One run, start to finish: every outcome ends with a summary, connecting included.

The runs use the real gateway against loopback endpoints that never go live (a dead
port, a listener that never answers the upgrade, the embedded exchange refusing
handshakes) on trio's MockClock, so a 3-second ``--duration`` takes milliseconds.
"""

from __future__ import annotations

import io
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway.app.options import RunPlan, resolve_plan
from gateway.app.output import PlainOutput
from gateway.app.session import RunResult, Stopper, exit_status, run_session, stop_signals
from gateway.app.summary import ENDED_BY, SUMMARY_FORMAT
from gateway.cli import build_parser
from gateway.simulator import open_simulator
from tests._loopback import dead_port
from tests._simclient import bounded


def plan_of(*argv: str) -> RunPlan:
    return resolve_plan(build_parser().parse_args(["run", *argv]))


@asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A loopback port that accepts TCP and then never says a word (no HTTP upgrade)."""
    held: list[trio.SocketStream] = []

    async def hold(stream: trio.SocketStream) -> None:
        held.append(stream)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, hold, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def run(plan: RunPlan, tmp_path: Path) -> tuple[RunResult, dict[str, Any], str]:
    """Run ``plan`` to its end; the result, the written summary, the printed lines."""
    out = io.StringIO()
    path = tmp_path / "summary.json"
    result = await run_session(plan, PlainOutput(out, every=0), summary_path=str(path))
    written = json.loads(path.read_text())
    assert written == result.summary
    return result, written, out.getvalue()


def assert_never_live(summary: dict[str, Any]) -> None:
    assert summary["format"] == SUMMARY_FORMAT == 2
    assert summary["went_live"] is False and summary["symbols"] == {}
    assert summary["error"].startswith("never went live: ")
    assert [c["id"] for c in summary["connections"]] == ["conn-1"]
    conn = summary["connections"][0]
    assert conn["went_live"] is False and conn["frames"] == 0 and conn["connects"] == 0


@bounded(60)
async def test_a_dead_port_ends_at_the_duration_with_a_never_live_summary(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    port = dead_port()
    result, summary, printed = await run(
        plan_of("--url", f"ws://127.0.0.1:{port}", "--duration", "3"), tmp_path
    )
    assert (result.ended_by, result.exit_code, result.went_live) == ("duration", 1, False)
    assert_never_live(summary)
    assert summary["ended_by"] == "duration" and 3.0 <= summary["duration_s"] < 3.5
    assert "still connecting when --duration (3 s) ended; last error: " in summary["error"]
    conn = summary["connections"][0]
    assert conn["state"] == "reconnecting" and conn["reconnects"] >= 1
    assert f"127.0.0.1:{port}" in conn["last_error"]
    assert len(summary["errors"]) == conn["reconnects"]
    assert "summary run " in printed and "ended_by=duration went_live=no" in printed
    assert "summary conn-1 state=reconnecting went_live=no connects=0" in printed
    assert "summary error never went live" in printed


@bounded(60)
async def test_running_out_of_attempts_before_going_live_ends_by_error(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    port = dead_port()
    result, summary, _ = await run(
        plan_of("--url", f"ws://127.0.0.1:{port}", "--max-attempts", "2"), tmp_path
    )
    assert (result.ended_by, result.exit_code) == ("error", 1)
    assert summary["went_live"] is False and summary["ended_by"] == "error"
    assert "gave up after 2 attempts" in summary["error"]
    conn = summary["connections"][0]
    assert (conn["state"], conn["reconnects"], conn["went_live"]) == ("failed", 1, False)


@bounded(60)
async def test_a_listener_that_never_answers_the_upgrade_ends_at_the_duration(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    async with silent_listener() as port:
        result, summary, _ = await run(
            plan_of("--url", f"ws://127.0.0.1:{port}", "--rest-url", "", "--duration", "3"),
            tmp_path,  # no REST: the listing check would hang on the listener first
        )
    assert (result.ended_by, result.exit_code) == ("duration", 1)
    assert_never_live(summary)
    # The connect timeout (10 s) is longer than the run: no attempt had failed.
    assert summary["error"].endswith("no attempt had failed yet")
    assert summary["connections"][0]["state"] == "connecting"
    assert summary["connections"][0]["reconnects"] == 0


@bounded(60)
async def test_an_exchange_refusing_handshakes_ends_at_the_duration(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    async with open_simulator(symbols=("BTCUSDT",), clock="virtual", pacing="manual",
                              rest=False) as sim:  # fmt: skip
        sim.control.refuse_connections(3600)
        result, summary, _ = await run(
            plan_of("--url", sim.ws_url, "--symbols", "BTCUSDT", "--duration", "3"), tmp_path
        )
    assert (result.ended_by, result.exit_code) == ("duration", 1)
    assert_never_live(summary)
    conn = summary["connections"][0]
    assert conn["reconnects"] >= 1 and "503" in conn["last_error"]


@bounded(60)
async def test_credentials_in_the_url_never_reach_the_summary_or_the_output(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    port = dead_port()
    url = f"ws://trader:s3cret@127.0.0.1:{port}"
    _, summary, printed = await run(plan_of("--url", url, "--duration", "1"), tmp_path)
    assert summary["url"] == f"ws://trader:***@127.0.0.1:{port}"
    text = json.dumps(summary) + printed
    assert "s3cret" not in text


@bounded(120)
async def test_a_live_run_ends_at_the_duration_and_says_it_went_live(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    async with open_simulator(symbols=("BTCUSDT",), clock="virtual", rest=False) as sim:
        result, summary, _ = await run(
            plan_of("--url", sim.ws_url, "--symbols", "BTCUSDT", "--streams", "trade",
                    "--duration", "2"),
            tmp_path,
        )  # fmt: skip
    assert (result.ended_by, result.exit_code, result.went_live) == ("duration", 0, True)
    assert summary["went_live"] is True and summary["error"] is None
    assert summary["symbols"]["BTCUSDT"]["events"]["Trade"] > 0
    conn = summary["connections"][0]
    assert (conn["state"], conn["connects"], conn["went_live"]) == ("live", 1, True)
    assert conn["last_error"] is None


@pytest.mark.parametrize(
    ("ended_by", "went_live", "status"),
    [
        ("duration", True, 0),
        ("interrupt", True, 0),
        ("terminate", True, 0),
        ("error", True, 1),
        ("error", False, 1),
        ("duration", False, 1),
        ("interrupt", False, 130),
        ("terminate", False, 143),
    ],
)
def test_exit_status_says_whether_the_run_went_live_and_ended_as_asked(
    ended_by: str, went_live: bool, status: int
) -> None:
    assert ended_by in ENDED_BY
    assert exit_status(ended_by, went_live) == status


async def test_the_first_signal_restores_the_default_actions_at_once_and_stops_starting() -> None:
    restored: list[bool] = []
    before = signal.getsignal(signal.SIGTERM)
    stopper = Stopper()
    with trio.CancelScope() as starting:
        stopper.starting = starting
        with stop_signals(stopper, restore=lambda: restored.append(True)):
            signal.raise_signal(signal.SIGTERM)
            assert restored == [True]  # in the handler itself, before the trio loop runs
            with trio.fail_after(5):  # the signal must cancel ``starting`` well before this
                await trio.sleep_forever()
    assert starting.cancelled_caught and stopper.stop.is_set()
    assert stopper.reason == "terminate"
    assert signal.getsignal(signal.SIGTERM) is before


async def test_a_signal_while_streaming_only_sets_the_stop() -> None:
    stopper = Stopper()
    with stop_signals(stopper, restore=lambda: None), trio.fail_after(5):
        signal.raise_signal(signal.SIGINT)
        await stopper.stop.wait()
    assert stopper.reason == "interrupt" and stopper.starting is None


def test_the_first_stop_request_wins_and_is_announced_once() -> None:
    told: list[str] = []
    stopper = Stopper(on_stop=told.append)
    stopper.request("terminate")
    stopper.request("interrupt")
    assert stopper.reason == "terminate" and told == ["terminate"]


@bounded(60)
async def test_a_fatal_error_after_going_live_still_writes_the_summary(
    autojump_clock: MockClock, tmp_path: Path
) -> None:
    async with open_simulator(symbols=("BTCUSDT",), clock="virtual", pacing="manual") as sim:
        plan = plan_of("--url", sim.ws_url, "--rest-url", sim.rest_url, "--symbols", "BTCUSDT",
                       "--streams", "trade", "--max-attempts", "2")  # fmt: skip
        outcome: list[tuple[RunResult, dict[str, Any], str]] = []

        async def run_it() -> None:
            outcome.append(await run(plan, tmp_path))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_it)
            await sim.control.wait_for(lambda st: any(st.subscriptions.values()))
            await trio.testing.wait_all_tasks_blocked()  # the SUBSCRIBE answered: live
            sim.control.refuse_connections(3600)  # from now on: gone for good
            sim.control.close_connections(abrupt=True)
    ((result, summary, printed),) = outcome
    assert (result.ended_by, result.exit_code, result.went_live) == ("error", 1, True)
    assert summary["ended_by"] == "error" and summary["went_live"] is True
    assert "gave up after 2 attempts" in summary["error"]
    assert "BTCUSDT" in summary["symbols"]  # the live phase's figures are in it
    assert "summary error " in printed

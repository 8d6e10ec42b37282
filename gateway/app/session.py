"""One run, start to finish: exchange (embedded or real), gateway, output, summary.

`run_session` owns the signal handling: SIGINT (Ctrl-C) and SIGTERM end the run
cleanly, with its summary, instead of raising `KeyboardInterrupt` in the middle of a
nursery. A second signal, or a signal before the gateway is streaming, cancels at once.
"""

from __future__ import annotations

import datetime
import math
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from gateway.api import Gateway, open_gateway
from gateway.app.demo import run_demo_position
from gateway.app.options import RunPlan
from gateway.app.output import Output
from gateway.app.snapshot import SnapshotTaker
from gateway.app.summary import build_summary, write_summary
from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.errors import ConfigError, GatewayError
from gateway.runtime.router import FrameTap
from gateway.simulator import Simulator, open_simulator

__all__ = ["RunResult", "run_session"]


@attrs.define
class RunResult:
    """How a run ended: its summary (None if the gateway never started) and exit status."""

    summary: dict[str, Any] | None = None
    ended_by: str = "duration"  #: duration, signal or error
    error: str | None = None
    exit_code: int = 0
    stats: dict[str, Any] | None = None  #: the gateway's stats when the run stopped
    elapsed: float | None = None  #: seconds from start to stop


@attrs.define
class _Stopper:
    """Turns signals into a clean stop while streaming, a cancel otherwise."""

    scope: trio.CancelScope
    stop: trio.Event = attrs.field(factory=trio.Event)
    streaming: bool = False
    signalled: bool = False

    async def watch(self, signals: Any) -> None:
        async for _ in signals:
            self.signalled = True
            if self.streaming and not self.stop.is_set():
                self.stop.set()
            else:
                self.scope.cancel()


@asynccontextmanager
async def _exchange(plan: RunPlan) -> AsyncIterator[tuple[GatewayConfig, Simulator | None]]:
    """The configuration to run with, and the embedded exchange if the plan wants one."""
    if not plan.embedded:
        yield plan.config, None
        return
    symbols = plan.config.all_symbols()
    async with open_simulator(symbols=symbols, seed=plan.seed, rate=plan.rate) as sim:
        config = attrs.evolve(plan.config, url=sim.ws_url, rest_url=sim.rest_url or "")
        yield config, sim


async def run_session(
    plan: RunPlan,
    output: Output,
    *,
    summary_path: str | None = None,
    tap_factory: Callable[[GatewayConfig], FrameTap] | None = None,
) -> RunResult:
    """Run until ``plan.duration`` ends or a signal arrives; print and return the summary.

    Gateway errors that end the run (`ConnectionFailed`, `RestartIntensityExceeded`)
    are reported in the summary and give exit status 1; `ConfigError` propagates.
    ``tap_factory(config)`` may return a frame tap (recording); it is called once the
    final configuration (with the embedded exchange's URL) is known.
    """
    result = RunResult()
    tracker = RunTracker(on_line=output.line)
    started_wall = datetime.datetime.now(datetime.UTC)
    t0 = trio.current_time()
    holder: list[Gateway] = []
    failure: Exception | None = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as watchers:
            with trio.CancelScope() as scope:
                stopper = _Stopper(scope)
                watchers.start_soon(stopper.watch, signals)
                try:
                    await _run(plan, output, tracker, stopper, holder, result, tap_factory, t0)
                except ConfigError as exc:
                    failure = exc  # re-raised below, not wrapped in the nursery's group
                except GatewayError as exc:
                    result.ended_by, result.error, result.exit_code = "error", str(exc), 1
                except OSError as exc:
                    failure = exc
            watchers.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if stopper.signalled and result.ended_by != "error":
        result.ended_by = "signal"
    if holder:
        config = holder[0].config
        stats = result.stats if result.stats is not None else holder[0].stats()
        elapsed = result.elapsed if result.elapsed is not None else trio.current_time() - t0
        result.summary = build_summary(
            stats, tracker, url=config.url, embedded=plan.embedded,
            stream_names=config.stream_names(), started_at=started_wall.isoformat(),
            duration_s=elapsed, ended_by=result.ended_by, error=result.error,
        )  # fmt: skip
        output.final(result.summary)
        if summary_path is not None:
            write_summary(result.summary, summary_path)
    elif result.error is not None:
        output.message(f"error: {result.error}")
    return result


async def _run(
    plan: RunPlan, output: Output, tracker: RunTracker, stopper: _Stopper,
    holder: list[Gateway], result: RunResult,
    tap_factory: Callable[[GatewayConfig], FrameTap] | None, t0: float,
) -> None:  # fmt: skip
    async with _exchange(plan) as (config, sim):
        where = "embedded exchange" if sim is not None else "exchange"
        output.message(f"gateway: {where} {config.url}")
        tap = tap_factory(config) if tap_factory is not None else None
        async with open_gateway(config, frame_tap=tap) as gw:
            holder.append(gw)
            tracker.attach(gw)
            names = config.stream_names()
            output.message(
                f"gateway: {len(config.all_symbols())} symbols, {len(names)} streams "
                f"({', '.join(config.streams)}) on {len(gw.connections)} connection(s)"
            )
            start = time.monotonic()
            taker = SnapshotTaker(gw, tracker, f"gateway · {config.url}")
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(tracker.run)
                    await nursery.start(
                        output.run,
                        lambda: taker.take(time.monotonic(), time.monotonic() - start),
                    )
                    if plan.demo_position and sim is not None:
                        nursery.start_soon(
                            run_demo_position, gw, sim.control, config.all_symbols()[0],
                            _announcer(output, tracker),
                        )  # fmt: skip
                    stopper.streaming = True
                    with trio.move_on_after(plan.duration or math.inf):
                        await stopper.stop.wait()
                    nursery.cancel_scope.cancel()
            finally:
                stopper.streaming = False
                tracker.take_pending()
                tracker.close()
            result.ended_by = "signal" if stopper.stop.is_set() else "duration"
            result.stats = gw.stats()  # before leaving: the actors and connections are up
            result.elapsed = trio.current_time() - t0


def _announcer(output: Output, tracker: RunTracker) -> Callable[[str], None]:
    def announce(text: str) -> None:
        tracker.note(text)
        output.line(text)

    return announce

"""One run, start to finish: exchange (embedded or real), gateway, output, summary.

Every run ends with a summary, whatever ends it and in whichever phase: ``--duration``
counts from the start, connecting included; the first SIGINT (Ctrl-C) or SIGTERM
stops the run in order, also while it is still connecting; a gateway error ends it;
a run that never went live is summarised as such. After the first signal both
signals get their default action back, so a second one ends the process at once,
whatever the run is doing (see docs/cli.md, "Exit status").
"""

from __future__ import annotations

import datetime
import math
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

import attrs
import trio

from gateway.api import Gateway, open_gateway
from gateway.app.connecting import ConnectWatch
from gateway.app.demo import run_demo_position
from gateway.app.options import RunPlan
from gateway.app.output import Output
from gateway.app.snapshot import SnapshotTaker
from gateway.app.summary import build_summary, write_summary
from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.core.redact import redact_url
from gateway.errors import ConfigError, GatewayError
from gateway.simulator import Simulator, open_simulator
from gateway.stats import GatewayStats

__all__ = ["STOP_SIGNALS", "RunResult", "Stopper", "exit_status", "run_session", "stop_signals"]

#: The signals that stop a run, and the ``ended_by`` word for each.
STOP_SIGNALS: dict[int, str] = {signal.SIGINT: "interrupt", signal.SIGTERM: "terminate"}

#: ``tap(frame, receive_ns)``: what ``open_gateway(frame_tap=...)`` takes (the recorder's).
FrameTap = Callable[[str | bytes, int], None]


def exit_status(ended_by: str, went_live: bool) -> int:
    """The process exit status for a run's outcome (the table in docs/cli.md).

    0 when the gateway went live and the run ended at ``--duration`` or on a signal;
    1 for a gateway error, or ``--duration`` over before it ever went live; 128 + the
    signal's number (130 for SIGINT, 143 for SIGTERM) for a signal before it went live.
    """
    if ended_by == "error":
        return 1
    if went_live:
        return 0
    for signum, word in STOP_SIGNALS.items():
        if word == ended_by:
            return 128 + signum
    return 1


@attrs.define
class RunResult:
    """How a run ended: its summary, what ended it, the fatal error, the exit status."""

    summary: dict[str, Any] | None = None
    ended_by: str = "duration"  #: one of `gateway.app.summary.ENDED_BY`
    error: str | None = None
    exit_code: int = 0
    went_live: bool = False  #: every connection was live and subscribed at some point


def _default_actions() -> None:
    """From now on SIGINT and SIGTERM do what they do by default: end the process."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


@attrs.define
class Stopper:
    """Stops a run in order: leaves the start-up phase at once, or ends the streaming one.

    ``starting`` is the scope of the phase before the gateway is live: a stop cancels
    it. Once live the run waits on ``stop`` instead.
    """

    stop: trio.Event = attrs.field(factory=trio.Event)
    reason: str | None = None  #: ``interrupt`` or ``terminate`` once a signal came
    starting: trio.CancelScope | None = None
    on_stop: Callable[[str], None] | None = None  #: told the reason of the first stop

    def request(self, reason: str) -> None:
        """Stop the run (the first reason is kept; later requests change nothing)."""
        if self.reason is not None:
            return
        self.reason = reason
        self.stop.set()
        if self.starting is not None:
            self.starting.cancel()
        if self.on_stop is not None:
            self.on_stop(reason)


@contextmanager
def stop_signals(
    stopper: Stopper, restore: Callable[[], None] = _default_actions
) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM ask ``stopper`` for an orderly stop.

    The handler gives both signals their default action back (``restore``) in the
    handler itself, before the trio loop hears of it, so a second signal ends the
    process even when the run is stuck in a blocking call. Enter it in trio's thread.
    """
    token = trio.lowlevel.current_trio_token()

    def handler(signum: int, frame: FrameType | None) -> None:
        restore()
        token.run_sync_soon(stopper.request, STOP_SIGNALS.get(signum, "interrupt"))

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


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
    """Run until ``plan.duration`` (from the start) ends, a signal arrives or the gateway
    gives up; print the summary, write it to ``summary_path``, and return it.

    Gateway errors that end the run (`ConnectionFailed`, `SymbolFailed`)
    are reported in the summary; `ConfigError` and `OSError` (the embedded exchange or
    a recording cannot start) propagate. ``tap_factory(config)`` may return a frame tap
    (recording); it is called once the final configuration (with the embedded
    exchange's URL) is known.
    """
    run = _Run(plan, output, RunTracker(on_line=output.line), tap_factory)
    started_wall = datetime.datetime.now(datetime.UTC)
    stopper = Stopper(on_stop=lambda reason: output.message(
        f"gateway: stopping ({reason}); a second signal ends the process at once"
    ))  # fmt: skip
    with stop_signals(stopper):
        await run.run(stopper)
        result = run.result(stopper)
        result.summary = build_summary(
            run.stats(), run.tracker, url=run.url, embedded=plan.embedded,
            stream_names=(run.config or plan.config).stream_names(),
            started_at=started_wall.isoformat(), duration_s=run.elapsed(),
            ended_by=result.ended_by, error=result.error, went_live=result.went_live,
        )  # fmt: skip
        output.final(result.summary)
        if summary_path is not None:
            write_summary(result.summary, summary_path)
    return result


class _Run:
    """One run's phases and what they leave behind for the summary."""

    def __init__(
        self, plan: RunPlan, output: Output, tracker: RunTracker,
        tap_factory: Callable[[GatewayConfig], FrameTap] | None,
    ) -> None:  # fmt: skip
        self.plan = plan
        self.output = output
        self.tracker = tracker
        self.tap_factory = tap_factory
        self.t0 = trio.current_time()
        self.deadline = self.t0 + (plan.duration if plan.duration is not None else math.inf)
        self.config: GatewayConfig | None = None  #: final, once the exchange is known
        self.url = "" if plan.embedded else plan.config.url
        self.watch = ConnectWatch(plan.config, tracker)
        self.went_live = False
        self.ended_by: str | None = None  #: set where the run ends; else decided at the end
        self.error: str | None = None
        self._stats: GatewayStats | None = None  #: the gateway's, taken before it closed
        self._elapsed: float | None = None

    async def run(self, stopper: Stopper) -> None:
        """Start the exchange and the gateway within the deadline, then stream until it."""
        with trio.CancelScope(deadline=self.deadline) as starting:
            stopper.starting = starting
            try:
                await self._start(stopper, starting)
            except ConfigError:
                raise
            except GatewayError as exc:
                self.ended_by, self.error = "error", str(exc)
            finally:
                stopper.starting = None
        if self._elapsed is None:
            self._elapsed = trio.current_time() - self.t0

    async def _start(self, stopper: Stopper, starting: trio.CancelScope) -> None:
        async with _exchange(self.plan) as (config, sim):
            self.config, self.url = config, config.url
            where = "embedded exchange" if sim is not None else "exchange"
            rest = config.resolved_rest_url()
            self.output.message(f"gateway: {where} {redact_url(config.url)} "
                                f"(REST {redact_url(rest) if rest else 'none'})")  # fmt: skip
            tap = self.tap_factory(config) if self.tap_factory is not None else None
            async with open_gateway(
                config, frame_tap=tap, on_error=self.watch.on_error, on_start=self.watch.attach
            ) as gw:
                starting.deadline = math.inf  # live: the streaming phase keeps the deadline
                stopper.starting = None
                self.went_live = self.watch.live = True
                try:
                    if not starting.cancel_called:  # no stop came while going live
                        await self._stream(gw, config, sim, stopper)
                finally:
                    self._stats = gw.stats()  # before leaving: the actors and connections are up
                    self._elapsed = trio.current_time() - self.t0

    async def _stream(
        self, gw: Gateway, config: GatewayConfig, sim: Simulator | None, stopper: Stopper
    ) -> None:
        """The live phase: output, tracker and demo until the deadline or a stop."""
        tracker, output = self.tracker, self.output
        tracker.attach(gw)
        names = config.stream_names()
        output.message(
            f"gateway: {len(config.all_symbols())} symbols, {len(names)} streams "
            f"({', '.join(config.streams)}) on {len(gw.stats().connections)} connection(s)"
        )
        start = time.monotonic()
        taker = SnapshotTaker(gw, tracker, f"gateway · {redact_url(config.url)}")
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(tracker.run)
                await nursery.start(
                    output.run, lambda: taker.take(time.monotonic(), time.monotonic() - start)
                )
                if self.plan.demo_position and sim is not None:
                    nursery.start_soon(
                        run_demo_position, gw, sim.control, config.all_symbols()[0],
                        _announcer(output, tracker),
                    )  # fmt: skip
                with trio.move_on_at(self.deadline):
                    await stopper.stop.wait()
                self.ended_by = stopper.reason or "duration"
                nursery.cancel_scope.cancel()
        finally:
            tracker.take_pending()
            tracker.close()

    def result(self, stopper: Stopper) -> RunResult:
        """The outcome, once the run is over (a run that never went live has an error)."""
        ended_by = self.ended_by or stopper.reason or "duration"
        error = self.error
        if error is None and not self.went_live:
            error = self._never_live(ended_by)
        return RunResult(
            ended_by=ended_by, error=error, exit_code=exit_status(ended_by, self.went_live),
            went_live=self.went_live,
        )  # fmt: skip

    def _never_live(self, ended_by: str) -> str:
        if ended_by == "duration" and self.plan.duration is not None:
            why = f"still connecting when --duration ({self.plan.duration:g} s) ended"
        elif ended_by == "duration":
            why = "the run ended while connecting"
        else:
            why = f"{'interrupted' if ended_by == 'interrupt' else 'terminated'} while connecting"
        last = self.watch.last_error
        return f"never went live: {why}; " + (
            f"last error: {last}" if last is not None else "no attempt had failed yet"
        )

    def stats(self) -> GatewayStats:
        """The gateway's stats when it stopped, or what is known of a run never live."""
        return self._stats if self._stats is not None else self.watch.stats()

    def elapsed(self) -> float:
        """Seconds from the start to the stop."""
        return self._elapsed if self._elapsed is not None else trio.current_time() - self.t0


def _announcer(output: Output, tracker: RunTracker) -> Callable[[str], None]:
    def announce(text: str) -> None:
        tracker.note(text)
        output.line(text)

    return announce

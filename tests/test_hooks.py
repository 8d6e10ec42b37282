"""The close-hook runner (gateway/runtime/hooks.py), as a specification: every close
request ends in exactly one `CloseResult` for its symbol, whatever the user's hook does
(succeeds, raises, hangs past its timeout, is missing); a raising hook is reported to the
error subscribers; a full request queue never raises (the position stays due)."""

from __future__ import annotations

import logging

import pytest
import trio
from trio.testing import MockClock

from gateway import GatewayErrorEvent, Side, StopTriggered
from gateway.core.hook_protocol import CloseRequest, CloseResult
from gateway.core.positions import Position, StopTrigger
from gateway.runtime.hooks import HookRunner
from gateway.runtime.publish import Publisher


def request(pid: str = "BTCUSDT-1") -> CloseRequest:
    position = Position(pid, "BTCUSDT", Side.LONG, 100.0, 1.0, stop_price=95.0)
    return CloseRequest("BTCUSDT", StopTrigger(position, 94.0, 1.0, 1_767_225_600_000))


Delivered = list[tuple[str, CloseResult]]


async def run_one(hook: object, *, hook_timeout: float = 5.0) -> tuple[Delivered, Publisher]:
    """Run a `HookRunner` with ``hook`` for one request; the results it delivered."""
    publisher = Publisher()
    delivered: list[tuple[str, CloseResult]] = []
    done = trio.Event()

    def deliver(symbol: str, result: CloseResult) -> None:
        delivered.append((symbol, result))
        done.set()

    runner = HookRunner(hook, publisher, deliver, timeout=hook_timeout)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.request(request())
        with trio.fail_after(60):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert runner.calls == 1
    return delivered, publisher


async def test_a_hook_that_succeeds_gets_a_result_without_error(
    autojump_clock: MockClock,
) -> None:
    seen: list[StopTriggered] = []
    delivered, _ = await run_one(seen.append)
    assert delivered == [("BTCUSDT", CloseResult("BTCUSDT-1", None))]
    [stop] = seen
    assert (stop.position_id, stop.side, stop.stop_price, stop.trigger_price) == (
        "BTCUSDT-1", "LONG", 95.0, 94.0)  # fmt: skip


async def test_an_async_hook_is_awaited(autojump_clock: MockClock) -> None:
    finished: list[float] = []

    async def hook(stop: StopTriggered) -> None:
        await trio.sleep(1.5)
        finished.append(trio.current_time())

    delivered, _ = await run_one(hook)
    assert finished and delivered[0][1].error is None


async def test_a_raising_hook_is_a_failed_result_and_reported(autojump_clock: MockClock) -> None:
    def hook(stop: StopTriggered) -> None:
        raise ConnectionError("exchange said no")

    publisher = Publisher()
    errors = publisher.subscribe(None, [GatewayErrorEvent], 10)
    delivered: list[CloseResult] = []
    done = trio.Event()

    def deliver(_symbol: str, result: CloseResult) -> None:
        delivered.append(result)
        done.set()

    runner = HookRunner(hook, publisher, deliver)
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        runner.request(request())
        await done.wait()
        nursery.cancel_scope.cancel()
    [result] = delivered
    assert result.position_id == "BTCUSDT-1" and "exchange said no" in (result.error or "")
    assert runner.failures == 1
    [event] = errors.drain_nowait(10)
    assert (event.source, event.symbol) == ("close_hook", "BTCUSDT")
    assert isinstance(event.error, ConnectionError)


async def test_a_hook_that_hangs_is_cut_at_its_timeout(autojump_clock: MockClock) -> None:
    async def hook(stop: StopTriggered) -> None:
        await trio.sleep_forever()

    start = trio.current_time()
    delivered, _ = await run_one(hook, hook_timeout=3.0)
    assert trio.current_time() - start == pytest.approx(3.0, abs=0.01)
    assert "TooSlowError" in (delivered[0][1].error or "")


async def test_without_a_hook_every_close_succeeds(autojump_clock: MockClock) -> None:
    delivered, _ = await run_one(None)
    assert delivered == [("BTCUSDT", CloseResult("BTCUSDT-1", None))]


def test_a_full_request_queue_warns_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    runner = HookRunner(None, Publisher(), lambda *_: None, queue_size=1)
    runner.request(request("BTCUSDT-1"))
    with caplog.at_level(logging.WARNING):
        runner.request(request("BTCUSDT-2"))  # nobody serves the queue: it is full
    assert "close request queue full; BTCUSDT-2 will be retried" in caplog.text
    assert len(runner.requests) == 1

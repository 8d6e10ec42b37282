"""The hook runner: user close hooks run here, never inside a symbol actor.

A symbol actor whose stop fired sends a `CloseRequest`; the runner calls the user's
close hook (sync or async, under a timeout) in its own task and posts a `CloseResult`
back to the symbol's mailbox, where a failure schedules a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from actors import Mailbox, Overflow
from gateway.core.events import StopTriggered
from gateway.core.hook_protocol import CloseRequest, CloseResult
from gateway.runtime.publish import Publisher, invoke

log = logging.getLogger(__name__)

CloseHook = Callable[[StopTriggered], Awaitable[None] | None]


class HookRunner:
    """Owns the close-request queue; `run` is the actor."""

    def __init__(
        self,
        hook: CloseHook | None,
        publisher: Publisher,
        deliver: Callable[[str, CloseResult], None],
        *,
        timeout: float = 10.0,
        queue_size: int = 10_000,
    ) -> None:
        self.hook = hook
        self._publisher = publisher
        self._deliver = deliver
        self._timeout = timeout
        self.requests: Mailbox[CloseRequest] = Mailbox(queue_size, Overflow.DROP_NEWEST)
        self.calls = 0
        self.failures = 0

    def request(self, request: CloseRequest) -> None:
        """Queue a close; if the queue is full the position stays due and is retried."""
        if not self.requests.put_nowait(request):
            log.warning("close request queue full; %s will be retried",
                        request.trigger.position.id)  # fmt: skip

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run each requested hook in its own task until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            async for request in self.requests:
                nursery.start_soon(self._close_one, request)

    async def _close_one(self, request: CloseRequest) -> None:
        event = StopTriggered.from_trigger(request.trigger)
        error: str | None = None
        self.calls += 1
        try:
            if self.hook is not None:
                with trio.fail_after(self._timeout):
                    await invoke(self.hook, event)
        except Exception as exc:  # noqa: BLE001 - user hook: isolate, report, retry
            self.failures += 1
            error = repr(exc)
            self._publisher.report_error("close_hook", exc, request.symbol)
        self._deliver(request.symbol, CloseResult(request.trigger.position.id, error))

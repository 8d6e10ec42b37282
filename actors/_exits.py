"""How a child's run ends and what follows: the part of `Supervisor` that restarts.

A crash becomes a dead letter (the message in flight); then the child's `Restart`
type and the supervisor's restart intensity decide on a backoff delay, the end, or
giving up. The loop that calls this, one task per child, is in `actors._supervisor`.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections import deque

import trio

from ._child import _Child
from ._context import ActorContext
from ._errors import Killed, RestartIntensityExceeded
from ._groups import reraise
from ._report import ChildStatus, DeadLetter
from ._spec import Restart

#: The supervisor's logger: its records keep the one documented name, whichever
#: module writes them.
logger = logging.getLogger("actors._supervisor")


class _ChildExits:
    """The base class of `Supervisor` that runs a child once and handles its exit:
    dead letters, restart types, the restart intensity, giving up."""

    # Set by `Supervisor.__init__` (and `_nursery` by `Supervisor.run`).
    name: str
    max_restarts: int
    period: float
    dead_letters: deque[DeadLetter]
    _rng: random.Random
    _failure: RestartIntensityExceeded | None
    _nursery: trio.Nursery | None

    async def _run_once(self, child: _Child, ctx: ActorContext) -> Exception | None:
        """Run the actor once; return its crash, or None if it returned."""
        child.run_scope = run = trio.CancelScope()
        try:
            with run:
                await child.spec.actor(child.mailbox, child.state, ctx)
        except Exception as exc:  # noqa: BLE001 (a crash, whatever it is, is the child's)
            # Includes an ExceptionGroup: all of its leaves are Exceptions.
            return exc
        except BaseExceptionGroup as group:
            # Crashes mixed with Cancelled / KeyboardInterrupt: we are being
            # torn down. Record the crashes, let the rest propagate alone.
            crashes, rest = group.split(Exception)
            if crashes is not None:
                self._record_crash(child, crashes, trio.current_time())
                logger.warning(
                    "supervisor %r: child %r crashed while being cancelled: %r",
                    self.name,
                    child.spec.name,
                    crashes,
                )
            assert rest is not None  # all-Exception groups were caught above
            reraise(rest)
        finally:
            child.run_scope = None
            reason, child.kill_reason = child.kill_reason, None  # even if it raised first
        if reason is not None and run.cancelled_caught:
            return Killed(self.name, child.spec.name, reason)
        return None

    def _record_crash(self, child: _Child, exc: BaseException, now: float) -> None:
        child.last_error = repr(exc)
        had_message, message = child.mailbox.take_in_flight()
        if had_message:
            letter = DeadLetter(
                child=child.spec.name,
                message=message,
                exception=exc,
                traceback_summary="".join(traceback.format_exception(exc)),
                time=now,
            )
            child.dead_letters.append(letter)
            self.dead_letters.append(letter)

    def _after_exit(self, child: _Child, crash: Exception | None) -> float | None:
        """Decide what follows an exit: a restart delay, or None (done for good)."""
        now = trio.current_time()
        spec = child.spec
        name = spec.name
        if crash is None:
            child.mailbox.mark_handled()
        else:
            self._record_crash(child, crash, now)
        if child.stopping:
            child.status = ChildStatus.STOPPED
            if crash is not None:
                logger.warning(
                    "supervisor %r: child %r crashed while stopping: %r",
                    self.name,
                    name,
                    crash,
                    exc_info=crash,
                )
            return None
        if crash is None and spec.restart is not Restart.PERMANENT:
            child.status = ChildStatus.STOPPED
            logger.info("supervisor %r: child %r finished", self.name, name)
            return None
        if crash is not None and spec.restart is Restart.TEMPORARY:
            child.status = ChildStatus.FAILED
            logger.warning(
                "supervisor %r: temporary child %r crashed, not restarted: %r",
                self.name,
                name,
                crash,
                exc_info=crash,
            )
            if spec.on_failed is not None:
                spec.on_failed(child.report(), crash)
            return None

        window = child.window
        window.append((now, "returned" if crash is None else repr(crash)))
        while now - window[0][0] >= self.period:
            window.popleft()
        if len(window) > self.max_restarts:
            child.status = ChildStatus.FAILED
            error = RestartIntensityExceeded(
                self.name, name, window, self.max_restarts, self.period
            )
            error.__cause__ = crash
            logger.error(
                "supervisor %r: giving up on child %r: %d exits within %g s "
                "(max_restarts=%d); last: %s",
                self.name,
                name,
                len(window),
                self.period,
                self.max_restarts,
                window[-1][1],
                exc_info=crash,
            )
            self._give_up(error)
            return None

        delay = spec.backoff.delay(len(window) - 1, self._rng)
        child.status = ChildStatus.RESTARTING
        logger.warning(
            "supervisor %r: child %r %s; restart %d in %.3f s",
            self.name,
            name,
            "returned" if crash is None else f"crashed: {crash!r}",
            child.restarts + 1,
            delay,
            exc_info=crash,
        )
        return delay

    def _give_up(self, error: RestartIntensityExceeded) -> None:
        # Escalation: cancel every child through the nursery; run() raises.
        if self._failure is None:
            self._failure = error
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

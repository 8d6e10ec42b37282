"""The supervisor: runs children in a nursery and restarts them one for one.

What follows a child's exit (its dead letter, its restart type, the restart
intensity, giving up) is the base class `_ChildExits`, in `actors._exits`.
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import trio

from ._child import _Child, _Kept
from ._context import ActorContext
from ._errors import (
    DuplicateChild,
    NoSuchChild,
    NotRunning,
    RestartIntensityExceeded,
)
from ._exits import _ChildExits
from ._groups import raise_single, release_frames
from ._mailbox import Mailbox
from ._report import ChildReport, ChildStatus, DeadLetter
from ._spec import ChildSpec

logger = logging.getLogger(__name__)


class _Phase(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    DONE = "done"


class Supervisor(_ChildExits):
    """Runs child actors, each in its own task, and restarts them one for one.

    A child that raises an `Exception` is restarted alone (if its `Restart`
    type says so), after its `Backoff` delay, with the same mailbox and the
    same state object; the message it was handling becomes a `DeadLetter`.
    `trio.Cancelled`, `KeyboardInterrupt` and other `BaseException` s are
    never treated as crashes: they propagate.

    Restart intensity is counted per child: if a child needs more than
    ``max_restarts`` restarts within ``period`` seconds (of `trio.current_time`),
    the supervisor gives up: that child is FAILED, every other child is
    cancelled, and `run` raises `RestartIntensityExceeded` to the parent.
    (OTP counts restarts of all children together; counting per child keeps
    many independent children, one crash each, from adding up to a give-up.)

    Start it with ``await nursery.start(sup.run)`` or use `open_supervisor`.
    A `Supervisor` runs once.
    """

    def __init__(
        self,
        name: str,
        *,
        children: Iterable[ChildSpec] = (),
        max_restarts: int = 3,
        period: float = 5.0,
        rng: random.Random | None = None,
        dead_letter_limit: int = 1000,
    ) -> None:
        """Describe a supervisor; nothing runs until `run`.

        ``children`` are started, in order, by `run` before it reports
        started. ``rng`` draws backoff jitter (pass a seeded one for
        repeatable delays). ``dead_letter_limit`` bounds `dead_letters` and
        each child's own list.
        """
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts!r}")
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        if dead_letter_limit < 1:
            raise ValueError(f"dead_letter_limit must be >= 1, got {dead_letter_limit!r}")
        self.name = name
        self.max_restarts = max_restarts
        self.period = period
        self._initial = tuple(children)
        names = [spec.name for spec in self._initial]
        for duplicate in {n for n in names if names.count(n) > 1}:
            raise DuplicateChild(name, duplicate)
        self._rng = rng if rng is not None else random.Random()
        self._dead_letter_limit = dead_letter_limit
        #: The most recent dead letters of all children, oldest first (bounded).
        self.dead_letters: deque[DeadLetter] = deque(maxlen=dead_letter_limit)
        self._children: dict[str, _Child] = {}
        self._phase = _Phase.NEW
        self._nursery: trio.Nursery | None = None
        self._stop_requested = trio.Event()
        self._finished = trio.Event()
        self._failure: RestartIntensityExceeded | None = None
        self._kept: _Kept | None = None

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self._phase.value} children={len(self._children)}>"

    # ------------------------------------------------------------- lifetime

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the initial children, report started (with ``self``), supervise.

        Returns after `stop` has stopped every child. Raises
        `RestartIntensityExceeded` when it gives up on a child (all other
        children are cancelled first). Cancelling it cancels every child;
        that is not counted as a crash. Raises `SupervisorError` if this
        supervisor has already run.
        """
        await self._run(lambda: task_status.started(self))

    async def _run(self, on_started: Callable[[], None]) -> None:
        if self._phase is not _Phase.NEW:
            raise NotRunning(f"supervisor {self.name!r} has already run; make a new one")
        self._phase = _Phase.RUNNING
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                specs = self._initial if self._kept is None else tuple(self._kept.specs.values())
                for spec in specs:
                    await self.start_child(spec)
                on_started()
                await self._stop_requested.wait()
                nursery.cancel_scope.cancel()  # every child is done by now
        except BaseExceptionGroup as group:
            # Child tasks never raise (crashes are handled in _supervise), so
            # a real error here came from this body: show it bare.
            raise_single(group)
        finally:
            self._phase = _Phase.DONE
            self._finished.set()
        if self._failure is not None:
            raise self._failure

    # `timeout` is a grace period before cancelling, not a deadline on the call.
    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Stop every child gracefully, newest first, then end `run`.

        The children stay listed (`report` shows their final state).
        Each child's mailbox is closed so its ``async for`` ends once the
        queued messages are handled; a child still running after its
        ``shutdown_timeout`` (or when the overall ``timeout`` runs out) is
        cancelled. Waits until `run` has returned. If this call is
        cancelled, the remaining children are cancelled at once. Returns
        at once if the supervisor has finished (or never ran).
        """
        if self._phase is _Phase.NEW:
            self._phase = _Phase.DONE
            self._finished.set()
        if self._phase is _Phase.DONE:
            return
        self._phase = _Phase.STOPPING
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        try:
            for child in reversed(list(self._children.values())):
                remaining = max(0.0, deadline - trio.current_time())
                await self._stop_one(child, min(child.spec.shutdown_timeout, remaining))
        finally:
            self._stop_requested.set()
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
        await self._finished.wait()

    # ------------------------------------------------------------- children

    async def start_child(self, spec: ChildSpec) -> Mailbox[Any]:
        """Start a child and return its mailbox once it has started.

        "Started" means its actor function was entered, or, for specs with
        ``waits_for_started=True``, that it called `ActorContext.started`.
        A child that has stopped or failed may be replaced by a spec of the
        same name (it gets a fresh mailbox and state).

        Raises `DuplicateChild` if a child of that name is still running,
        `NotRunning` if the supervisor is not running, and `SupervisorError`
        if the child ended (or the supervisor gave up) before it started.
        """
        name = spec.name
        if self._phase is not _Phase.RUNNING or self._nursery is None:
            raise NotRunning(f"supervisor {self.name!r} is not running ({self._phase.value})")
        old = self._children.get(name)
        if old is not None:
            if not old.done.is_set():
                raise DuplicateChild(self.name, name)
            del self._children[name]
        mailbox, state = self._mailbox_and_state(spec)
        child = _Child(
            spec=spec,
            mailbox=mailbox,
            state=state,
            window=deque(maxlen=self.max_restarts + 1),
            dead_letters=deque(maxlen=self._dead_letter_limit),
        )
        self._children[name] = child
        self._nursery.start_soon(self._supervise, child, name=f"{self.name}/{name}")
        await child.started_event.wait()
        if not child.ever_started:
            raise NotRunning(
                f"child {name!r} of supervisor {self.name!r} ended before it started "
                f"(status {child.status.value}, last error {child.last_error})"
            )
        return mailbox

    def _mailbox_and_state(self, spec: ChildSpec) -> tuple[Mailbox[Any], Any]:
        kept = self._kept
        if kept is not None:
            slot = kept.slots.get(spec.name)
            if slot is not None and kept.specs.get(spec.name) == spec and not slot[0].closed:
                return slot
        mailbox, state = spec.new_mailbox(), spec.state_factory()
        if kept is not None:
            kept.specs[spec.name] = spec
            kept.slots[spec.name] = (mailbox, state)
        return mailbox, state

    async def stop_child(
        self,
        name: str,
        timeout: float | None = None,  # noqa: ASYNC109 (a grace period, see stop)
    ) -> ChildReport:
        """Stop one child gracefully, remove it, and return its final report.

        Closes its mailbox (so ``async for`` ends after the queued messages)
        and waits up to ``timeout`` (default: the spec's ``shutdown_timeout``)
        for it to return; then cancels it and waits for it to finish. A
        child in its restart backoff stops at once. If this call is
        cancelled, the child is cancelled too. Raises `NoSuchChild`.
        """
        child = self._get(name)
        try:
            await self._stop_one(child, timeout)
        finally:
            if self._children.get(name) is child:
                del self._children[name]
            if self._kept is not None:
                self._kept.specs.pop(name, None)
                self._kept.slots.pop(name, None)
        return child.report()

    async def _stop_one(self, child: _Child, grace: float | None) -> None:
        child.stopping = True
        child.stop_requested.set()
        child.mailbox.close()
        if grace is None:
            grace = child.spec.shutdown_timeout
        try:
            with trio.move_on_after(grace):
                await child.done.wait()
            if not child.done.is_set():
                logger.warning(
                    "supervisor %r: child %r still running %.3f s after its mailbox "
                    "closed; cancelling it",
                    self.name,
                    child.spec.name,
                    grace,
                )
        finally:
            child.scope.cancel()
        await child.done.wait()

    def kill(self, name: str, reason: str = "killed on request") -> bool:
        """Crash child ``name`` now, as if it raised `Killed`: its current run is
        cancelled, the message it was handling (if any) becomes a dead letter, and it is
        restarted by its policy, counted against the restart intensity. For operators
        and fault drills (OTP's ``exit(Pid, kill)``).

        Returns False, doing nothing, when the child has no run to kill (it is in its
        restart backoff, stopping or done). Raises `NoSuchChild`.
        """
        child = self._get(name)
        if child.run_scope is None or child.stopping or child.kill_reason is not None:
            return False
        child.kill_reason = reason
        child.run_scope.cancel()
        return True

    def _get(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise NoSuchChild(self.name, name) from None

    # ------------------------------------------------------------ inspection

    def mailbox(self, name: str) -> Mailbox[Any]:
        """The mailbox of child ``name`` (raises `NoSuchChild`)."""
        return self._get(name).mailbox

    def child_state(self, name: str) -> Any:
        """The state object of child ``name``, for inspection (raises `NoSuchChild`)."""
        return self._get(name).state

    @property
    def children(self) -> tuple[str, ...]:
        """The names of the children, in start order (finished ones included
        until they are stopped or replaced)."""
        return tuple(self._children)

    @property
    def failure(self) -> RestartIntensityExceeded | None:
        """Why this supervisor gave up (then `run` raises it), or None."""
        return self._failure

    @property
    def running(self) -> bool:
        """Whether `run` is running (and not yet stopping)."""
        return self._phase is _Phase.RUNNING

    def report(self) -> dict[str, ChildReport]:
        """A snapshot of every child, by name, in start order."""
        return {name: child.report() for name, child in self._children.items()}

    # ----------------------------------------------------------- supervision

    async def _supervise(self, child: _Child) -> None:
        # One task per child for its whole life; restarts happen in a loop
        # here, inside the child's own cancel scope (so stop_child can
        # cancel it alone, backoff sleeps included).
        spec = child.spec
        # A kept mailbox (nested supervisor restarted) may still name the
        # message its previous actor was cancelled in: that is no crash.
        child.mailbox.mark_handled()
        try:
            with child.scope:
                while True:
                    ctx = ActorContext(spec.name, child.restarts, self, child.mark_started)
                    child.status = ChildStatus.STARTING
                    if not spec.waits_for_started:
                        child.mark_started()
                    crash = await self._run_once(child, ctx)
                    delay = self._after_exit(child, crash)
                    if crash is not None and child.status is not ChildStatus.FAILED:
                        release_frames(crash)  # logged and formatted: its frames can go
                    del crash
                    if delay is None:
                        break
                    with trio.move_on_after(delay):
                        await child.stop_requested.wait()
                    if child.stopping:
                        child.status = ChildStatus.STOPPED
                        break
                    child.restarts += 1
        finally:
            if child.status is not ChildStatus.FAILED:
                child.status = ChildStatus.STOPPED
            child.started_event.set()
            child.done.set()

"""Child specs: what a supervisor needs to know to start and restart a child."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs

from ._backoff import DEFAULT_BACKOFF, Backoff
from ._mailbox import Mailbox, Overflow

if TYPE_CHECKING:
    from ._context import ActorContext
    from ._report import ChildReport

#: An actor: an async function of its mailbox, its state object and its context.
#: It returns when its work is done (usually when ``async for`` over the
#: mailbox ends because the mailbox was closed) and raises when it fails.
Actor = Callable[[Mailbox[Any], Any, "ActorContext"], Awaitable[None]]

#: Told that a child failed for good while its supervisor carries on: called with
#: the child's final report and its crash (see `ChildSpec.on_failed`).
FailureHook = Callable[["ChildReport", Exception], None]


class Restart(enum.Enum):
    """When a supervisor restarts a child that exited (OTP's restart types)."""

    #: Always: after a crash and after a normal return.
    PERMANENT = "permanent"
    #: Only after a crash; a normal return means the child is done.
    TRANSIENT = "transient"
    #: Never; a crash is recorded and the child stays failed.
    TEMPORARY = "temporary"


def _no_state() -> None:
    return None


def _check_name(_inst: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError("ChildSpec.name must be a non-empty string")


def _check_bound(_inst: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"ChildSpec.mailbox_bound must be >= 1, got {value!r}")


def _check_timeout(_inst: object, _attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"ChildSpec.shutdown_timeout must be >= 0, got {value!r}")


@attrs.frozen
class ChildSpec:
    """How to build, run and restart one child.

    ``state_factory`` is called once, when the child is first started; the
    same state object and the same mailbox are handed to every restart, so
    state and queued messages survive crashes.

    ``waits_for_started``: if False (the default), the child counts as
    started (status RUNNING, `Supervisor.start_child` returns) as soon as
    its actor function is entered, and `ActorContext.started` is a harmless
    no-op. If True, `Supervisor.start_child` waits until the actor calls
    `ActorContext.started` (use it for actors that must finish some setup,
    such as a nested supervisor starting its own children, before anyone
    relies on them).

    ``shutdown_timeout``: how long a graceful stop waits (after closing the
    mailbox) before the child is cancelled.

    ``on_failed(report, error)``: called once, synchronously, in the
    supervisor, when this child ends FAILED while the supervisor carries on:
    a TEMPORARY child that crashed (for a nested supervisor, ``error`` is its
    `RestartIntensityExceeded`). Not called when the supervisor gives up (that
    is raised from `Supervisor.run`), nor after a normal return, a stop or a
    cancellation. It must not block; an exception from it is the parent's bug,
    not the child's crash, and ends `Supervisor.run` with that exception.
    """

    name: str = attrs.field(validator=_check_name)
    actor: Actor
    state_factory: Callable[[], Any] = _no_state
    mailbox_bound: int = attrs.field(default=1000, validator=_check_bound)
    overflow: Overflow = Overflow.BLOCK
    conflate_key: Callable[[Any], Hashable] | None = None
    restart: Restart = Restart.PERMANENT
    backoff: Backoff = DEFAULT_BACKOFF
    shutdown_timeout: float = attrs.field(default=5.0, validator=_check_timeout)
    waits_for_started: bool = False
    on_failed: FailureHook | None = None

    def __attrs_post_init__(self) -> None:
        if (self.overflow is Overflow.CONFLATE) != (self.conflate_key is not None):
            raise ValueError(
                f"child {self.name!r}: conflate_key is required with Overflow.CONFLATE "
                f"and only allowed there (overflow={self.overflow.name})"
            )

    def new_mailbox(self) -> Mailbox[Any]:
        """A fresh, empty mailbox as this spec describes."""
        return Mailbox(self.mailbox_bound, self.overflow, self.conflate_key)

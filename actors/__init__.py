"""OTP-style supervision for trio: child specs, bounded mailboxes, restarts.

An actor is ``async def actor(mailbox, state, ctx)``. A `Supervisor` runs
actors described by `ChildSpec` s, each in its own task, and restarts a
crashed one alone, with the same `Mailbox` and state; the message it was
handling becomes a `DeadLetter`. See ``docs/actors.md``.
"""

from ._backoff import Backoff
from ._context import ActorContext
from ._errors import (
    DuplicateChild,
    Killed,
    NoSuchChild,
    NotRunning,
    RestartIntensityExceeded,
    SupervisorError,
)
from ._mailbox import Mailbox, MailboxStats, Overflow
from ._open import open_supervisor
from ._report import ChildReport, ChildStatus, DeadLetter
from ._spec import Actor, ChildSpec, FailureHook, Restart
from ._subtree import Subtree, supervisor_spec
from ._supervisor import Supervisor

__all__ = [
    "Actor",
    "ActorContext",
    "Backoff",
    "ChildReport",
    "ChildSpec",
    "ChildStatus",
    "DeadLetter",
    "DuplicateChild",
    "FailureHook",
    "Killed",
    "Mailbox",
    "MailboxStats",
    "NoSuchChild",
    "NotRunning",
    "Overflow",
    "Restart",
    "RestartIntensityExceeded",
    "Subtree",
    "Supervisor",
    "SupervisorError",
    "open_supervisor",
    "supervisor_spec",
]

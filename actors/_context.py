"""What an actor gets besides its mailbox and state: its name, siblings, readiness."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._supervisor import Supervisor


class ActorContext:
    """An actor's view of its place in the tree, made fresh for each (re)start.

    Attributes:
        name: the child's name.
        restarts: how many times this child has been restarted before this run.
        supervisor: the `Supervisor` running it (for management: starting or
            stopping siblings, reports). Actors talk to each other through
            mailboxes, never through each other's state.
    """

    __slots__ = ("_on_started", "name", "restarts", "supervisor")

    def __init__(
        self,
        name: str,
        restarts: int,
        supervisor: Supervisor,
        on_started: Callable[[], None],
    ) -> None:
        self.name = name
        self.restarts = restarts
        self.supervisor = supervisor
        self._on_started = on_started

    def started(self) -> None:
        """Report that this actor is ready (idempotent, synchronous).

        Only meaningful for specs with ``waits_for_started=True``: the
        supervisor's `Supervisor.start_child` returns, and the status
        becomes RUNNING, when this is called.
        """
        self._on_started()

    async def send(self, to: str, msg: Any) -> bool:
        """Send ``msg`` to sibling ``to``'s mailbox (see `Mailbox.send`).

        Raises `NoSuchChild` if the supervisor has no child of that name,
        `trio.ClosedResourceError` if that child is being stopped.
        """
        return await self.supervisor.mailbox(to).send(msg)

    def send_nowait(self, to: str, msg: Any) -> bool:
        """Offer ``msg`` to sibling ``to`` without waiting (see `Mailbox.put_nowait`).

        Returns False if the message was dropped by the sibling's overflow
        policy; raises `trio.WouldBlock` if it is a full `BLOCK` mailbox,
        `NoSuchChild` and `trio.ClosedResourceError` as `send` does.
        """
        return self.supervisor.mailbox(to).put_nowait(msg)

    def __repr__(self) -> str:
        return f"<ActorContext {self.name!r} restarts={self.restarts}>"

"""The errors a supervisor raises: one base class and a few precise subclasses."""

from __future__ import annotations

from collections.abc import Sequence


class SupervisorError(Exception):
    """Base class of every error raised by the `actors` package."""


class RestartIntensityExceeded(SupervisorError):
    """A child needed more than ``max_restarts`` restarts within ``period`` seconds.

    Raised out of `Supervisor.run` (and `open_supervisor`) when the supervisor
    gives up; every other child has been cancelled by then. ``__cause__`` is
    the child's last exception, if its last exit was a crash.

    Attributes:
        supervisor: the name of the supervisor that gave up.
        child: the name of the child whose restarts exceeded the limit.
        history: ``(trio time, exception repr)`` of each exit counted in the
            window, oldest first, ending with the one that tipped it over.
        max_restarts, period: the limit that was exceeded.
    """

    def __init__(
        self,
        supervisor: str,
        child: str,
        history: Sequence[tuple[float, str]],
        max_restarts: int,
        period: float,
    ) -> None:
        self.supervisor = supervisor
        self.child = child
        self.history = list(history)
        self.max_restarts = max_restarts
        self.period = period
        last = self.history[-1][1] if self.history else "nothing"
        super().__init__(
            f"supervisor {supervisor!r} gave up: child {child!r} exited "
            f"{len(self.history)} times within {period:g} s "
            f"(max_restarts={max_restarts}); last: {last}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.supervisor, self.child, self.history, self.max_restarts, self.period),
        )


class Killed(SupervisorError):
    """The crash `Supervisor.kill` gives a child: handled like any other crash (a dead
    letter, a restart by policy, counted against the restart intensity).

    Attributes:
        supervisor, child: who killed whom; ``reason``: the text the caller gave.
    """

    def __init__(self, supervisor: str, child: str, reason: str) -> None:
        self.supervisor = supervisor
        self.child = child
        self.reason = reason
        super().__init__(f"supervisor {supervisor!r} killed child {child!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.supervisor, self.child, self.reason))


class NoSuchChild(SupervisorError, KeyError):
    """No child of that name is known to this supervisor."""

    def __init__(self, supervisor: str, child: str) -> None:
        self.supervisor = supervisor
        self.child = child
        super().__init__(f"supervisor {supervisor!r} has no child named {child!r}")

    def __str__(self) -> str:
        # KeyError's own __str__ would repr() the message and add quotes.
        return str(self.args[0])


class DuplicateChild(SupervisorError, ValueError):
    """A child of that name is already running under this supervisor.

    Stop it first (`Supervisor.stop_child`); a child that has already
    stopped or failed may be replaced by starting a spec with its name.
    """

    def __init__(self, supervisor: str, child: str) -> None:
        self.supervisor = supervisor
        self.child = child
        super().__init__(f"supervisor {supervisor!r} already runs a child named {child!r}")


class NotRunning(SupervisorError):
    """The supervisor is not running (not started yet, stopping, or finished),
    or a child being started ended (or was cancelled) before it started."""

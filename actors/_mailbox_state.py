"""What a `Mailbox` holds and reports: its buffer, settings, counters, in-flight record.

The channel operations (put, send, receive, close) live in `actors._mailbox`; this
base class owns the state they share and everything that only reads it (`stats`,
`in_flight`), which the supervisor and the gateway's stats use.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, TypeVar

import attrs
from trio.lowlevel import Task

from ._overflow import Overflow

T = TypeVar("T")


@attrs.frozen
class MailboxStats:
    """A snapshot of a mailbox's counters (see `Mailbox` for their meaning)."""

    depth: int
    bound: int
    high_water: int
    dropped: int
    received_total: int
    closed: bool


class _Nothing(enum.Enum):
    NOTHING = enum.auto()


_NOTHING: Final = _Nothing.NOTHING


class _MailboxState(Generic[T]):
    """The state behind a `Mailbox` and its read-only views (see `Mailbox` for the
    meaning of the counters and of the in-flight message)."""

    __slots__ = (
        "_bound",
        "_buffer",
        "_closed",
        "_in_flight",
        "_key",
        "_latest",
        "_overflow",
        "_receivers",
        "_senders",
        "conflated",
        "dropped",
        "high_water",
        "received_total",
    )

    def __init__(
        self,
        bound: int,
        overflow: Overflow = Overflow.BLOCK,
        key: Callable[[T], Hashable] | None = None,
    ) -> None:
        """Make an empty, open mailbox holding at most ``bound`` messages.

        Raises `ValueError` if ``bound < 1``, or if ``overflow`` is `CONFLATE`
        and no ``key`` (a function from message to a hashable key) is given.
        """
        if bound < 1:
            raise ValueError(f"mailbox bound must be >= 1, got {bound!r}")
        if (overflow is Overflow.CONFLATE) != (key is not None):
            raise ValueError("a key function is required with Overflow.CONFLATE, and only there")
        self._bound = bound
        self._overflow = overflow
        self._key = key
        # CONFLATE keeps a `_Keyed` place in line in the deque and the latest
        # value per key in a dict; replacing a value keeps its place in line.
        # A message keyed None sits in the deque itself (no dict entry).
        self._buffer: deque[Any] = deque()
        self._latest: dict[Hashable, T] | None = {} if key is not None else None
        self._closed = False
        self._in_flight: T | list[T] | _Nothing = _NOTHING
        self._receivers: OrderedDict[Task, None] = OrderedDict()
        self._senders: OrderedDict[Task, T] = OrderedDict()
        self.high_water = 0
        self.dropped = 0
        self.conflated = 0
        self.received_total = 0

    # ------------------------------------------------------------ inspection

    @property
    def bound(self) -> int:
        """The most messages this mailbox holds."""
        return self._bound

    @property
    def overflow(self) -> Overflow:
        """The overflow policy."""
        return self._overflow

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    @property
    def depth(self) -> int:
        """How many messages are queued now."""
        return len(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def in_flight(self) -> T | list[T] | None:
        """The message (or batch) last handed out and not yet known handled."""
        value = self._in_flight
        return None if value is _NOTHING else value

    @property
    def has_in_flight(self) -> bool:
        """Whether a message is in flight (tells ``in_flight is None`` apart
        from a message that is ``None``)."""
        return self._in_flight is not _NOTHING

    def mark_handled(self) -> None:
        """Declare the in-flight message (or batch) handled: a crash from now
        on will not dead-letter it."""
        self._in_flight = _NOTHING

    def take_in_flight(self) -> tuple[bool, T | list[T] | None]:
        """Return ``(had_one, message)`` and clear it (used by the supervisor)."""
        value = self._in_flight
        self._in_flight = _NOTHING
        return (False, None) if value is _NOTHING else (True, value)

    def stats(self) -> MailboxStats:
        """A consistent snapshot of the counters."""
        return MailboxStats(
            depth=len(self._buffer),
            bound=self._bound,
            high_water=self.high_water,
            dropped=self.dropped,
            received_total=self.received_total,
            closed=self._closed,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Mailbox {len(self._buffer)}/{self._bound} {self._overflow.name} {state}"
            f" dropped={self.dropped}>"
        )

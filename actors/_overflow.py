"""Overflow policies: what a full `Mailbox` does with one more message.

Kept apart from the channel so that the policies (and conflation's place-in-line
marker) read on their own; the mailbox applies them inline on its hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable


class Overflow(enum.Enum):
    """What a full mailbox does with one more message."""

    #: Refuse it: `put_nowait` raises `trio.WouldBlock`, `send` waits for space.
    BLOCK = "block"
    #: Discard the message being offered (counted in ``dropped``).
    DROP_NEWEST = "drop_newest"
    #: Discard the oldest queued message to make room (counted in ``dropped``).
    DROP_OLDEST = "drop_oldest"
    #: Keep one value per key: a new value replaces the queued one with the
    #: same key, full or not (counted in ``dropped``). A new key in a full
    #: mailbox evicts the oldest queued message, as `DROP_OLDEST`. A message
    #: whose key is None is never replaced (queued as under `DROP_OLDEST`).
    CONFLATE = "conflate"


class _Keyed:
    """A conflated message's place in line (its latest value is in a dict by key)."""

    __slots__ = ("key",)

    def __init__(self, key: Hashable) -> None:
        self.key = key

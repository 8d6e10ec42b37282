"""Exception-group helpers: surface the one real error of a nursery, keep cancellation intact."""

from __future__ import annotations

import trio


def leaves(exc: BaseException) -> list[BaseException]:
    """The distinct non-group exceptions inside ``exc`` (itself if it is not a group), in
    order; one raised by two tasks (a supervisor's give-up) counts once."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    seen: dict[int, BaseException] = {}
    for sub in exc.exceptions:
        for leaf in leaves(sub):
            seen.setdefault(id(leaf), leaf)
    return list(seen.values())


def collapse(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The single error a group carries, or the group itself.

    A group holding any `trio.Cancelled` is returned unchanged, so cancellation
    travels up to the scope that owns it.
    """
    found = leaves(group)
    if any(isinstance(e, trio.Cancelled) for e in found) or len(found) != 1:
        return group
    return found[0]

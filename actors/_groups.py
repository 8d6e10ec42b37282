"""Exception-group plumbing: re-raise without losing context, unwrap one error.

Nurseries (strict exception groups) wrap whatever escapes them in a group.
Where we own the nursery as an implementation detail (`open_supervisor`, a
nested supervisor's actor), the caller should see the single error it can
act on, not our plumbing; anything else (several errors, cancellation,
KeyboardInterrupt) is re-raised untouched.
"""

from __future__ import annotations

from typing import NoReturn

import trio


def reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` from inside an ``except`` block keeping its own ``__context__``."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def raise_single(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Re-raise ``group``, or its one real error alone.

    Unwraps when, apart from `trio.Cancelled`, the group holds exactly one
    exception and it is an `Exception` (which may itself be a group the code
    inside raised on purpose). Call it from the ``except`` clause that
    caught ``group``.
    """
    others = [exc for exc in group.exceptions if not isinstance(exc, trio.Cancelled)]
    if len(others) == 1 and isinstance(others[0], Exception):
        reraise(others[0])
    reraise(group)


def release_frames(exc: BaseException) -> None:
    """Drop the tracebacks of ``exc`` and of every exception it chains or groups.

    A crash kept for later (a dead letter) must not pin the frames of the code that
    raised it: their locals can be a dead actor's buffers, or, through the callers'
    frames, a closed connection. Call it once the traceback is logged and formatted.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:  # bounded: each distinct exception once
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        e.__traceback__ = None
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)

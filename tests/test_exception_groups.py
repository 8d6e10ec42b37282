"""Exception-group helpers (`gateway.runtime.exception_groups`): the one real error of a
nursery comes out alone, cancellation stays a group, and one error raised by two tasks
counts once."""

from __future__ import annotations

import trio

from gateway.runtime.exception_groups import collapse, leaves


def test_leaves_flattens_nested_groups_in_order() -> None:
    a, b, c = ValueError("a"), KeyError("b"), OSError("c")
    group = ExceptionGroup("outer", [a, ExceptionGroup("inner", [b, ExceptionGroup("x", [c])])])
    assert leaves(group) == [a, b, c]
    assert leaves(a) == [a]


def test_an_error_raised_by_two_tasks_is_one_leaf() -> None:
    # A supervisor's give-up: its run raises it, and so does a task that saw it happen.
    gave_up = RuntimeError("gave up")
    group = ExceptionGroup("nursery", [gave_up, ExceptionGroup("start", [gave_up])])
    assert leaves(group) == [gave_up]
    assert collapse(group) is gave_up


def test_collapse_keeps_a_group_of_several_errors_or_any_cancellation() -> None:
    a, b = ValueError("a"), KeyError("b")
    several = ExceptionGroup("s", [a, b])
    assert collapse(several) is several
    assert collapse(ExceptionGroup("one", [a])) is a
    cancelled = trio.Cancelled._create(source="explicit")
    with_cancel = BaseExceptionGroup("c", [a, cancelled])
    assert collapse(with_cancel) is with_cancel  # cancellation travels up to its scope

"""Nested supervisors: a subtree restarts as a unit and escalates when it must."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from actors import (
    ActorContext,
    Backoff,
    ChildReport,
    ChildSpec,
    ChildStatus,
    Mailbox,
    Restart,
    RestartIntensityExceeded,
    Subtree,
    Supervisor,
    open_supervisor,
    supervisor_spec,
)

NO_BACKOFF = Backoff(initial=0.0, jitter=False)


@attrs.define
class Log:
    handled: list[Any] = attrs.Factory(list)


async def recorder(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
    async for msg in mailbox:
        if msg == "boom":
            raise ValueError("boom")
        state.handled.append(msg)


def spec(name: str, **kwargs: Any) -> ChildSpec:
    kwargs.setdefault("backoff", NO_BACKOFF)
    return ChildSpec(name=name, actor=recorder, state_factory=Log, **kwargs)


def inner(sup: Supervisor, name: str = "tree") -> Supervisor:
    subtree = sup.child_state(name)
    assert isinstance(subtree, Subtree) and subtree.supervisor is not None
    return subtree.supervisor


async def test_a_subtree_that_gives_up_is_restarted_as_a_unit_keeping_mailboxes_and_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = supervisor_spec(
        "tree",
        [spec("worker"), spec("bomb")],
        max_restarts=0,  # the first crash inside makes the subtree give up
        backoff=Backoff(initial=1.0, jitter=False),
    )
    async with open_supervisor("root", [tree]) as sup:
        first = inner(sup)
        worker_mailbox = first.mailbox("worker")
        worker_mailbox.put_nowait(1)
        first.mailbox("bomb").put_nowait("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert sup.report()["tree"].status is ChildStatus.RESTARTING
        assert first.report()["worker"].status is ChildStatus.STOPPED  # cancelled with it
        worker_mailbox.put_nowait(2)  # queued while the subtree is down
        await trio.sleep(1.5)  # the subtree's backoff is 1 s

        second = inner(sup)
        assert second is not first
        assert second.mailbox("worker") is worker_mailbox
        assert second.child_state("worker").handled == [1, 2]
        report = sup.report()["tree"]
        assert (report.status, report.restarts) == (ChildStatus.RUNNING, 1)
        assert "RestartIntensityExceeded" in (report.last_error or "")
        (letter,) = first.dead_letters
        assert letter.message == "boom"


async def test_the_parent_gives_up_when_the_subtree_keeps_giving_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def crasher(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        raise RuntimeError("always")

    bad = ChildSpec(name="bad", actor=crasher, backoff=NO_BACKOFF)
    tree = supervisor_spec("tree", [spec("ok"), bad], max_restarts=1, backoff=NO_BACKOFF)
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor("root", [spec("sibling"), tree], max_restarts=2):
            await trio.sleep_forever()
    outer = info.value
    assert (outer.supervisor, outer.child, len(outer.history)) == ("root", "tree", 3)
    inner_error = outer.__cause__
    assert isinstance(inner_error, RestartIntensityExceeded)
    assert (inner_error.supervisor, inner_error.child) == ("tree", "bad")
    assert isinstance(inner_error.__cause__, RuntimeError)


async def test_a_temporary_subtree_that_gives_up_is_quarantined_alone_and_its_hook_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    told: list[tuple[ChildReport, Exception]] = []

    def tree(name: str) -> ChildSpec:
        return supervisor_spec(
            name, [spec(name)], max_restarts=1, restart=Restart.TEMPORARY,
            on_failed=lambda report, error: told.append((report, error)),
        )  # fmt: skip

    async with open_supervisor("root", [tree("a"), tree("b"), spec("sibling")]) as sup:
        for _ in range(2):  # the second crash within the period makes "a" give up
            inner(sup, "a").mailbox("a").put_nowait("boom")
            await trio.testing.wait_all_tasks_blocked()
        for name in ("b", "sibling"):  # the rest of the tree runs on
            mailbox = inner(sup, "b").mailbox("b") if name == "b" else sup.mailbox(name)
            mailbox.put_nowait("still here")
        await trio.testing.wait_all_tasks_blocked()
        assert sup.running
        report = sup.report()
        handled = [inner(sup, "b").child_state("b").handled, sup.child_state("sibling").handled]
    assert handled == [["still here"], ["still here"]]
    assert report["a"].status is ChildStatus.FAILED and report["a"].restarts == 0
    assert report["b"].status is ChildStatus.RUNNING
    ((failed, error),) = told
    assert failed.name == "a" and failed.status is ChildStatus.FAILED
    assert isinstance(error, RestartIntensityExceeded)
    assert (error.supervisor, error.child, len(error.history)) == ("a", "a", 2)
    assert isinstance(error.__cause__, ValueError)
    assert inner(sup, "a").report()["a"].restarts == 1  # the inner child's own count


async def test_children_added_to_a_subtree_at_run_time_come_back_after_its_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = supervisor_spec("tree", [spec("bomb")], max_restarts=0, backoff=NO_BACKOFF)
    async with open_supervisor("root", [tree]) as sup:
        added = await inner(sup).start_child(spec("ETHUSDT"))
        added.put_nowait("tick")
        await trio.testing.wait_all_tasks_blocked()
        inner(sup).mailbox("bomb").put_nowait("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert sup.report()["tree"].restarts == 1
        assert inner(sup).children == ("bomb", "ETHUSDT")
        assert inner(sup).mailbox("ETHUSDT") is added
        assert inner(sup).child_state("ETHUSDT").handled == ["tick"]

        await inner(sup).stop_child("ETHUSDT")  # removed for good: not restarted
        inner(sup).mailbox("bomb").put_nowait("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert inner(sup).children == ("bomb",)


async def test_stopping_a_subtree_stops_its_children_gracefully(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = supervisor_spec("tree", [spec("a"), spec("b")])
    async with open_supervisor("root", [tree]) as sup:
        subtree = inner(sup)
        for i in range(3):
            subtree.mailbox("a").put_nowait(i)
        final = await sup.stop_child("tree")
        assert final.status is ChildStatus.STOPPED
        assert subtree.child_state("a").handled == [0, 1, 2]
        assert {r.status for r in subtree.report().values()} == {ChildStatus.STOPPED}
        assert not subtree.running


async def test_cancelling_the_root_tears_down_the_whole_tree_without_crashes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tree = supervisor_spec("tree", [spec("a"), supervisor_spec("leaf", [spec("b")])])
    sup = Supervisor("root", children=[tree])
    with trio.move_on_after(1):
        await sup.run()
    subtree = inner(sup)
    leaf = inner(subtree, "leaf")
    for s in (sup, subtree, leaf):
        assert all(
            (r.status, r.restarts, r.last_error) == (ChildStatus.STOPPED, 0, None)
            for r in s.report().values()
        )

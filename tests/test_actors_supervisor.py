"""Supervisor: one-for-one restarts, dead letters, backoff, intensity, lifecycle.

Every test that involves time runs on trio's MockClock with autojump, so
delays are exact and cost no real time.
"""

from __future__ import annotations

import gc
import logging
import random
import weakref
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
    DuplicateChild,
    Killed,
    Mailbox,
    NoSuchChild,
    NotRunning,
    Overflow,
    Restart,
    RestartIntensityExceeded,
    Supervisor,
    open_supervisor,
)

NO_BACKOFF = Backoff(initial=0.0, jitter=False)


@attrs.define
class Log:
    """A toy actor state: what it handled, and when each run started."""

    handled: list[Any] = attrs.Factory(list)
    starts: list[float] = attrs.Factory(list)
    restarts_seen: list[int] = attrs.Factory(list)


async def recorder(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
    """Handle every message by recording it; raise on the message "poison"."""
    state.starts.append(trio.current_time())
    state.restarts_seen.append(ctx.restarts)
    async for msg in mailbox:
        if msg == "poison":
            raise ValueError("poisoned")
        state.handled.append(msg)


async def crasher(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
    """Crash as soon as it starts."""
    state.starts.append(trio.current_time())
    raise RuntimeError(f"crash #{ctx.restarts}")


async def returner(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
    """Return as soon as it starts."""
    state.starts.append(trio.current_time())


def spec(name: str, actor: Any = recorder, **kwargs: Any) -> ChildSpec:
    kwargs.setdefault("backoff", NO_BACKOFF)
    return ChildSpec(name=name, actor=actor, state_factory=Log, **kwargs)


def count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(t) for n in task.child_nurseries for t in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return walk(root)


# --------------------------------------------------------- one-for-one restarts


async def test_a_child_crashing_on_every_third_message_is_restarted_and_siblings_are_unaffected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def every_third(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for msg in mailbox:
            if msg % 3 == 2:
                raise ValueError(f"bad {msg}")
            state.handled.append(msg)

    children = [spec("a"), spec("flaky", every_third), spec("b")]
    async with open_supervisor("root", children, max_restarts=3, period=5.0) as sup:
        for i in range(30):
            for name in ("a", "flaky", "b"):
                sup.mailbox(name).put_nowait(i)
            await trio.sleep(1)  # one message a second: 1 crash every 3 s, never 4 in 5 s
        report = sup.report()
        states = {name: sup.child_state(name) for name in ("a", "flaky", "b")}

    assert states["a"].handled == list(range(30))
    assert states["b"].handled == list(range(30))
    assert states["flaky"].handled == [i for i in range(30) if i % 3 != 2]
    assert report["flaky"].restarts == 10
    assert [letter.message for letter in report["flaky"].dead_letters] == list(range(2, 30, 3))
    assert report["a"].restarts == report["b"].restarts == 0
    assert report["a"].dead_letters == ()


async def test_state_and_queued_messages_survive_a_restart_and_the_poison_is_not_redelivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    worker = spec("worker", backoff=Backoff(initial=1.0, jitter=False))
    async with open_supervisor("root", [worker]) as sup:
        mailbox = sup.mailbox("worker")
        for msg in [1, 2, "poison", 3]:
            mailbox.put_nowait(msg)
        await trio.testing.wait_all_tasks_blocked()
        assert sup.report()["worker"].status is ChildStatus.RESTARTING
        mailbox.put_nowait(4)  # arrives during the backoff: queued, not lost
        assert sup.report()["worker"].depth == 2
        await trio.sleep(2)
        state: Log = sup.child_state("worker")
        report = sup.report()["worker"]

    assert state.handled == [1, 2, 3, 4]
    assert state.restarts_seen == [0, 1]
    assert state.starts == pytest.approx([0.0, 1.0])
    assert report.restarts == 1
    assert report.last_error == repr(ValueError("poisoned"))
    (letter,) = report.dead_letters
    assert (letter.child, letter.message) == ("worker", "poison")
    assert isinstance(letter.exception, ValueError)
    assert "ValueError: poisoned" in letter.traceback_summary
    assert letter.time == pytest.approx(0.0)
    assert list(sup.dead_letters) == [letter]


async def test_a_killed_child_is_restarted_alone_and_its_message_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        state.starts.append(trio.current_time())
        async for msg in mailbox:
            await trio.sleep(10)  # handling takes a while: killed in the middle
            state.handled.append(msg)

    children = [spec("a"), spec("slow", slow, backoff=Backoff(initial=1.0, jitter=False))]
    async with open_supervisor("root", children) as sup:
        assert sup.kill("slow", "drill 1")  # idle, waiting for a message: no dead letter
        await trio.testing.wait_all_tasks_blocked()
        assert not sup.kill("slow")  # in its backoff: nothing to kill
        await trio.sleep(1.5)
        sup.mailbox("slow").put_nowait("m1")
        sup.mailbox("a").put_nowait("a1")
        await trio.sleep(1)
        assert sup.kill("slow", "drill 2")  # while it handles m1
        await trio.sleep(2)
        sup.mailbox("slow").put_nowait("m2")
        await trio.sleep(11)
        report, state = sup.report()["slow"], sup.child_state("slow")
        other = sup.report()["a"]
        with pytest.raises(NoSuchChild):
            sup.kill("nobody")

    assert report.restarts == 2
    assert state.starts == pytest.approx([0.0, 1.0, 4.5])  # backoff 1 s, then 2 s
    assert state.handled == ["m2"]  # m1 died with the killed run: never redelivered
    (letter,) = report.dead_letters
    assert letter.message == "m1"
    assert isinstance(letter.exception, Killed)
    assert (letter.exception.child, letter.exception.reason) == ("slow", "drill 2")
    assert "drill 2" in (report.last_error or "")
    assert (other.restarts, sup.child_state("a").handled) == (0, ["a1"])  # untouched


async def test_a_kill_right_after_a_message_was_handled_leaves_no_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_supervisor("root", [spec("w")]) as sup:
        await trio.testing.wait_all_tasks_blocked()  # waiting for a message
        sup.mailbox("w").put_nowait("m1")  # wakes it with m1...
        assert sup.kill("w")  # ...and the kill lands when it asks for the next one
        await trio.testing.wait_all_tasks_blocked()
        report, state = sup.report()["w"], sup.child_state("w")
    assert state.handled == ["m1"] and report.restarts == 1
    assert report.dead_letters == ()  # asking for the next message: m1 was handled


async def test_a_kill_that_races_a_crash_leaves_kill_working(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_supervisor("root", [spec("w")]) as sup:
        sup.mailbox("w").put_nowait("poison")  # the actor wakes with it and raises...
        assert sup.kill("w", "too late")  # ...before the kill is delivered
        await trio.testing.wait_all_tasks_blocked()
        first = sup.report()["w"]
        assert sup.kill("w", "again")  # the lost kill left nothing behind
        await trio.testing.wait_all_tasks_blocked()
        second = sup.report()["w"]
    assert "poisoned" in (first.last_error or "") and first.restarts == 1
    assert "again" in (second.last_error or "") and second.restarts == 2


async def test_kills_count_against_the_restart_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor("root", [spec("w")], max_restarts=2, period=10.0) as sup:
            for _ in range(3):
                assert sup.kill("w")
                await trio.sleep(0.1)
            await trio.sleep_forever()
    assert isinstance(info.value.__cause__, Killed)


class _Buffers:
    """Stands for what a crashing actor's frames hold (a batch, a connection)."""


async def test_a_dead_letter_pins_no_frames_of_the_actor_that_crashed(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # A long run keeps up to dead_letter_limit crashes: each must not keep the crashed
    # run's locals (nor, through its callers' frames, whatever they held) alive.
    caplog.set_level(logging.ERROR, logger="actors")  # captured records keep tracebacks
    held: list[weakref.ref[_Buffers]] = []

    async def crashes_holding_buffers(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        while True:
            msg = await mailbox.receive()
            buffers = _Buffers()
            held.append(weakref.ref(buffers))
            try:
                raise KeyError(msg)
            except KeyError as inner:
                raise ValueError(f"poisoned by {msg}") from inner

    child = spec("c", crashes_holding_buffers, backoff=Backoff(initial=1.0, jitter=False))
    async with open_supervisor("root", [child]) as sup:
        sup.mailbox("c").put_nowait("poison")
        await trio.testing.wait_all_tasks_blocked()
        assert sup.report()["c"].status is ChildStatus.RESTARTING
        gc.collect()
        (letter,) = sup.report()["c"].dead_letters
        assert held[0]() is None  # the crashed run's locals are gone
        assert isinstance(letter.exception, ValueError)
        assert letter.exception.__traceback__ is None
        assert letter.exception.__cause__ is not None
        assert letter.exception.__cause__.__traceback__ is None
        assert "raise KeyError(msg)" in letter.traceback_summary  # the text is kept
        assert "ValueError: poisoned by poison" in letter.traceback_summary


async def test_a_crash_outside_message_handling_leaves_no_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails_after_a_message(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        state.handled.append(await mailbox.receive())
        mailbox.mark_handled()
        raise RuntimeError("unrelated")

    child = spec("c", fails_after_a_message, restart=Restart.TEMPORARY)
    async with open_supervisor("root", [child]) as sup:
        sup.mailbox("c").put_nowait(1)
        await trio.testing.wait_all_tasks_blocked()
        report = sup.report()["c"]
    assert report.status is ChildStatus.FAILED
    assert report.dead_letters == ()
    assert "unrelated" in (report.last_error or "")


async def test_a_child_raising_an_exception_group_of_errors_is_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def group_raiser(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for msg in mailbox:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                raise KeyError(msg)

    async with open_supervisor("root", [spec("g", group_raiser)]) as sup:
        sup.mailbox("g").put_nowait(7)
        await trio.testing.wait_all_tasks_blocked()
        report = sup.report()["g"]
    assert report.restarts == 1
    (letter,) = report.dead_letters
    assert letter.message == 7
    assert isinstance(letter.exception, ExceptionGroup)


# ----------------------------------------------------------------- restart types


async def test_a_permanent_child_that_returns_is_restarted_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def returns(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        state.starts.append(trio.current_time())
        await trio.sleep(1)

    sup = Supervisor("root", children=[spec("p", returns)], max_restarts=2, period=10.0)
    with pytest.raises(RestartIntensityExceeded) as info:
        await sup.run()
    assert info.value.child == "p"
    assert [what for _, what in info.value.history] == ["returned"] * 3
    assert sup.child_state("p").starts == pytest.approx([0.0, 1.0, 2.0])


async def test_a_transient_child_is_restarted_after_a_crash_but_not_after_returning(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def once(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        state.starts.append(trio.current_time())
        if ctx.restarts == 0:
            raise RuntimeError("first run fails")

    async with open_supervisor("root", [spec("t", once, restart=Restart.TRANSIENT)]) as sup:
        await trio.sleep(1)
        report = sup.report()["t"]
    assert (report.status, report.restarts) == (ChildStatus.STOPPED, 1)
    assert len(sup.child_state("t").starts) == 2


async def test_a_temporary_child_that_crashes_stays_failed_and_the_rest_runs_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    children = [spec("temp", crasher, restart=Restart.TEMPORARY), spec("other")]
    async with open_supervisor("root", children, max_restarts=0) as sup:
        await trio.sleep(1)
        sup.mailbox("other").put_nowait("still here")
        await trio.testing.wait_all_tasks_blocked()
        report = sup.report()
        assert sup.running
    assert (report["temp"].status, report["temp"].restarts) == (ChildStatus.FAILED, 0)
    assert report["other"].status is ChildStatus.RUNNING
    assert sup.child_state("other").handled == ["still here"]


async def test_a_temporary_childs_failure_hook_is_told_once_with_its_report_and_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    told: list[tuple[str, ChildStatus, int, Exception]] = []

    def hook(report: ChildReport, error: Exception) -> None:
        told.append((report.name, report.status, len(report.dead_letters), error))

    children = [
        spec("temp", restart=Restart.TEMPORARY, on_failed=hook),
        spec("returns", returner, restart=Restart.TEMPORARY, on_failed=hook),
        spec("stopped", restart=Restart.TEMPORARY, on_failed=hook),
        spec("restarted", on_failed=hook),  # PERMANENT: a crash is a restart, not a failure
        spec("other"),
    ]
    async with open_supervisor("root", children, max_restarts=1) as sup:
        sup.mailbox("restarted").put_nowait("poison")
        sup.mailbox("temp").put_nowait("poison")
        await sup.stop_child("stopped")
        await trio.testing.wait_all_tasks_blocked()
        sup.mailbox("other").put_nowait("still here")
        await trio.testing.wait_all_tasks_blocked()
        assert sup.running
        report = sup.report()
    assert [(name, status, letters) for name, status, letters, _ in told] == [
        ("temp", ChildStatus.FAILED, 1)
    ]
    error = told[0][3]
    assert isinstance(error, ValueError) and str(error) == "poisoned"
    assert report["restarted"].restarts == 1 and report["returns"].status is ChildStatus.STOPPED
    assert sup.child_state("other").handled == ["still here"]


async def test_the_failure_hook_is_not_called_when_the_supervisor_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    told: list[Exception] = []
    bad = spec("bad", crasher, on_failed=lambda _report, error: told.append(error))
    with pytest.raises(RestartIntensityExceeded):
        async with open_supervisor("root", [bad], max_restarts=1):
            await trio.sleep_forever()
    assert told == []  # the give-up is raised, not reported through the hook


async def test_an_exception_from_a_failure_hook_ends_the_run_with_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def broken_hook(report: ChildReport, error: Exception) -> None:
        raise LookupError(f"hook bug on {report.name}")

    children = [spec("temp", crasher, restart=Restart.TEMPORARY, on_failed=broken_hook)]
    sup = Supervisor("root", children=[*children, spec("other")])
    with trio.fail_after(10), pytest.raises(LookupError, match="hook bug on temp"):
        await sup.run()
    report = sup.report()
    assert report["temp"].status is ChildStatus.FAILED
    assert report["other"].status is ChildStatus.STOPPED  # cancelled, not crashed


# ---------------------------------------------------------- backoff and intensity


async def test_backoff_delays_and_the_intensity_limit_are_exact(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=0.3, jitter=False)
    sup = Supervisor("root", children=[spec("c", crasher, backoff=backoff)], max_restarts=3)
    with pytest.raises(RestartIntensityExceeded) as info:
        await sup.run()
    # Starts at 0, then after 0.1, 0.2 and 0.3 (capped); the 4th crash in 5 s gives up.
    assert sup.child_state("c").starts == pytest.approx([0.0, 0.1, 0.3, 0.6], abs=1e-9)
    assert trio.current_time() == pytest.approx(0.6, abs=1e-9)
    error = info.value
    assert (error.supervisor, error.child, error.max_restarts, error.period) == (
        "root",
        "c",
        3,
        5.0,
    )
    assert [t for t, _ in error.history] == pytest.approx([0.0, 0.1, 0.3, 0.6], abs=1e-9)
    assert [what for _, what in error.history] == [
        repr(RuntimeError(f"crash #{n}")) for n in range(4)
    ]
    assert isinstance(error.__cause__, RuntimeError)
    assert sup.report()["c"].status is ChildStatus.FAILED


@pytest.mark.parametrize(("period", "gives_up"), [(1.0, False), (1.001, True)])
async def test_exits_count_toward_intensity_only_while_younger_than_the_period(
    autojump_clock: trio.testing.MockClock, period: float, gives_up: bool
) -> None:
    # One crash a second, max_restarts=1: two crashes fall within the window
    # only if the window is longer than one second.
    backoff = Backoff(initial=1.0, factor=1.0, jitter=False)
    sup = Supervisor(
        "root", children=[spec("c", crasher, backoff=backoff)], max_restarts=1, period=period
    )
    with trio.move_on_after(10.5):
        if gives_up:
            with pytest.raises(RestartIntensityExceeded):
                await sup.run()
        else:
            await sup.run()
    starts = sup.child_state("c").starts
    assert starts == pytest.approx([0.0, 1.0] if gives_up else [float(s) for s in range(11)])


async def test_jittered_backoff_uses_the_supervisors_seeded_rng(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=10.0)
    sup = Supervisor(
        "root",
        children=[spec("c", crasher, backoff=backoff)],
        max_restarts=3,
        period=100.0,
        rng=random.Random(1234),
    )
    with pytest.raises(RestartIntensityExceeded):
        await sup.run()
    reference = random.Random(1234)
    expected = [0.0]
    for attempt in range(3):
        expected.append(expected[-1] + backoff.delay(attempt, reference))
    assert sup.child_state("c").starts == pytest.approx(expected, abs=1e-9)


async def test_giving_up_raises_the_typed_error_to_the_parent_and_cancels_siblings(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors")
    body_cancelled = False
    with pytest.raises(RestartIntensityExceeded) as info:
        async with open_supervisor("root", [spec("ok"), spec("bad", crasher)]) as sup:
            try:
                await trio.sleep_forever()
            finally:
                body_cancelled = True
    assert body_cancelled
    assert info.value.child == "bad"
    report = sup.report()
    assert report["ok"].status is ChildStatus.STOPPED
    assert report["ok"].restarts == 0
    assert report["bad"].status is ChildStatus.FAILED
    messages = [r.getMessage() for r in caplog.records]
    assert sum("child 'bad' crashed" in m and "; restart" in m for m in messages) == 3
    assert any("giving up on child 'bad'" in m for m in messages)
    assert all(r.name == "actors._supervisor" for r in caplog.records)


# ------------------------------------------------------------ start, add, remove


async def test_children_can_be_added_and_removed_at_run_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_supervisor("root") as sup:
        mailbox = await sup.start_child(spec("BTCUSDT"))
        assert sup.mailbox("BTCUSDT") is mailbox
        with pytest.raises(DuplicateChild):
            await sup.start_child(spec("BTCUSDT"))
        await sup.start_child(spec("ETHUSDT"))
        for i in range(3):
            mailbox.put_nowait(i)
        state: Log = sup.child_state("BTCUSDT")
        final = await sup.stop_child("BTCUSDT")
        assert state.handled == [0, 1, 2]  # queued messages were handled first
        assert final.status is ChildStatus.STOPPED
        assert sup.children == ("ETHUSDT",)
        with pytest.raises(NoSuchChild):
            sup.mailbox("BTCUSDT")
        with pytest.raises(KeyError):  # NoSuchChild is a KeyError too
            await sup.stop_child("BTCUSDT")
        with pytest.raises(trio.ClosedResourceError):
            mailbox.put_nowait(3)
        again = await sup.start_child(spec("BTCUSDT"))  # re-added: a fresh mailbox
        assert again is not mailbox
        assert list(sup.report()) == ["ETHUSDT", "BTCUSDT"]


async def test_start_child_waits_for_started_when_the_spec_asks_for_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow_setup(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        await trio.sleep(2)
        ctx.started()
        await trio.sleep_forever()

    async with open_supervisor("root") as sup:
        child = spec("slow", slow_setup, waits_for_started=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.start_child, child)
            await trio.sleep(1)
            assert sup.report()["slow"].status is ChildStatus.STARTING
        assert trio.current_time() == pytest.approx(2.0)
        assert sup.report()["slow"].status is ChildStatus.RUNNING


async def test_actors_send_to_siblings_by_name(autojump_clock: trio.testing.MockClock) -> None:
    async def forwarder(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for msg in mailbox:
            if msg % 2:
                await ctx.send("odd", msg)
            else:
                assert ctx.send_nowait("even", msg)

    children = [spec("odd"), spec("even"), spec("fwd", forwarder)]
    async with open_supervisor("root", children) as sup:
        for i in range(6):
            sup.mailbox("fwd").put_nowait(i)
        await trio.testing.wait_all_tasks_blocked()
        assert sup.child_state("odd").handled == [1, 3, 5]
        assert sup.child_state("even").handled == [0, 2, 4]
        with pytest.raises(NoSuchChild):
            await ActorContext("x", 0, sup, lambda: None).send("nobody", 1)


# -------------------------------------------------------------------- shutdown


async def test_stopping_a_child_cancels_it_when_its_grace_period_runs_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for msg in mailbox:
            await trio.sleep(1)
            state.handled.append(msg)

    async with open_supervisor("root", [spec("slow", slow)]) as sup:
        for i in range(5):
            sup.mailbox("slow").put_nowait(i)
        state: Log = sup.child_state("slow")
        started = trio.current_time()
        final = await sup.stop_child("slow", timeout=2.5)
        assert trio.current_time() - started == pytest.approx(2.5)
    assert state.handled == [0, 1]
    assert final.status is ChildStatus.STOPPED
    assert final.restarts == 0 and final.dead_letters == ()


async def test_stop_lets_children_finish_newest_first_then_cancels_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[str] = []

    async def tidy(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for _ in mailbox:
            pass
        await trio.sleep(0.5)  # some clean-up, within its grace period
        finished.append(ctx.name)

    async def stubborn(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        try:
            await trio.sleep_forever()  # ignores its mailbox closing
        finally:
            finished.append(ctx.name)

    children = [spec("first", tidy), spec("stubborn", stubborn), spec("last", tidy)]
    async with trio.open_nursery() as nursery:
        sup = await nursery.start(Supervisor("root", children=children).run)
        t0 = trio.current_time()
        await sup.stop(timeout=3.0)
        # last: 0.5 s; stubborn: cancelled when the 3 s deadline is reached;
        # first: no time left, cancelled at once.
        assert trio.current_time() - t0 == pytest.approx(3.0)
    assert finished == ["last", "stubborn"]
    assert not sup.running
    assert {r.status for r in sup.report().values()} == {ChildStatus.STOPPED}


async def test_a_crash_during_a_graceful_stop_is_recorded_but_not_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fails_on_close(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async for _ in mailbox:
            pass
        raise OSError("flush failed")

    async with open_supervisor("root", [spec("c", fails_on_close)]) as sup:
        final = await sup.stop_child("c")
    assert (final.status, final.restarts) == (ChildStatus.STOPPED, 0)
    assert "flush failed" in (final.last_error or "")


# ---------------------------------------------------------------- cancellation


async def test_cancelling_the_supervisor_is_not_a_crash_and_leaves_no_task_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = count_tasks()
    children = [spec("a"), spec("b", backoff=Backoff(initial=60.0, jitter=False))]
    sup = Supervisor("root", children=children)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        sup.mailbox("b").put_nowait("poison")  # b is in a long backoff when cancelled
        sup.mailbox("a").put_nowait("x")
        await trio.sleep(1)
        assert count_tasks() == before + 3  # run + one task per child
        nursery.cancel_scope.cancel()
    assert count_tasks() == before
    report = sup.report()
    assert {r.status for r in report.values()} == {ChildStatus.STOPPED}
    assert report["a"].restarts == 0 and report["a"].last_error is None
    assert report["b"].restarts == 0  # the backoff was cut short: no restart happened
    assert len(sup.dead_letters) == 1  # only the genuine crash


async def test_an_error_raised_while_a_child_is_being_cancelled_does_not_hide_the_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def messy(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        async def helper() -> None:
            try:
                await trio.sleep_forever()
            finally:
                raise OSError("cleanup failed")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(helper)
            await trio.sleep_forever()

    sup = Supervisor("root", children=[spec("m", messy)])
    with trio.move_on_after(1) as scope:
        await sup.run()
    assert scope.cancelled_caught  # the Cancelled reached its scope
    report = sup.report()["m"]
    assert (report.status, report.restarts) == (ChildStatus.STOPPED, 0)
    assert "cleanup failed" in (report.last_error or "")


async def test_keyboard_interrupt_in_a_child_is_never_treated_as_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def interrupted(mailbox: Mailbox[int], state: Log, ctx: ActorContext) -> None:
        raise KeyboardInterrupt

    sup = Supervisor("root", children=[spec("k", interrupted)])
    with pytest.raises(BaseExceptionGroup) as info:
        await sup.run()
    assert info.group_contains(KeyboardInterrupt, depth=None)
    assert sup.report()["k"].restarts == 0
    assert sup.report()["k"].last_error is None


# ---------------------------------------------------------------- observability


async def test_the_report_shows_each_childs_mailbox_counters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def idle(mailbox: Mailbox[Any], state: Log, ctx: ActorContext) -> None:
        await trio.sleep_forever()

    children = [
        spec("drops", idle, mailbox_bound=2, overflow=Overflow.DROP_NEWEST),
        spec("latest", idle, mailbox_bound=4, overflow=Overflow.CONFLATE, conflate_key=len),
    ]
    async with open_supervisor("root", children) as sup:
        for word in ["a", "b", "c"]:
            sup.mailbox("drops").put_nowait(word)
        for word in ["a", "bb", "c", "dd", "e"]:
            sup.mailbox("latest").put_nowait(word)
        report = sup.report()
    assert (report["drops"].depth, report["drops"].high_water, report["drops"].dropped) == (2, 2, 1)
    assert (report["latest"].depth, report["latest"].dropped) == (2, 3)
    assert report["drops"].status is ChildStatus.RUNNING


def test_specs_are_validated_at_the_edge() -> None:
    with pytest.raises(ValueError, match="conflate_key"):
        spec("x", overflow=Overflow.CONFLATE)
    with pytest.raises(ValueError, match="mailbox_bound"):
        spec("x", mailbox_bound=0)
    with pytest.raises(DuplicateChild):
        Supervisor("root", children=[spec("x"), spec("x")])


# ---------------------------------------------------------------- lifecycle


async def test_an_error_in_the_open_supervisor_block_comes_out_bare_after_a_graceful_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(LookupError, match="from the body"):
        async with open_supervisor("root", [spec("a")]) as sup:
            for i in range(3):
                sup.mailbox("a").put_nowait(i)
            raise LookupError("from the body")
    assert sup.child_state("a").handled == [0, 1, 2]
    assert sup.report()["a"].status is ChildStatus.STOPPED


async def test_a_supervisor_runs_once_and_refuses_children_when_not_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sup = Supervisor("root")
    with pytest.raises(NotRunning):
        await sup.start_child(spec("early"))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sup.stop()
    with pytest.raises(NotRunning):
        await sup.run()
    with pytest.raises(NotRunning):
        await sup.start_child(spec("late"))


async def test_a_child_that_fails_before_reporting_started_fails_start_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = spec("c", crasher, restart=Restart.TEMPORARY, waits_for_started=True)
    async with open_supervisor("root") as sup:
        with pytest.raises(NotRunning, match="ended before it started"):
            await sup.start_child(child)
        assert sup.report()["c"].status is ChildStatus.FAILED

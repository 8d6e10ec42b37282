"""What a supervised `actors.Mailbox` costs over a bare trio memory channel.

Run: ``python -m benchmarks.mailbox [--rounds 5] [--hop 50000] [--batch 500000]``

Two patterns, each against its baseline in the same run, rounds interleaved,
median reported (the machine is shared and noisy: trust the ratios):

- one hop: a producer task does ``await send(msg)`` per message, a consumer
  task does ``async for msg in ...``; bare channel vs mailbox.
- batch drain: a producer ``send_nowait`` / ``put_nowait`` s a burst of
  messages then yields; the consumer waits for one and drains the rest with
  ``receive_nowait`` until `trio.WouldBlock`; bare vs mailbox (and the
  mailbox's ``drain_nowait`` for reference).

The mailbox runs under a real `Supervisor` (as a child's mailbox), so the
figure includes whatever supervision adds on the message path (nothing, by
design: the supervisor is not on it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from actors import ActorContext, ChildSpec, Mailbox, Restart, open_supervisor

BOUND = 1000
BURST = 100


async def _hop_bare(n: int) -> float:
    send, receive = trio.open_memory_channel[int](BOUND)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        async with receive:
            async for _ in receive:
                count += 1
        assert count == n
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.lowlevel.checkpoint()
        start = time.perf_counter()
        async with send:
            for i in range(n):
                await send.send(i)
        await done.wait()
        return time.perf_counter() - start


async def _consume_all(mailbox: Mailbox[int], state: dict[str, Any], ctx: ActorContext) -> None:
    count = 0
    async for _ in mailbox:
        count += 1
    state["count"] = count
    state["done"].set()


async def _drain_all(mailbox: Mailbox[int], state: dict[str, Any], ctx: ActorContext) -> None:
    count = 0
    receive_nowait = mailbox.receive_nowait
    try:
        while True:
            await mailbox.receive()
            count += 1
            try:
                while True:
                    receive_nowait()
                    count += 1
            except trio.WouldBlock:
                pass
    except trio.EndOfChannel:
        pass
    state["count"] = count
    state["done"].set()


async def _drain_batches(mailbox: Mailbox[int], state: dict[str, Any], ctx: ActorContext) -> None:
    count = 0
    try:
        while True:
            count += len(await mailbox.receive_batch(BOUND))
    except trio.EndOfChannel:
        pass
    state["count"] = count
    state["done"].set()


ActorFn = Callable[[Mailbox[int], dict[str, Any], ActorContext], Awaitable[None]]


async def _supervised(actor: ActorFn, n: int, produce: Callable[[Mailbox[int]], Any]) -> float:
    state: dict[str, Any] = {"done": trio.Event()}
    spec = ChildSpec(
        name="consumer",
        actor=actor,
        state_factory=lambda: state,
        mailbox_bound=BOUND,
        restart=Restart.TRANSIENT,  # it returns when the benchmark closes its mailbox
    )
    async with open_supervisor("bench", [spec]) as sup:
        mailbox: Mailbox[int] = sup.mailbox("consumer")
        await trio.lowlevel.checkpoint()
        start = time.perf_counter()
        await produce(mailbox)
        mailbox.close()
        await state["done"].wait()
        elapsed = time.perf_counter() - start
    assert state["count"] == n, state["count"]
    return elapsed


async def _hop_mailbox(n: int) -> float:
    async def produce(mailbox: Mailbox[int]) -> None:
        for i in range(n):
            await mailbox.send(i)

    return await _supervised(_consume_all, n, produce)


async def _burst_bare(n: int) -> float:
    send, receive = trio.open_memory_channel[int](BOUND)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        try:
            while True:
                await receive.receive()
                count += 1
                try:
                    while True:
                        receive.receive_nowait()
                        count += 1
                except trio.WouldBlock:
                    pass
        except trio.EndOfChannel:
            pass
        assert count == n
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.lowlevel.checkpoint()
        start = time.perf_counter()
        send_nowait = send.send_nowait
        for i in range(0, n, BURST):
            for j in range(i, min(n, i + BURST)):
                send_nowait(j)
            await trio.lowlevel.checkpoint()
        await send.aclose()
        await done.wait()
        return time.perf_counter() - start


def _burst_producer(n: int) -> Callable[[Mailbox[int]], Any]:
    async def produce(mailbox: Mailbox[int]) -> None:
        put_nowait = mailbox.put_nowait
        for i in range(0, n, BURST):
            for j in range(i, min(n, i + BURST)):
                put_nowait(j)
            await trio.lowlevel.checkpoint()

    return produce


async def _burst_mailbox(n: int) -> float:
    return await _supervised(_drain_all, n, _burst_producer(n))


async def _burst_mailbox_batches(n: int) -> float:
    return await _supervised(_drain_batches, n, _burst_producer(n))


async def _measure(rounds: int, hop_n: int, burst_n: int) -> dict[str, list[float]]:
    cases: list[tuple[str, Callable[[int], Awaitable[float]], int]] = [
        ("hop: bare channel await send / async for", _hop_bare, hop_n),
        ("hop: mailbox await send / async for", _hop_mailbox, hop_n),
        ("burst: bare send_nowait / receive_nowait", _burst_bare, burst_n),
        ("burst: mailbox put_nowait / receive_nowait", _burst_mailbox, burst_n),
        ("burst: mailbox put_nowait / receive_batch", _burst_mailbox_batches, burst_n),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for round_no in range(rounds):
        # Alternate the order so neither side always runs on a warmer cache.
        ordered = cases if round_no % 2 == 0 else cases[::-1]
        for name, fn, n in ordered:
            rates[name].append(n / await fn(n))
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hop", type=int, default=50_000, help="messages per one-hop run")
    parser.add_argument("--batch", type=int, default=500_000, help="messages per burst run")
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    rates = trio.run(_measure, args.rounds, args.hop, args.batch)
    wall = time.perf_counter() - wall

    print(f"{'pattern':<46} {'median msg/s':>13} {'min':>11} {'max':>11} {'µs/msg':>7}")
    for name, values in rates.items():
        med = statistics.median(values)
        print(
            f"{name:<46} {med:>13,.0f} {min(values):>11,.0f} {max(values):>11,.0f}"
            f" {1e6 / med:>7.2f}"
        )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    names = list(medians)
    print()
    print(f"ratio hop   (mailbox / bare): {medians[names[1]] / medians[names[0]]:.2f}")
    print(f"ratio burst (mailbox / bare): {medians[names[3]] / medians[names[2]]:.2f}")
    print(f"ratio burst (receive_batch / bare): {medians[names[4]] / medians[names[2]]:.2f}")
    print(f"({args.rounds} interleaved rounds, medians; wall {wall:.1f} s)")


if __name__ == "__main__":
    main()

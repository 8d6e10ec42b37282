"""The gateway's WebSocket opener (`gateway.runtime.websocket.open_websocket`): a server
ping that arrives during our close handshake (trio-websocket #184) is skipped, as RFC 6455
allows, where plain trio-websocket fails; and its reader queues whole messages without a
scheduler pass each, with the same messages, order and oversize close as the library's.
The gateway end to end under the close fault is in tests/test_connection.py (section 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio_websocket
import wsproto.utilities
from trio.testing import MockClock
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request, TextMessage

from gateway.runtime.websocket import open_websocket
from gateway.simulator import Simulator, open_simulator


@asynccontextmanager
async def exchange() -> AsyncIterator[Simulator]:
    async with open_simulator(symbols=("BTCUSDT",), seed=11, clock="virtual",
                              pacing="manual") as sim:  # fmt: skip
        yield sim


async def test_the_exchange_can_ping_during_a_close_and_it_trips_plain_trio_websocket(
    autojump_clock: MockClock,
) -> None:
    # The fault is real: unguarded trio-websocket 0.12.2 fails exactly as #184 says.
    async with exchange() as sim:
        sim.control.ping_before_close_reply(3)
        with pytest.RaisesGroup(
            pytest.RaisesExc(wsproto.utilities.LocalProtocolError, match="LOCAL_CLOSING"),
            flatten_subgroups=True,
        ):
            async with trio.open_nursery() as nursery:
                stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, "127.0.0.1", "/stream?streams=btcusdt@trade"
                )
                await ws.aclose()


async def test_our_websocket_skips_a_ping_that_arrives_during_its_close(
    autojump_clock: MockClock,
) -> None:
    # The same fault as above, on the gateway's own opener: the close completes cleanly.
    async with exchange() as sim:
        sim.control.ping_before_close_reply(3)
        async with trio.open_nursery() as nursery:
            stream = await trio.open_tcp_stream("127.0.0.1", sim.port)
            ws = await open_websocket(
                nursery, stream, "127.0.0.1", "/stream?streams=btcusdt@trade", None
            )
            await ws.aclose()
        assert ws.closed is not None and ws.closed.code == 1000
        with trio.fail_after(10):
            await sim.control.wait_for(lambda st: st.closes_by_code.get(1000) == 1)


# --- The reader's hand-off: whole messages are queued without a scheduler pass each ---


_Sent = list[TextMessage | BytesMessage]


def _messages() -> _Sent:
    """Whole, fragmented and bytes messages (some fragments as bytearray payloads), then a
    run of small ones that share a network read."""
    out: _Sent = [
        TextMessage(data="whole"),
        TextMessage(data="fr", message_finished=False),
        TextMessage(data="ag", message_finished=False),
        TextMessage(data="mented"),
        BytesMessage(data=b"\x00\x01bytes"),
        BytesMessage(data=b"by", message_finished=False),
        BytesMessage(data=b"tes2"),
    ]
    out += [TextMessage(data=f'{{"n":{i}}}') for i in range(_RUN)]
    return out


_RUN = 300


async def _raw_server(messages: _Sent, stream: trio.SocketStream) -> None:
    """A server written on wsproto directly: accepts, writes ``messages`` in one write,
    then answers the client's close."""
    ws = WSConnection(ConnectionType.SERVER)
    with trio.fail_after(20):
        while (data := await stream.receive_some(65536)) != b"":
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection()))
                    await stream.send_all(b"".join(ws.send(m) for m in messages))
                elif isinstance(event, CloseConnection):
                    await stream.send_all(ws.send(event.response()))
                    return


async def _serve(nursery: trio.Nursery, messages: _Sent) -> trio.SocketStream:
    """A client socket to a `_raw_server` of ``messages`` on a free loopback port."""
    serve = partial(trio.serve_tcp, partial(_raw_server, messages), 0, host="127.0.0.1")
    listeners = await nursery.start(serve)
    return await trio.open_tcp_stream("127.0.0.1", listeners[0].socket.getsockname()[1])


class _Steps(trio.abc.Instrument):
    """Counts the steps of the tasks whose name ends with ``suffix``."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith(self.suffix):
            self.steps += 1


async def _receive_all(ws: trio_websocket.WebSocketConnection, count: int) -> list[str | bytes]:
    """``count`` messages, taken without a wait when the connection can."""
    take = getattr(ws, "get_message_nowait", None)
    got: list[str | bytes] = []
    with trio.fail_after(20):
        while len(got) < count:
            try:
                got.append(take() if take is not None else await ws.get_message())
            except trio.WouldBlock:
                got.append(await ws.get_message())
    return got


@pytest.mark.parametrize("ours", [True, False], ids=["gateway", "trio-websocket"])
async def test_messages_arrive_whole_in_order_and_ours_queue_without_a_pass_each(
    ours: bool,
) -> None:
    messages = _messages()
    expected: list[str | bytes] = ["whole", "fragmented", b"\x00\x01bytes", b"bytes2"]
    expected += [f'{{"n":{i}}}' for i in range(_RUN)]
    steps = _Steps("._read" if ours else "._reader_task")
    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            stream = await _serve(nursery, messages)
            if ours:
                ws = await open_websocket(nursery, stream, "127.0.0.1", "/", None)
            else:
                ws = await trio_websocket.wrap_client_stream(
                    nursery, stream, "127.0.0.1", "/", message_queue_size=256,
                    receive_buffer_size=65536,
                )  # fmt: skip
            got = await _receive_all(ws, len(expected))
            await ws.aclose()
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert got == expected
    assert [type(m) for m in got] == [type(m) for m in expected]  # bytes, never bytearray
    if ours:  # a step per network read or full queue, not per message
        assert steps.steps < _RUN // 4, steps.steps
    else:  # the library's own reader awaits a send, a scheduler pass, for every message
        assert steps.steps >= _RUN, steps.steps


async def test_an_oversize_message_still_closes_with_1009_after_those_before_it() -> None:
    big = "x" * (8 * 2**20 + 1)  # one past open_websocket's max_message_size
    messages: _Sent = [TextMessage(data="before"), TextMessage(data=big)]
    async with trio.open_nursery() as nursery:
        stream = await _serve(nursery, messages)
        ws = await open_websocket(nursery, stream, "127.0.0.1", "/", None)
        with trio.fail_after(20):
            assert await ws.get_message() == "before"
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
        with pytest.raises(trio_websocket.ConnectionClosed):
            ws.get_message_nowait()  # type: ignore[attr-defined]
        await stream.aclose()  # 0.12.2 leaves the socket open after a close it started
        nursery.cancel_scope.cancel()
    assert closed.value.reason.code == 1009

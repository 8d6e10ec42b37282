"""The soak's exchange in its own process (`gateway.app.chaos_exchange`), driven one
command at a time over its stdin and stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from gateway import GatewayError

if TYPE_CHECKING:
    from gateway.app.soak import SoakParams

__all__ = ["Exchange", "ProcessExchange", "history_of", "open_process_exchange"]


class Exchange(Protocol):
    """The soak's view of the exchange: its URLs and one command at a time."""

    ws_url: str
    rest_url: str
    pid: int | None

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]: ...


class ProcessExchange:
    """`gateway.app.chaos_exchange` in a child process; commands over its stdin."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.ws_url = self.rest_url = ""
        self.pid: int | None = proc.pid
        self._buf = b""
        self._lock = trio.Lock()

    async def _line(self) -> dict[str, Any]:
        out = self.proc.stdout
        assert out is not None
        for _ in range(1_000_000):  # bounded: a reply is far shorter than 64 GB
            if b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                reply: dict[str, Any] = json.loads(line)
                return reply
            chunk = await out.receive_some(1 << 20)
            if not chunk:
                raise GatewayError("the exchange process ended")
            self._buf += chunk
        raise GatewayError("the exchange sent an endless line")

    async def ready(self) -> None:
        """Wait for the exchange's ready line (at most 60 s)."""
        with trio.fail_after(60):
            hello = await self._line()
        self.ws_url, self.rest_url = hello["ws_url"], hello["rest_url"] or ""

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send ``cmd``, wait for its reply (at most 60 s)."""
        stdin = self.proc.stdin
        assert stdin is not None
        async with self._lock:
            with trio.fail_after(60):
                await stdin.send_all(json.dumps(cmd).encode() + b"\n")
                return await self._line()


@asynccontextmanager
async def open_process_exchange(
    params: SoakParams, names: list[str], log_path: Path | None
) -> AsyncIterator[ProcessExchange]:
    """Start the exchange process; on exit ask it to quit (killed after 10 s)."""
    argv = [sys.executable, "-m", "gateway.app.chaos_exchange", "--symbols", ",".join(names),
            "--seed", str(params.seed), "--rate", str(params.rate),
            "--history", str(history_of(params))]  # fmt: skip
    err = (open(log_path, "wb")  # noqa: ASYNC230, SIM115 - once, before anything runs
           if log_path is not None else subprocess.DEVNULL)
    try:
        proc = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=err)  # fmt: skip
        try:
            link = ProcessExchange(proc)
            await link.ready()
            yield link
            with trio.move_on_after(10):
                await link.call({"op": "quit"})
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await proc.wait()
    finally:
        if not isinstance(err, int):
            err.close()


def history_of(params: SoakParams) -> int:
    """Trades the exchange's REST side keeps per symbol: the largest gap plus 15,000."""
    return params.big_gap + 15_000

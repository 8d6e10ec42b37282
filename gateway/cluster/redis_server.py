"""A private ``redis-server`` on a free loopback port, in a temporary directory.

For tests, and for `gateway cluster` when no Redis URL is given, so that the main job
works on a fresh machine with Debian's ``redis-server`` installed and nothing else. It
persists nothing (no RDB, no AOF), listens on 127.0.0.1 only, and can be stopped and
started again on the same port (the Redis-outage tests do).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from gateway.errors import GatewayError

__all__ = ["PrivateRedis", "RedisUnavailable", "open_private_redis", "stop_process"]

_INSTALL_HINT = (
    "install Debian's redis-server (apt-get install -y redis-server) or give a Redis URL"
)


class RedisUnavailable(GatewayError):
    """No ``redis-server`` could be found or started; the message says what to do."""


async def stop_process(proc: trio.Process, grace: float = 5.0) -> None:
    """Stop a child process and reap it: SIGTERM, then SIGKILL after ``grace`` s;
    shielded, so that a cancelled caller never leaves it running (bounded by ``grace``).
    Nothing if it has exited."""
    if proc.returncode is not None:
        return
    with trio.CancelScope(shield=True):
        proc.terminate()
        with trio.move_on_after(grace):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _free_port() -> int:
    """A loopback TCP port free at the time of asking (the server may still lose a race
    for it: `PrivateRedis.start` then tries another)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """One ``redis-server`` process of ours: `start`, `stop`, `start` again on the same
    port. ``url`` is ``redis://127.0.0.1:<port>/0``."""

    def __init__(self, executable: str = "redis-server", directory: Path | None = None) -> None:
        found = shutil.which(executable)
        if found is None:
            raise RedisUnavailable(f"{executable!r} was not found on PATH: {_INSTALL_HINT}")
        self.executable = found
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="gateway-redis-")
            directory = Path(self._tmp.name)
        self.directory = directory
        self.port = 0
        self._process: trio.Process | None = None

    @property
    def url(self) -> str:
        """Where clients connect (valid once started)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process runs."""
        return self._process is not None and self._process.returncode is None

    async def start(self, startup_limit: float = 10.0) -> None:
        """Start the server (on the port it had before, if any) and wait until it
        answers PING; `RedisUnavailable` if it does not within ``startup_limit`` s."""
        if self.running:
            return
        keep_port = self.port != 0
        for _attempt in range(3):  # a lost race for a free port: another port
            if not keep_port:
                self.port = _free_port()
            self._process = await trio.lowlevel.open_process(
                self._argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                ready = await self._wait_ready(startup_limit)
            except BaseException:  # cancelled (Ctrl-C) while waiting: never leave it running
                await self.stop()
                raise
            if ready:
                return
            await self.stop()
        log = self.directory / "redis.log"
        tail = log.read_text(errors="replace")[-400:] if log.exists() else "(no log)"
        raise RedisUnavailable(f"redis-server did not start on 127.0.0.1:{self.port}: {tail}")

    def _argv(self) -> list[str]:
        return [
            self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log"),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip

    async def _wait_ready(self, limit: float) -> bool:
        """Poll the new process with PING until it answers, exits, or ``timeout`` passes
        (an external process: there is nothing to wait on but its port)."""
        with trio.move_on_after(limit):
            for _ in range(int(limit / 0.01) + 1):
                if self._process is None or self._process.returncode is not None:
                    return False
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.01)
                    continue
                async with stream:
                    await stream.send_all(b"PING\r\n")
                    reply = await stream.receive_some(64)
                if reply.startswith(b"+PONG"):
                    return True
                await trio.sleep(0.01)  # "-LOADING": not ready yet
        return False

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and reap it, even when
        cancelled (shielded: bounded by those 5 s); nothing if not running."""
        proc, self._process = self._process, None
        if proc is not None:
            await stop_process(proc)

    def cleanup(self) -> None:
        """Remove the temporary directory (if this object made it)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@asynccontextmanager
async def open_private_redis(executable: str = "redis-server") -> AsyncIterator[PrivateRedis]:
    """A started `PrivateRedis`, stopped and removed on exit (even when cancelled)."""
    server = PrivateRedis(executable)
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.stop()
        server.cleanup()

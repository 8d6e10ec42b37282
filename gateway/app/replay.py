"""``gateway replay``: serve recorded frames through the embedded exchange, as if live.

The recording starts when the first client subscribes (on ``/stream`` with SUBSCRIBE,
or with ``?streams=`` in the URL) and is served at ``--speed`` times the recorded pace
(0: as fast as the clients take it). Each frame goes to the clients subscribed to its
stream, byte for byte as recorded for combined-stream clients. Several files (a
rotated recording) are served one after the other; gzip files are read as well.

The REST side is served too, on the same port: ``exchangeInfo`` lists the recording's
symbols and ``/api/v3/depth`` answers with the depth snapshots recorded beside the
frames (``--rest FILE``, by default the ``rest.txt`` next to the first recording), so a
gateway's order books sync on the replayed diffs with no request leaving the machine.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import trio

from gateway.app.options import run_command_line
from gateway.app.recording import read_recording_lines
from gateway.config import rest_url_for
from gateway.errors import ConfigError
from gateway.simulator import Simulator, open_simulator
from gateway.simulator.replay import (
    Recording,
    load_recording,
    recorded_suffixes,
    recorded_symbols,
)

__all__ = ["add_replay_arguments", "main_replay", "merge_recordings", "suggested_run"]


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``replay`` options."""
    add = parser.add_argument
    add("files", nargs="+", metavar="FILE",
        help="recording(s) in the binance-recorded format (.gz too); several are "
        "served in the order given")  # fmt: skip
    add(
        "--speed",
        type=float,
        default=1.0,
        help="pace factor: 1 = as recorded, 10 = ten times faster, 0 = as fast as possible",
    )
    add("--host", default="127.0.0.1", help="interface to listen on")
    add("--port", type=int, default=0, help="WebSocket port (0: pick a free one)")
    add("--loop", action="store_true", help="start again after the last frame")
    add("--rest", metavar="FILE", default=None,
        help="recorded REST depth snapshots (default: rest.txt beside the first FILE, if "
        "there)")  # fmt: skip
    add("--log-level", default="WARNING", help="logging level")


def merge_recordings(files: list[str], into: Path) -> Path:
    """One plain recording file from ``files`` (first header, then every frame in order);
    returns ``files[0]`` itself when it is a single plain file. Raises `ConfigError`."""
    if len(files) == 1 and Path(files[0]).read_bytes()[:2] != b"\x1f\x8b":
        return Path(files[0])
    header: str | None = None
    with open(into, "wb") as out:
        for name in files:
            head, lines = read_recording_lines(name)
            if header is None:
                header = head
                out.write(head.encode() + b"\n")
            for line in lines:
                out.write(line + b"\n")
    return into


def rest_file_for(args: argparse.Namespace) -> str | None:
    """The recorded REST snapshots to serve: ``--rest``, else ``rest.txt`` beside the
    first recording (None if there is none)."""
    if args.rest is not None:
        return str(args.rest)
    beside = Path(args.files[0]).with_name("rest.txt")
    return str(beside) if beside.is_file() else None


def suggested_run(sim: Simulator, recording: Recording) -> str:
    """The ``gateway run`` command line that consumes this replay (REST included)."""
    symbols = recorded_symbols(recording)  # market-wide streams name no symbol
    suffixes = recorded_suffixes(recording)
    rest = rest_url_for(sim.ws_url) if sim.rest_url else None  # the stream port serves it
    return run_command_line(sim.ws_url, rest, symbols, suffixes)


async def _serve(args: argparse.Namespace, path: Path) -> None:
    symbols = recorded_symbols(load_recording(path))
    named: dict[str, Any] = {"symbols": symbols} if symbols else {}  # none: the defaults
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_simulator(
            host=args.host, port=args.port, rest=True, pacing="replay",
            replay_file=str(path), replay_speed=args.speed, replay_loop=args.loop,
            replay_rest_file=rest_file_for(args), **named,
        ) as sim, trio.open_nursery() as nursery:  # fmt: skip
            rec = sim.recording
            assert rec is not None
            span = rec.frames[-1].time - rec.frames[0].time if rec.frames else 0.0
            pace = "as fast as possible" if args.speed == 0 else f"speed {args.speed:g}"
            print(f"replay: {len(rec.frames)} frames of {len(rec.streams)} streams, "
                  f"{span:.1f}s recorded, {pace}; starts when a client subscribes")  # fmt: skip
            print(f"ws_url={sim.ws_url}")
            print(f"try: {suggested_run(sim, rec)}", flush=True)
            nursery.start_soon(_announce_done, sim, len(rec.frames))
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    print("replay: stopped", flush=True)


async def _announce_done(sim: Simulator, frames: int) -> None:
    await sim.control.wait_replay_done()
    print(f"replay: finished, {frames} frames published", flush=True)


def main_replay(args: argparse.Namespace) -> int:
    """``gateway replay``: serves until Ctrl-C (exit 0); 2 for a bad file or option."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    if args.speed < 0:
        print(f"gateway replay: --speed must be >= 0, got {args.speed}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-replay-") as tmp:
            path = merge_recordings(args.files, Path(tmp) / "stream.txt")
            trio.run(partial(_serve, args, path))
    except ConfigError as exc:
        print(f"gateway replay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gateway replay: {exc}", file=sys.stderr)
        return 2
    return 0

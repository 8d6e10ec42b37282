"""Recorded frames (``stream.txt``) loaded and served again, in order, at any speed.

File format (see data/binance-recorded/README.md): line 1 ``<url> <-> <connect time>``,
then ``<receive time>: <frame>`` per line, each frame a combined wrapper. Each frame is
served to the clients subscribed to its stream; a combined client receives the recorded
line byte for byte, a raw client its ``data`` part.
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from gateway.errors import ConfigError
from gateway.simulator.hub import Hub
from gateway.simulator.market import Emission

__all__ = ["RecordedFrame", "Recording", "load_recording", "load_rest_depths", "run_replay"]

logger = logging.getLogger(__name__)
_BURST = 256


@attrs.frozen(slots=True)
class RecordedFrame:
    """One recorded frame: receive time (s), stream name, the whole line, its data part."""

    time: float
    stream: str
    text: bytes
    data: bytes


@attrs.frozen(slots=True)
class Recording:
    """A parsed ``stream.txt``."""

    url: str
    connect_time: float
    frames: tuple[RecordedFrame, ...]

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream names in order of first appearance."""
        return tuple(dict.fromkeys(f.stream for f in self.frames))


def recorded_symbols(recording: Recording) -> tuple[str, ...]:
    """The symbols a recording streams, in order of first appearance (market-wide
    streams such as ``!miniTicker@arr`` name none)."""
    return tuple(dict.fromkeys(s.split("@", 1)[0].upper() for s in recording.streams
                               if not s.startswith("!")))  # fmt: skip


def recorded_suffixes(recording: Recording) -> tuple[str, ...]:
    """The per-symbol stream suffixes a recording streams (``trade``, ``depth@100ms``...)."""
    return tuple(dict.fromkeys(s.split("@", 1)[1] for s in recording.streams
                               if "@" in s and not s.startswith("!")))  # fmt: skip


def load_recording(path: str | Path) -> Recording:
    """Parse a recording; raises `ConfigError` naming the line that is not understood."""
    lines = Path(path).read_bytes().split(b"\n")
    head = lines[0].decode().rsplit(" <-> ", 1)
    if len(head) != 2:
        raise ConfigError(f"{path}: line 1 must be '<url> <-> <connect time>'")
    frames = []
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        stamp, _, text = line.partition(b": ")
        try:
            obj = orjson.loads(text)
            stream, when = obj["stream"], float(stamp)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}:{no}: expected '<time>: <combined frame>'") from None
        prefix = b'{"stream":"' + stream.encode() + b'","data":'
        if text.startswith(prefix) and text.endswith(b"}"):
            data = text[len(prefix) : -1]
        else:  # different spacing: fall back to re-serialising (combined text stays exact)
            data = orjson.dumps(obj["data"])
        frames.append(RecordedFrame(when, stream, text, data))
    return Recording(head[0], float(head[1]), tuple(frames))


def load_rest_depths(path: str | Path) -> dict[str, dict[str, Any]]:
    """The depth snapshots of a recording's ``rest.txt`` (``<url> -> <time>: <body>``),
    the last one per symbol; raises `ConfigError` naming a line that is not understood."""
    out: dict[str, dict[str, Any]] = {}
    for no, line in enumerate(Path(path).read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        head, _, text = line.partition(b": ")
        url = head.decode(errors="replace").partition(" -> ")[0]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        try:
            body = orjson.loads(text)
            symbol = query["symbol"][0].upper()
            if not isinstance(body["lastUpdateId"], int):
                raise TypeError
            body["bids"], body["asks"] = list(body["bids"]), list(body["asks"])
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
            raise ConfigError(f"{path}:{no}: expected '<depth url> -> <time>: <depth body>'"
                              ) from None  # fmt: skip
        if "/depth" in url:
            out[symbol] = body
    return out


def _emission(frame: RecordedFrame) -> Emission:
    return (frame.stream, "raw", (frame.data, None, frame.text))


async def run_replay(
    recording: Recording, hub: Hub, *, speed: float, wait_for_subscriber: bool, loop: bool,
    done: trio.Event,
) -> None:  # fmt: skip
    """Publish the recording's frames at ``speed`` x the original pace (0: as fast as the
    clients take them); sets ``done`` after the last frame unless ``loop``."""
    if wait_for_subscriber:
        await hub.subscribed.wait()
    while True:
        frames = recording.frames
        start = trio.current_time()
        t0 = frames[0].time if frames else 0.0
        for i in range(0, len(frames), 1 if speed > 0 else _BURST):
            if speed > 0:
                await trio.sleep_until(start + (frames[i].time - t0) / speed)
                hub.publish([_emission(frames[i])], trio.current_time())
            else:
                await hub.wait_room(5.0)
                hub.publish([_emission(f) for f in frames[i : i + _BURST]], trio.current_time())
                await trio.lowlevel.checkpoint()
        logger.info("replay of %d frames finished", len(frames))
        done.set()
        if not loop:
            return

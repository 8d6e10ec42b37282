"""Helpers for the real Binance recordings in ``tests/data/binance-recorded`` (its
README.md says where they come from); the repository carries them, so a clone is enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import orjson

from gateway.core.codec import decode_frame
from gateway.core.frames import Event

_HERE = Path(__file__).resolve()
_CANDIDATES = (_HERE.parent / "data" / "binance-recorded",)
RECORDINGS = ("2021-04-17", "2021-08-14", "2021-10-12")


def recorded_dir() -> Path:
    """The first folder that holds all three recordings."""
    for base in _CANDIDATES:
        if all((base / name / "stream.txt").is_file() for name in RECORDINGS):
            return base
    raise FileNotFoundError(f"no Binance recordings in {[str(c) for c in _CANDIDATES]}")


@attrs.frozen
class StreamFrame:
    receive_time: float
    stream: str
    event: Event


@attrs.frozen
class Snapshot:
    symbol: str
    receive_time: float
    last_update_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


def stream_frames(recording: str) -> Iterator[StreamFrame]:
    """Every frame of ``recording``'s stream.txt, decoded, in file order."""
    with open(recorded_dir() / recording / "stream.txt", encoding="utf-8") as f:
        next(f)  # the URL line
        for line in f:
            line = line.strip()
            if not line:
                continue
            stamp, _, frame = line.partition(": ")
            stream = orjson.loads(frame)["stream"]
            yield StreamFrame(float(stamp), stream, decode_frame(frame))


def snapshots(recording: str) -> list[Snapshot]:
    """The REST depth snapshots of ``recording``'s rest.txt."""
    out = []
    with open(recorded_dir() / recording / "rest.txt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            head, _, body = line.partition(": ")
            url, _, stamp = head.partition(" -> ")
            symbol = url.split("symbol=")[1].split("&")[0]
            data = orjson.loads(body)
            out.append(
                Snapshot(
                    symbol,
                    float(stamp),
                    data["lastUpdateId"],
                    tuple((float(p), float(q)) for p, q in data["bids"]),
                    tuple((float(p), float(q)) for p, q in data["asks"]),
                )
            )
    return out


def raw_frames(recording: str) -> Iterator[tuple[float, str]]:
    """``(receive_time_s, frame_text)`` for each frame of ``recording``'s stream.txt."""
    with open(recorded_dir() / recording / "stream.txt", encoding="utf-8") as f:
        next(f)  # the URL line
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            stamp, _, frame = line.partition(": ")
            yield float(stamp), frame


def stream_url(recording: str) -> str:
    """The combined-stream URL the recording was opened with."""
    with open(recorded_dir() / recording / "stream.txt", encoding="utf-8") as f:
        return f.readline().split(" <-> ")[0]

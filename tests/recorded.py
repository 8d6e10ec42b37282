"""Access to the real frames recorded from Binance (copied from shared/data/binance-recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

RECORDED_DIR = Path(__file__).parent / "data" / "binance-recorded"
RECORDINGS = sorted(p.name for p in RECORDED_DIR.iterdir() if p.is_dir())


def stream_frames(recording: str) -> Iterator[tuple[float, str]]:
    """Yield ``(receive_time_s, frame_text)`` for each frame of a recording's stream.txt."""
    with open(RECORDED_DIR / recording / "stream.txt", encoding="utf-8") as fh:
        next(fh)  # "<url> <-> <connect time>"
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            ts, _, frame = line.partition(": ")
            yield float(ts), frame


def stream_url(recording: str) -> str:
    """The combined-stream URL the recording was opened with."""
    with open(RECORDED_DIR / recording / "stream.txt", encoding="utf-8") as fh:
        return fh.readline().split(" <-> ")[0]

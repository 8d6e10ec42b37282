"""Recording files in the ``binance-recorded`` line format: writing with rotation, reading.

Format (tests/data/binance-recorded/README.md): line 1 ``<url> <-> <connect time>``,
then one ``<receive time>: <frame>`` line per market frame (a combined-stream
wrapper), times in Unix seconds. A file whose name ends in ``.gz`` is gzip-compressed.
Rotation by size writes ``FILE``, then ``FILE.1``, ``FILE.2``, ... in order, each
starting with the same header line, so each file is a recording of its own.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import BinaryIO

__all__ = ["FrameRecorder", "read_recording_lines", "rotated_name"]

log = logging.getLogger(__name__)

_MARKET_PREFIX = '{"stream"'
_GZIP_MAGIC = b"\x1f\x8b"


def rotated_name(path: Path, index: int) -> Path:
    """The ``index``-th file of a rotated recording (0: ``path`` itself)."""
    return path if index == 0 else path.with_name(f"{path.name}.{index}")


class FrameRecorder:
    """A frame tap (``recorder(frame, receive_ns)``) that writes market frames to files.

    Control replies (frames that are not combined-stream wrappers) are counted in
    ``skipped``, not written. Writing is synchronous and buffered. The tap never
    raises: a write error is kept in ``error``, and later frames are counted in
    ``lost`` instead of written. ``max_bytes`` (None: no limit) bounds each file's size
    (for a gzip file: its uncompressed size); a file always gets its header and at
    least one frame.
    """

    def __init__(
        self, path: str | Path, url: str, connect_time: float, max_bytes: int | None = None
    ) -> None:
        self.path = Path(path)
        self.header = f"{url} <-> {connect_time}\n".encode()
        self.max_bytes = max_bytes
        self.gzip = self.path.name.endswith(".gz")
        self.files: list[Path] = []
        self.frames = 0
        self.skipped = 0
        self.lost = 0
        self.error: OSError | None = None
        self._raw: BinaryIO | None = None
        self._out: BinaryIO | None = None
        self._frames_in_file = 0
        self._open_next()

    def _open_next(self) -> None:
        self._close_current()
        path = rotated_name(self.path, len(self.files))
        raw: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in _close_current
        out: BinaryIO = gzip.GzipFile(fileobj=raw, mode="wb") if self.gzip else raw  # type: ignore[assignment]
        self._raw, self._out = raw, out
        self.files.append(path)
        self._frames_in_file = 0
        out.write(self.header)

    def _size(self) -> int:
        assert self._out is not None
        # gzip: the uncompressed size (the compressor holds back an unknown amount)
        return self._out.tell()

    def __call__(self, frame: str | bytes, receive_ns: int) -> None:
        """Write one frame (if it is a market frame); never raises."""
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        if not text.startswith(_MARKET_PREFIX):
            self.skipped += 1
            return
        if self.error is not None or self._out is None:
            self.lost += 1
            return
        line = f"{receive_ns / 1e9}: {text}\n".encode()
        try:
            if (
                self.max_bytes is not None
                and self._frames_in_file
                and self._size() + len(line) > self.max_bytes
            ):
                self._open_next()
            assert self._out is not None
            self._out.write(line)
        except OSError as exc:
            self.error = exc
            self.lost += 1
            log.error("recording stopped: cannot write %s: %s", self.files[-1], exc)
            return
        self.frames += 1
        self._frames_in_file += 1

    def _close_current(self) -> None:
        out, raw = self._out, self._raw
        self._out = self._raw = None
        try:
            if out is not None and out is not raw:
                out.close()
            if raw is not None:
                raw.close()
        except OSError as exc:
            self.error = self.error or exc

    def close(self) -> None:
        """Flush and close the current file (idempotent)."""
        self._close_current()


def read_recording_lines(path: str | Path) -> tuple[str, list[bytes]]:
    """The header line (without newline) and the frame lines of one recording file,
    gzip-compressed or not (recognised by content, not by name)."""
    data = Path(path).read_bytes()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    head, _, rest = data.partition(b"\n")
    return head.decode().rstrip("\r"), [ln for ln in rest.split(b"\n") if ln.strip()]

"""What the codec reads from a combined frame's stream name: the symbol, a depth's levels."""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=8192)
def _depth_stream_info(stream: str) -> tuple[str, int]:
    symbol, _, rest = stream.partition("@")
    digits = rest[len("depth") :].partition("@")[0]
    return symbol.upper(), int(digits) if digits.isdigit() else 0


def _symbol_of(data: dict[str, Any], stream: str | None) -> str | None:
    s = data.get("s")
    if type(s) is str:
        return s
    if stream and not stream.startswith("!") and "@" in stream:
        return stream.partition("@")[0].upper()
    return None


def stream_symbol(frame: str) -> str | None:
    """Slice the symbol out of a combined frame's text without parsing it (for routing early).

    Returns the uppercase symbol, or None for market-wide streams and raw frames.
    """
    head = frame[:64]
    start = head.find('"stream":"')
    if start < 0:
        return None
    start += len('"stream":"')
    at = head.find("@", start)
    if at < 0 or head.startswith("!", start):
        return None
    return head[start:at].upper()

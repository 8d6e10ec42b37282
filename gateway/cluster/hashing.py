"""Which worker owns which symbol: rendezvous (highest random weight) hashing.

Each symbol goes to the worker whose (worker, symbol) weight is the highest. Adding a
worker moves to it only the symbols it now wins (about 1/N of them) and no symbol moves
between the workers that stay; removing one moves only its own. The weight is a keyed
BLAKE2b of the two names, so every process (on any machine, any Python) agrees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = ["assign", "owner", "worker_names"]


def worker_names(count: int) -> list[str]:
    """The names of ``count`` workers: ``w0`` .. ``w<count-1>``."""
    if count < 1:
        raise ValueError(f"a cluster needs at least one worker, got {count}")
    return [f"w{i}" for i in range(count)]


def _weight(worker: str, symbol: str) -> int:
    digest = hashlib.blake2b(symbol.encode(), digest_size=8, key=worker.encode()).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, workers: Sequence[str]) -> str:
    """The worker of ``workers`` that owns ``symbol`` (upper-cased)."""
    if not workers:
        raise ValueError("no workers to own a symbol")
    name = symbol.upper()
    return max(workers, key=lambda w: (_weight(w, name), w))


def assign(symbols: Iterable[str], workers: Sequence[str]) -> dict[str, list[str]]:
    """Every worker's symbols (in the order given; a worker may get none)."""
    out: dict[str, list[str]] = {w: [] for w in workers}
    for symbol in dict.fromkeys(s.upper() for s in symbols):
        out[owner(symbol, workers)].append(symbol)
    return out

"""The process's allocator, for long runs: on glibc, large transient buffers (REST pages,
big frames) go to their own mappings and back to the OS when freed, and threads share
two arenas, so RSS follows what the gateway holds rather than its worst burst so far.

Only the applications (``gateway run``, ``gateway soak``) call this; the library never
changes process-wide settings. Without glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MMAP_THRESHOLD", "tune_malloc"]

log = logging.getLogger(__name__)

#: Allocations at least this large get their own mapping (glibc's initial default; set
#: explicitly, it no longer grows after each large free, which is what keeps RSS up).
MMAP_THRESHOLD = 128 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_malloc() -> bool:
    """Apply the settings above; True if the C library took them all."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, MMAP_THRESHOLD),
        (_M_ARENA_MAX, 2)))  # fmt: skip
    if not done:
        log.info("mallopt refused a setting: allocator left as it was")
    return done

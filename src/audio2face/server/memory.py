"""Keeping a long-running server's resident memory flat on glibc.

Each thread that allocates gets its own malloc arena (up to 8 per core), and freed
memory stays in those arenas: with dozens of stream threads a busy server's RSS creeps
up although nothing leaks (the 30-minute soak showed a sawtooth whose troughs rose by
about 1 MB a minute). Capping the arenas and returning free pages to the system from
time to time keeps RSS flat. Both are no-ops where glibc is absent. The app also runs
a full garbage collection before each trim (see ``server/app.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

logger = logging.getLogger("audio2face.server")

M_ARENA_MAX = -8  # from glibc's malloc.h
TRIM_INTERVAL_S = 30.0


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018  (probe: glibc only)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas; call before threads start. True if applied."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, n))


def trim_malloc() -> None:
    """Hand free heap pages back to the operating system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

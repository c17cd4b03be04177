"""Keeping a long-running backend's memory at its level: the allocator's settings, and giving memory back.

A server that answers requests from a pool of threads, some of them large
(a 32 MiB ``/predict`` body), grows under glibc's default allocator even when
nothing is kept: each thread may get its own 64 MiB heap ("arena"), and
glibc raises its threshold for returning large blocks to the system after
every large block freed (up to 32 MiB), so later large requests come from
heaps that are not given back. :func:`tune_allocator` caps the arenas and
fixes the threshold; :func:`release_free_memory` asks glibc to return what
is free, after large requests and rounds. Both do nothing where glibc is not
the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from functools import cache
from typing import Any

logger = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        library.malloc_trim, library.mallopt  # noqa: B018 (present only in glibc)
    except (OSError, AttributeError):
        return None
    return library


def tune_allocator(arenas: int = 4, mmap_threshold: int = 1 << 20) -> bool:
    """Cap glibc's heaps and fix its large-block threshold (call once, early).

    Parameters
    ----------
    arenas : int, default=4
        Heaps shared by all threads.
    mmap_threshold : int, default=1 MiB
        Blocks at least this large come straight from the system and go back
        to it when freed.

    Returns
    -------
    bool
        Whether the settings took effect (False without glibc).
    """
    library = _glibc()
    if library is None:
        return False
    return bool(library.mallopt(_M_ARENA_MAX, arenas)) and bool(library.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))


def release_free_memory() -> None:
    """Return the allocator's free memory to the system (glibc's ``malloc_trim``)."""
    library = _glibc()
    if library is not None:
        library.malloc_trim(0)


def rss_bytes() -> int | None:
    """Return this process's resident memory in bytes (Linux), else None.

    Returns
    -------
    int or None
    """
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["release_free_memory", "rss_bytes", "tune_allocator"]

"""Giving freed memory back to the system between the parts of a long streamed run."""

from __future__ import annotations

import ctypes
import functools
from typing import Callable, Optional


@functools.lru_cache(maxsize=None)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    try:
        return ctypes.CDLL(None).malloc_trim   # glibc
    except (AttributeError, OSError):
        return None


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere).

    Call it between the parts of a streamed run (segments, bands): their large buffers, freed and
    allocated again in other sizes, otherwise fragment the heap, and the peak creeps up with the
    number of parts although each part needs the same memory.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

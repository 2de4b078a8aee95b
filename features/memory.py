"""Give memory the allocator keeps after a phase of the build back to the operating system.

glibc keeps what a thread frees in that thread's heap (arena) for later use: after the source
reads and after each feature family, tens of MB sit unused while the next family allocates
afresh, and the build's peak grows by their sum. ``malloc_trim(0)`` returns those pages; it
takes a few milliseconds. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


def release_free_memory() -> None:
    """Return freed heap memory to the OS where the C library can (glibc's ``malloc_trim``)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

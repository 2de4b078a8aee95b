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


# glibc's malloc asks the kernel for transparent huge pages (``madvise``) under this tunable
# (glibc 2.35 and later). Where page faults are dear, as on this project's virtual machines,
# touching fresh memory a 4 KiB page at a time was most of the cost of reading a built table:
# 3.3-7.6 s (system time 2.3-6.7 s) against 0.6-1.0 s with it.
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
_THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_pages_tunables(tunables: str, libc: tuple[str, str], thp_setting: str | None) -> str | None:
    """``GLIBC_TUNABLES`` (now ``tunables``) with ``glibc.malloc.hugetlb=1`` added, for malloc to
    use transparent huge pages; None where that does nothing or was decided already: not glibc
    2.35 or later (``libc``: ``platform.libc_ver()``), huge pages ``never`` or unknown
    (``thp_setting``: the kernel's setting), or the tunable set already (``=0`` opts out)."""
    name, version = libc
    if name != "glibc" or HUGE_PAGES_TUNABLE in tunables or thp_setting is None or "[never]" in thp_setting:
        return None
    try:
        if tuple(int(part) for part in version.split(".")[:2]) < (2, 35):
            return None
    except ValueError:
        return None
    setting = f"{HUGE_PAGES_TUNABLE}=1"
    return f"{tunables}:{setting}" if tunables else setting


def huge_pages_setting() -> dict:
    """``{"GLIBC_TUNABLES": ...}`` for processes started from here on to use transparent huge
    pages (``huge_pages_tunables`` on this machine), or ``{}`` where that does not apply."""
    import os
    import platform
    import sys

    if sys.platform != "linux":
        return {}
    try:
        with open(_THP_SETTING) as handle:
            thp = handle.read()
    except OSError:
        thp = None
    tunables = huge_pages_tunables(os.environ.get("GLIBC_TUNABLES", ""), platform.libc_ver(), thp)
    return {} if tunables is None else {"GLIBC_TUNABLES": tunables}


def with_huge_pages() -> None:
    """Run this Python process again (``exec``: the same pid, arguments and streams) with
    malloc asking for transparent huge pages, where that applies (``huge_pages_setting``);
    otherwise, or if the ``exec`` fails, return and go on as it is. For a command's entry
    point, before anything is imported or written: the process starts over. Child processes
    (Dask's workers) inherit the setting."""
    import os
    import sys

    setting = huge_pages_setting()
    if not setting:
        return
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **setting})
    except OSError:
        return

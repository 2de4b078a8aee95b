"""How foedus asks the operating system for memory: no huge-page stalls, and freed memory given back.

numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) for every array
of 4 MB or more. Where the kernel's THP ``defrag`` policy is ``madvise`` (the kernel's default,
and this project's 2-core machine's), each such array's first touch may stall while the kernel
compacts memory for a 2 MB page: measured on the defense table's 20 shared-threat columns (1.1
million rows, the test suite running beside), ``DataFrame.to_numpy`` took 1.2-2.0 s with it and
0.17 s without, and the logit's imputer ``hstack`` 3.8-4.1 s against 0.3-0.4 s.
``avoid_huge_page_stalls`` turns numpy's request off (numpy's own switch,
``NUMPY_MADVISE_HUGEPAGE``) unless the user set it; the numbers are the same either way.

After a phase of the build, memory the allocator keeps goes back to the operating system:

glibc keeps what a thread frees in that thread's heap (arena) for later use: after the source
reads and after each feature family, tens of MB sit unused while the next family allocates
afresh, and the build's peak grows by their sum. ``malloc_trim(0)`` returns those pages; it
takes a few milliseconds. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


HUGE_PAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def avoid_huge_page_stalls() -> None:
    """No ``madvise(MADV_HUGEPAGE)`` from numpy in this process and the processes it starts
    (Dask's workers, subprocesses), unless ``NUMPY_MADVISE_HUGEPAGE`` is set already. numpy
    reads the variable when it is imported; if it was imported first (a notebook), its
    runtime switch is used."""
    import os
    import sys

    if HUGE_PAGE_VARIABLE in os.environ:
        return  # the user's choice
    os.environ[HUGE_PAGE_VARIABLE] = "0"
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        switch = getattr(getattr(numpy, "_core", None), "multiarray", None)
        if hasattr(switch, "_set_madvise_hugepage"):
            switch._set_madvise_hugepage(False)


def release_free_memory(cycles: bool = False) -> None:
    """Return freed heap memory to the OS where the C library can (glibc's ``malloc_trim``).

    ``cycles``: first free what only reference cycles keep (a full collection). pandas frames
    often sit in such cycles until the collector's next full pass: measured in the main job, 0.4
    GB of tables after the backtests. A full pass takes 0.15-0.2 s with the models and MLflow
    loaded, so it is for the points between phases, not for every family or fold."""
    if cycles:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

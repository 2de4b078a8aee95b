"""How many threads the build runs side by side: one per core this process may use.

Reading sources, computing families and converting the table use threads, not processes:
the heavy parts (decompression, numpy, Arrow) release the GIL, and threads share the tables.
"""

from __future__ import annotations

import os


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1

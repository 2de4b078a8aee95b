"""Freed memory goes back to the system: glibc's heap and Arrow's pool, where a read table lives."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import os
import numpy as np
import pyarrow as pa
from foedus.features.memory import release_free_memory

def rss_mb():
    with open(f"/proc/{os.getpid()}/status") as handle:
        return int(handle.read().split("VmRSS:")[1].split()[0]) // 1024

# 60 column-sized buffers of Arrow's pool (5 MB each, as a built table's columns), written to
buffers = [pa.allocate_buffer(5 * 2**20) for _ in range(60)]
for buffer in buffers:
    np.frombuffer(buffer, dtype=np.uint8)[:] = 1
held = rss_mb()
del buffers
kept = rss_mb()
release_free_memory()
print(held, kept, rss_mb())
"""


def test_a_forgotten_tables_arrow_memory_goes_back_to_the_system():
    # a fresh process: what the pool kept of other tests' reads does not blur the figures
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                            env={**os.environ})
    assert result.returncode == 0, result.stderr
    held, kept, released = map(int, result.stdout.split())
    assert held - released >= 200, result.stdout  # the 300 MB written are mostly given back

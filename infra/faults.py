"""Named kill points, for the fault tests: ``FOEDUS_KILL_AT=<point>`` makes this process
SIGKILL itself when it reaches that point.

The kill is the operating system's, as if the machine lost power or the user killed -9 the job:
no ``finally`` runs, no file is closed. Tests set the variable on a real ``foedus`` subprocess
to stop it at a chosen, repeatable moment (mid-write, between two writes, between a registry
write and the alias move) and then check that the previous outputs are intact and the next
invocation completes. Unset, a point costs one dictionary lookup.

A point may be named ``<point>#<n>`` to kill on its n-th passage (e.g. the second fold).

The points, and the tests that kill there:

- ``interim.cache_written``: a source's cache written to its temporary file, not yet renamed;
  ``build.table_part``: after each row group of the table's temporary file (``#2``: after the
  second); ``build.before_sidecar``: the table renamed into place, its sidecar not yet written
  (``tests/pipelines/test_build_faults.py``).
- ``backtest.parent_started``: the parent run's parameters and config logged;
  ``backtest.fold_predictions``: a fold run's predictions logged, its model not;
  ``backtest.before_end``: every parent artifact logged, the run not ended;
  ``train.model_logged``: the final model logged, not registered; ``train.registered``:
  registered, not judged; ``train.before_alias``: judged and its run ended, the alias not moved
  (``tests/pipelines/test_tracking_faults.py``).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_AT = "FOEDUS_KILL_AT"
_passed: Counter[str] = Counter()


def kill_point(name: str) -> None:
    """SIGKILL this process if ``FOEDUS_KILL_AT`` names this point (or this passage of it)."""
    wanted = os.environ.get(KILL_AT)
    if not wanted or not wanted.startswith(name):
        return
    _passed[name] += 1
    if wanted == name or wanted == f"{name}#{_passed[name]}":
        os.kill(os.getpid(), signal.SIGKILL)

"""Assemble the feature table: every family over the dyad-year universe, plus coverage flags."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Dyads, Sources
from foedus.features.readers import load_source, source_years
from foedus.features.universe import DYAD_YEAR
from foedus.infra.config import Paths
from foedus.infra.memory import release_free_memory
from foedus.infra.parallel import cores
from threadpoolctl import threadpool_limits


def sources_of(families: Iterable[Family]) -> list[str]:
    """The sources the families read, in first-use order."""
    seen: list[str] = []
    for family in families:
        seen += [s for s in family.sources if s not in seen]
    return seen


def load_sources(keys: Iterable[str], paths: Paths | None = None) -> Sources:
    """The sources ``keys``, read side by side on every core (decompressing releases the GIL)."""
    keys = list(keys)
    with ThreadPoolExecutor(cores()) as pool:
        tables = dict(zip(keys, pool.map(lambda key: load_source(key, paths), keys)))
    return Sources(tables, {key: source_years(key, table) for key, table in tables.items()})


def coverage_columns(dyads: Dyads, sources: Sources, keys: Iterable[str]) -> pd.DataFrame:
    """``covered_<source>``: 1 if the source covers year t-1, else 0."""
    return pd.DataFrame({f"covered_{k}": sources.covers(k, dyads.year - 1).astype(np.float32) for k in keys},
                        copy=False)


def coverage_family(families: list[Family]) -> Family:
    """The ``covered_<source>`` flags of every source the families read, as a family."""
    keys = sources_of(families)
    family = Family("coverage", tuple(keys), "One flag per source: does it cover year t-1? A missing "
                    "feature where its source is covered means the source has no value for that state or pair.")
    for key in keys:
        family.feature(f"covered_{key}", "0/1", f"{key} covers year t-1", (key,), label=f"{key} covers t-1",
                       level="year")
    family.compute(lambda dyads, sources: coverage_columns(dyads, sources, keys))
    return family


def with_coverage(families: list[Family]) -> list[Family]:
    return [*families, coverage_family(families)]


def feature_table(universe: pd.DataFrame, sources: Sources, families: list[Family],
                  workers: int | None = None) -> pd.DataFrame:
    """ccode1, ccode2, year and every family's columns (float32), in the universe's order.

    ``universe`` must be sorted by year with ccode1 < ccode2 (as ``universe.dyad_years``
    returns it). Each family sees only ``sources``, so cut sources give vintage features.
    Families run side by side on ``workers`` threads (default: one per core).
    """
    dyads = Dyads.from_frame(universe)
    # a memo of this build's own: what families derive from the sources is shared between them
    # and dropped with the build, however often the same sources are used
    sources = Sources(sources.tables, sources.coverage)
    families = with_coverage(families)
    names = [name for family in families for name in family.columns]
    # every feature column is a row of one float32 block, filled in place: no copies to assemble
    values = np.empty((len(names), len(dyads)), dtype=np.float32)
    rows = dict(zip(names, values))

    # what is derived from a source (matrices) is kept until the last family that reads it is done
    readers = Counter(key for family in families for key in family.sources)
    done = threading.Lock()

    def compute(family: Family) -> None:
        out = family(dyads, sources)
        with np.errstate(invalid="ignore"):  # NaN survives the cast; numpy may still flag it
            for name in family.columns:
                rows[name][:] = out[name].to_numpy()
        with done:
            readers.subtract(family.sources)
            for key in family.sources:
                if readers[key] == 0:
                    sources.memo.forget(key)

    # The families' matrix products and array work release the GIL, so threads run them side by
    # side; each product is small (~220 x 220), faster on one BLAS thread than split across cores.
    # This thread takes families too: its memory freed by the source reads is reused, where a new
    # thread would grow a heap of its own. Families reading more sources go first: they tend to
    # be the long ones.
    pending = queue.SimpleQueue()
    for family in sorted(families, key=lambda family: -len(family.sources)):
        pending.put(family)

    def drain() -> None:
        while True:
            try:
                family = pending.get_nowait()
            except queue.Empty:
                return
            compute(family)
            release_free_memory()  # its temporaries, before the next family allocates its own

    helpers = (workers or cores()) - 1
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max(helpers, 1)) as pool:
        running = [pool.submit(drain) for _ in range(helpers)]
        drain()
        for helper in running:
            helper.result()  # a family's error is raised here
    ids = universe[list(DYAD_YEAR)].reset_index(drop=True)
    return pd.concat([ids, pd.DataFrame(values.T, columns=names, copy=False)], axis=1)

"""Time and system: the year, its era, and the size of the state system."""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Dyads, Sources
from foedus.features.years import ERAS, era_of

FAMILY = Family(
    "system",
    ("cow_ddy",),
    "The era of the forecast year (alliance formation comes in era-specific bursts: the world wars, "
    "decolonisation, NATO and EU enlargement) and the number of states in the system in t-1. The key "
    "column `year` (the forecast year t, known in advance) is itself usable as a feature.",
)
FAMILY.feature("era", "code 0-3", "era of t: " + ", ".join(f"{i} = {name}" for i, (name, _, _) in enumerate(ERAS)), (),
               lag=0, label="era", level="year")
FAMILY.feature("n_states", "count", "number of states in the COW system in t-1", ("cow_ddy",),
               label="states in the system", level="year")
FAMILY.feature("new_dyad", "0/1", "the pair was not a system dyad in t-1 (a new or returning state); it is at "
               "risk unless the label source records its alliance in t-1", ("cow_ddy",),
               label="new to the system (not a system dyad in t-1)")


def states_per_year(ddy: pd.DataFrame) -> pd.Series:
    """Distinct states (ccode1) of each year with rows in ``cow_ddy``."""
    # a year x code grid of who appears: a few hundred kB, where grouping 2.2 million rows took ~90 MB
    year, code = ddy["year"].to_numpy(np.int64), ddy["ccode1"].to_numpy(np.int64)
    if len(year) == 0:
        return pd.Series(dtype="int64")
    first = int(year.min())
    seen = np.zeros((int(year.max()) - first + 1, int(code.max()) + 1), dtype=bool)
    seen[year - first, code] = True
    present = seen.any(axis=1)
    return pd.Series(seen.sum(axis=1)[present], index=np.arange(first, first + len(seen))[present])


@FAMILY.compute
def system(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    ddy = sources["cow_ddy"]
    per_year = states_per_year(ddy)
    n_states = per_year.reindex(dyads.year - 1).to_numpy(dtype=float)
    era = era_of(pd.Series(dyads.year)).cat.codes.to_numpy().astype(float)
    existed = dyads.dyad_rows(ddy) >= 0
    covered = sources.covers("cow_ddy", dyads.year - 1)
    new_dyad = np.where(covered, (~existed).astype(float), np.nan)
    return pd.DataFrame({"era": np.where(era < 0, np.nan, era), "n_states": n_states, "new_dyad": new_dyad},
                        copy=False)

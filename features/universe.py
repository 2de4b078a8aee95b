"""The dyad-year universe: every undirected pair of COW system members in every year."""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.years import FIRST_YEAR, LAST_YEAR, check_span

# The key of an undirected dyad (ccode1 < ccode2) and of a dyad-year: every table foedus
# writes or reads row by row (features, forecasts, explanations) carries these columns.
DYAD = ("ccode1", "ccode2")
DYAD_YEAR = (*DYAD, "year")

# ccode < 1000 and years < 10000: a pair and a year pack into one int64 for fast set lookups.
_PAIR = 1000
_YEAR = 10000


def dyad_year_key(ccode1, ccode2, year) -> np.ndarray:
    """One int64 per (ccode1, ccode2, year), for vectorised membership tests."""
    c1, c2, y = np.broadcast_arrays(*(np.asarray(a) for a in (ccode1, ccode2, year)))
    # built in place, (c1 * 1000 + c2) * 10000 + y: a table of millions of rows needs no int64
    # copy of each column at once
    key = c1.astype(np.int64)
    key *= _PAIR
    key += c2.astype(np.int64, copy=False)
    key *= _YEAR
    key += y.astype(np.int64, copy=False)
    return key


def undirected(df: pd.DataFrame) -> pd.DataFrame:
    """Rewrite ccode1/ccode2 so that ccode1 < ccode2 (the other columns are kept)."""
    lo = np.minimum(df["ccode1"].to_numpy(), df["ccode2"].to_numpy())
    hi = np.maximum(df["ccode1"].to_numpy(), df["ccode2"].to_numpy())
    return df.assign(ccode1=lo, ccode2=hi)


def dyad_years(cow_ddy: pd.DataFrame, first: int = FIRST_YEAR, last: int = LAST_YEAR) -> pd.DataFrame:
    """Undirected dyad-years (ccode1 < ccode2) of system members in ``first..last``.

    ``cow_ddy`` is the directed table of the ``cow_ddy`` source. Returns columns ccode1,
    ccode2, year (int32), sorted by year then pair, one row per pair and year.
    """
    first, last = check_span(first, last)
    keep = (cow_ddy["ccode1"] < cow_ddy["ccode2"]) & cow_ddy["year"].between(first, last)
    out = cow_ddy.loc[keep, list(DYAD_YEAR)]
    out = out.astype({"ccode1": "int32", "ccode2": "int32", "year": "int32"})
    return out.sort_values(["year", "ccode1", "ccode2"], kind="stable").reset_index(drop=True)

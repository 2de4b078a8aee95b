"""Sources as they were known at the end of a year (a vintage).

``cut_sources(sources, year)`` removes everything after ``year``: rows of later years, and
for spell tables (start, end) the spells that begin later, with ongoing spells ended at
``year``. Features built from the cut sources are what a forecaster could have computed at
the end of ``year``; the lag rule says features of year ``year + 1`` must not change.
"""

from __future__ import annotations

import pandas as pd
from foedus.features.dyads import Sources
from foedus.features.readers import READERS


def _cut_table(table: pd.DataFrame, columns: tuple[str, ...], year: int) -> pd.DataFrame:
    if not columns:
        return table
    if len(columns) == 1:
        col = columns[0]
        values = table[col].dt.year if pd.api.types.is_datetime64_any_dtype(table[col]) else table[col]
        return table[~(values > year)]
    start, end = columns
    is_date = pd.api.types.is_datetime64_any_dtype(table[start])
    begins = table[start].dt.year if is_date else table[start]
    kept = table[~(begins > year)].copy()
    if is_date:
        cap = pd.Timestamp(year=year, month=12, day=31).as_unit(kept[end].dt.unit)
        kept[end] = kept[end].where(kept[end] <= cap, cap)
    else:
        kept[end] = kept[end].where(kept[end] <= year, year).astype(kept[end].dtype)
    return kept


def cut_sources(sources: Sources, year: int) -> Sources:
    """``sources`` with nothing after ``year``; coverage ends at ``year`` at the latest."""
    tables = {key: _cut_table(table, READERS[key].years, year) for key, table in sources.tables.items()}
    coverage = {key: (first, min(last, year)) for key, (first, last) in sources.coverage.items()}
    return Sources(tables, coverage)

"""Sources as they were known at the end of a year (a vintage).

``cut_sources(sources, year)`` removes everything after ``year``: rows of later years, and
for spell tables (start, end) the spells that begin later, with ongoing spells ended at
``year``. Features built from the cut sources are what a forecaster could have computed at
the end of ``year``; the lag rule says features of year ``year + 1`` must not change.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def cut_each(sources: Sources, years: Mapping[str, int]) -> Sources:
    """``sources`` with source k cut at ``years[k]`` (sources not named are kept whole). A key
    ``source.column`` blanks that column of a yearly table after its own year: what a
    forecaster knew when the sources end in different years."""
    tables, coverage = dict(sources.tables), dict(sources.coverage)
    for key, year in years.items():
        if "." in key:
            continue
        tables[key] = _cut_table(tables[key], READERS[key].years, year)
        first, last = coverage[key]
        coverage[key] = (first, min(last, year))
    for key, year in years.items():
        if "." in key:
            source, column = key.split(".", 1)
            table = tables[source].copy()
            table[column] = table[column].where(~(table["year"] > year))
            tables[source] = table
    return Sources(tables, coverage)

"""Forecasting past the end of the data: each source's staleness for a target year, and the
sources shifted by it (step-shifting: one model per target year, trained the way it is used).

For a target year Y, source k whose last covered year is L_k is d_k = max(0, (Y-1) - L_k)
years stale: at the end of Y-1 a forecaster knows it only up to L_k. The model for Y is
trained on features that read every source k as of t-1-d_k for every year t. ``shift_sources``
does this by moving source k d_k years later (its year y becomes y + d_k): the families,
which read year t-1, then read t-1-d_k, so the training rows and the forecast rows of Y come
from the same code. By design, a duration (years since a dispute) is counted as of the
source's vintage, and a state that did not exist at t-1-d_k has no value there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.features.dyads import Sources
from foedus.features.readers import READERS
from foedus.features.years import LAST_YEAR, NEXT_YEAR, whole_year
from foedus.infra.errors import InvalidInput


@dataclass(frozen=True)
class Vintage:
    """What is known when forecasting ``target``: each source's last year and its staleness.

    ``last_years`` is keyed by source, and by ``source.column`` for a column that ends before
    its source (Polity's ``polity2`` in ``cw_democracy``): such a column is shifted further.
    """

    target: int
    last_years: Mapping[str, int]

    @property
    def staleness(self) -> dict[str, int]:
        return {key: max(0, self.target - 1 - last) for key, last in self.last_years.items()}

    @property
    def carried_forward(self) -> bool:
        """Is the target past the state system's last year (its pairs carried forward)?"""
        return self.target > LAST_YEAR

    def rows(self) -> list[dict]:
        """Source, last year, staleness: the vintage as the output states it."""
        return [{"source": key, "last_year": last, "staleness": self.staleness[key]}
                for key, last in self.last_years.items()]

    def profile(self) -> str:
        """The stale sources, most stale first (``atop_alliance+7, cow_nmc+3``), or ``fresh``."""
        stale = sorted(((d, k) for k, d in self.staleness.items() if d), key=lambda x: (-x[0], x[1]))
        return ", ".join(f"{k}+{d}" for d, k in stale) or "fresh"


def staleness_of(vintage: dict | None) -> dict[str, int]:
    """Each source's staleness from a build sidecar's ``vintage`` (``Vintage.rows``); empty for
    an ordinary build (None): every source read at t-1."""
    return {row["source"]: int(row["staleness"]) for row in (vintage or {}).get("sources", [])}


def column_last_years(key: str, table: pd.DataFrame, last: int) -> dict[str, int]:
    """``source.column``: last year, for the columns of a yearly table that end before ``last``.

    Only state-year panels (ccode, year) are checked: a column's last year is the last in
    which it scores at least half of that year's states. Polity2 ends in 2018 although it
    scores one state to 2020. (Event tables, such as disputes, have no such column ends.)
    """
    if READERS[key].years != ("year",) or table.empty or "ccode" not in table.columns:
        return {}
    out = {}
    for column in table.columns.drop(["year", "ccode"]):
        share = table[column].notna().groupby(table["year"]).mean()
        if not (share >= 0.5).any():
            continue
        column_last = int(share.index[share >= 0.5].max())
        if column_last < last:
            out[f"{key}.{column}"] = column_last
    return out


def vintage(target: int, sources: Sources) -> Vintage:
    """The vintage of ``target`` given the loaded sources: each one's last covered year, and
    the columns that end earlier."""
    last_years = {}
    for key, (_, last) in sources.coverage.items():
        last_years[key] = int(last)
        last_years.update(column_last_years(key, sources[key], last))
    return Vintage(int(target), last_years)


def check_target(target, label_last: int, label_source: str) -> int:
    """``target`` as int if foedus forecasts it with a present-day model: from the first year
    after the label source ends through next year."""
    value = whole_year(target, "--for-year", label_last + 1, NEXT_YEAR)
    if not label_last + 1 <= value <= NEXT_YEAR:
        raise InvalidInput(
            f"--for-year {value}: present-day models serve {label_last + 1}-{NEXT_YEAR} ({label_source} ends in "
            f"{label_last}; next year is {NEXT_YEAR}); years up to {label_last + 1} use the ordinary model")
    return value


def _shift_column(values: pd.Series, years: int) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values + pd.DateOffset(years=years)
    return values + years


def shift_table(table: pd.DataFrame, key: str, years: int, last: int | None = None) -> pd.DataFrame:
    """Source ``key``'s table with every year moved ``years`` later (its year columns, or its
    spells' start and end dates). A spell still running (ending on the list's last day, see
    ``Reader.open_end``) stays running. ``last``: the source's last covered year; a spell
    ending then (a source cut at that year) may read as running, one ending earlier may not."""
    columns = READERS[key].years
    if not years or not columns:
        return table
    shifted = table.copy()
    for column in columns:
        shifted[column] = _shift_column(table[column], years)
    open_end = READERS[key].open_end
    if open_end is not None:
        end = columns[-1]
        running = (table[end] >= pd.Timestamp(open_end)).to_numpy()
        shifted.loc[running, end] = table.loc[running, end]
        crossing = ~running & (shifted[end] >= pd.Timestamp(open_end)).to_numpy()
        if last is not None:
            crossing &= (table[end].dt.year < last).to_numpy()
        if crossing.any():
            raise InvalidInput(f"{key} shifted {years} years: a spell that ended would read as still running; "
                               "this target year is too far past the data")
    return shifted


def shift_columns(table: pd.DataFrame, key: str, further: Mapping[str, int]) -> pd.DataFrame:
    """A state-year table whose ``column`` reads ``further[column]`` years earlier than its row:
    the row (ccode, y) takes the value of (ccode, y - further); missing where there is none."""
    if not further:
        return table
    index = pd.Index(table["ccode"].to_numpy(np.int64) * 10000 + table["year"].to_numpy(np.int64))
    if not index.is_unique:
        raise ValueError(f"{key}: a column can be shifted alone only in a table with one row per state-year")
    out = table.copy()
    for column, years in further.items():
        rows = index.get_indexer(index - years)
        values = table[column].to_numpy(dtype=float, na_value=np.nan)
        out[column] = np.where(rows >= 0, values[rows], np.nan)
    return out


def shift_sources(sources: Sources, staleness: Mapping[str, int]) -> Sources:
    """``sources`` with source k moved ``staleness[k]`` years later (coverage too): features of
    year t built from them read source k as of t-1-staleness[k]; a column keyed
    ``source.column`` in ``staleness`` is moved by its own staleness."""
    tables = {}
    for key, table in sources.tables.items():
        d = staleness.get(key, 0)
        further = {name.split(".", 1)[1]: s - d for name, s in staleness.items()
                   if name.startswith(f"{key}.") and s > d}
        tables[key] = shift_columns(shift_table(table, key, d, sources.coverage[key][1]), key, further)
    coverage = {key: (first + staleness.get(key, 0), last + staleness.get(key, 0))
                for key, (first, last) in sources.coverage.items()}
    return Sources(tables, coverage)


def carry_forward(universe: pd.DataFrame, target: int) -> pd.DataFrame:
    """``universe`` (sorted by year) and, for a target past the state system's last year, the
    pairs of that last year again as the target's rows: the system is carried forward."""
    if target <= LAST_YEAR:
        return universe
    last = universe[universe["year"] == LAST_YEAR].assign(year=np.int32(target))
    return pd.concat([universe, last], ignore_index=True)

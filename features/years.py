"""The years foedus covers and the eras it reports by."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd
from foedus.infra.errors import InvalidInput

FIRST_YEAR = 1816  # the COW state system begins
LAST_YEAR = 2024  # the last year of the dyad-year universe (cow_ddy)
# The last year foedus forecasts: next year. Past LAST_YEAR the state system is carried forward.
NEXT_YEAR = date.today().year + 1

# Eras of the alliance literature: the Concert/Bismarckian system, the world wars,
# the Cold War, the post-Cold War order.
ERAS: tuple[tuple[str, int, int], ...] = (
    ("1816-1913", 1816, 1913),
    ("1914-1945", 1914, 1945),
    ("1946-1989", 1946, 1989),
    ("1990-2024", 1990, LAST_YEAR),
)


def whole_year(year, what: str = "year", first: int = FIRST_YEAR, last: int = LAST_YEAR) -> int:
    """``year`` as int (from an int, a whole float or its text), else ``InvalidInput``."""
    try:
        value = int(year)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} {year!r} is not a year: give a whole number in {first}-{last}") from exc
    if value != year and not isinstance(year, str):
        raise InvalidInput(f"{what} {year!r} is not a whole year")
    return value


def check_year(year: int, what: str = "year") -> int:
    """Return ``year`` as int if it lies in 1816-2024, else raise ``InvalidInput``."""
    value = whole_year(year, what)
    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise InvalidInput(f"{what} {value} is outside {FIRST_YEAR}-{LAST_YEAR}, the years foedus covers")
    return value


def check_span(first: int, last: int) -> tuple[int, int]:
    first, last = check_year(first, "first year"), check_year(last, "last year")
    if first > last:
        raise InvalidInput(f"first year {first} is after last year {last}")
    return first, last


def era_codes(years) -> np.ndarray:
    """The position of each year's era in ``ERAS``; -1 for a year outside them."""
    edges = [ERAS[0][1]] + [hi + 1 for _, _, hi in ERAS]
    edges[-1] = NEXT_YEAR + 1  # the years forecast past the state system's end belong to the last era
    codes = np.searchsorted(edges, np.asarray(years), side="right") - 1
    return np.where((codes < 0) | (codes >= len(ERAS)), -1, codes)


def era_of(years: pd.Series) -> pd.Series:
    """The era label of each year (categorical, in chronological order)."""
    labels = [name for name, _, _ in ERAS]
    codes = era_codes(years.to_numpy())
    return pd.Series(pd.Categorical.from_codes(codes, categories=labels, ordered=True), index=years.index, name="era")


def sum_by_era(years, values: Mapping[str, np.ndarray], every_era: bool = True) -> pd.DataFrame:
    """The sum of each array of ``values`` per era of ``years`` and over all (a boolean array
    sums to a count). Rows are the eras in order, then "all" (index "era"); an era without
    rows is a row of zeros if ``every_era``, else left out."""
    codes = era_codes(years)
    in_era = codes >= 0
    keep = np.ones(len(ERAS), dtype=bool) if every_era else np.bincount(codes[in_era], minlength=len(ERAS)) > 0
    sums = {}
    for name, value in values.items():
        value = np.asarray(value, dtype=float)
        by_era = np.bincount(codes[in_era], weights=value[in_era], minlength=len(ERAS))[keep]
        sums[name] = np.append(by_era, value.sum())
    index = pd.Index([name for (name, _, _), kept in zip(ERAS, keep) if kept] + ["all"], name="era")
    return pd.DataFrame(sums, index=index)


def count_by_era(years, marks: Mapping[str, np.ndarray], every_era: bool = True) -> pd.DataFrame:
    """How many rows each boolean array of ``marks`` marks, per era of ``years`` and over all
    (``sum_by_era`` of the marks, as int64 columns)."""
    marks = {name: np.asarray(mark, dtype=bool) for name, mark in marks.items()}
    return sum_by_era(years, marks, every_era).astype("int64")

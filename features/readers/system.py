"""Readers of the state system: the dyad-year universe, membership spells, major powers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from foedus.features.readers.core import read_rda, reader, typed
from foedus.features.years import LAST_YEAR

# The COW lists (v2016) end every ongoing spell on this date. cow_ddy carries those states on
# to 2024, and foedus reads such a spell as still running (members, major powers) to 2024.
COW_LIST_END = date(2016, 12, 31)


def spell_last_years(ends, open_last: int = LAST_YEAR) -> np.ndarray:
    """The last year of each spell from its end dates: a spell ending on the COW list's last
    day is still running, so it lasts to ``open_last``, the source's last covered year (2024;
    later for a source shifted to a later vintage, ``foedus.features.staleness``)."""
    ends = pd.Series(pd.to_datetime(ends))
    return np.where(ends >= pd.Timestamp(COW_LIST_END), open_last, ends.dt.year).astype(int)


@reader("cow_ddy")
def cow_ddy(path: Path) -> pd.DataFrame:
    """Directed dyad-years of COW system members, 1816-2024 (peacesciencer).

    Columns: ccode1, ccode2 (COW codes, int32), year (int32). Both directions of every pair
    are present; foedus keeps ccode1 < ccode2 for undirected dyads.
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "year"])


@reader("cw_system", years=("start", "end"), open_end=COW_LIST_END)
def cw_system(path: Path) -> pd.DataFrame:
    """COW state-system membership spells with exact dates (isard), 1816-2016.

    Columns: ccode (int32), abb (COW abbreviation), name, start, end (datetime64). A state
    with several spells (Poland, the Baltic states, Germany, ...) has one row per spell.
    ``end`` = 2016-12-31 means still a member at the end of the COW list (v2016): foedus
    reads it as a member through 2024, as cow_ddy does.
    """
    df = read_rda(path).rename(columns={"cw_abb": "abb", "cw_name": "name"})
    return typed(df, ints=["ccode"], strings=["abb", "name"], dates=["start", "end"])


def _dates(df: pd.DataFrame, year: str, month: str, day: str) -> pd.Series:
    parts = df[[year, month, day]].set_axis(["year", "month", "day"], axis=1).astype("int64")
    return pd.to_datetime(parts)


@reader("cow_states", years=("start", "end"), open_end=COW_LIST_END)
def cow_states(path: Path) -> pd.DataFrame:
    """COW state list v2016 (peacesciencer): abbreviations, names, membership spells.

    Columns: ccode (int32), stateabb, statenme, start, end (datetime64, from the
    year/month/day columns, which are kept as int32), version (int32).
    """
    df = read_rda(path)
    df = df.assign(start=_dates(df, "styear", "stmonth", "stday"), end=_dates(df, "endyear", "endmonth", "endday"))
    ints = ["ccode", "styear", "stmonth", "stday", "endyear", "endmonth", "endday", "version"]
    return typed(df, ints=ints, strings=["stateabb", "statenme"])


@reader("cow_majors", years=("start", "end"), open_end=COW_LIST_END)
def cow_majors(path: Path) -> pd.DataFrame:
    """COW major-power spells (peacesciencer), 1816-2016.

    Columns: ccode (int32), start, end (datetime64), and the source's styear, stmonth,
    stday, endyear, endmonth, endday, version (int32). An end on 2016-12-31 means ongoing:
    foedus carries such a spell to 2024, as it does system membership.
    """
    df = read_rda(path)
    df = df.assign(start=_dates(df, "styear", "stmonth", "stday"), end=_dates(df, "endyear", "endmonth", "endday"))
    return typed(df, ints=["ccode", "styear", "stmonth", "stday", "endyear", "endmonth", "endday", "version"])

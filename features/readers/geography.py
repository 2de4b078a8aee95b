"""Readers of geography: contiguity spells, border distance, capitals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from foedus.features.readers.core import read_rda, reader, typed


@reader("cow_contdir", years=("stdate", "enddate"))
def cow_contdir(path: Path) -> pd.DataFrame:
    """COW direct contiguity spells, 1816-2016.

    Columns: ccode1, ccode2 (int32), conttype (int32: 1 land, 2-5 water within 12, 24, 150,
    400 miles; 0 rows mark gaps), stdate, enddate (datetime64).
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "conttype"], dates=["stdate", "enddate"])


@reader("cow_mindist")
def cow_mindist(path: Path) -> pd.DataFrame:
    """Minimum distance between two states' borders in km (CShapes), 1886-2019.

    Columns: ccode1, ccode2, year (int32), mindist (float, km; 0 = touching).
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "year"])


@reader("cow_capitals", years=("stdate", "enddate"))
def cow_capitals(path: Path) -> pd.DataFrame:
    """Capitals with coordinates and date spells (peacesciencer), 1816-2024.

    Columns: ccode (int32), statenme, capital, stdate, enddate (datetime64), lat, lng
    (degrees). A state whose capital moved has one row per capital spell.
    """
    return typed(read_rda(path), ints=["ccode"], strings=["statenme", "capital"], dates=["stdate", "enddate"])

"""Readers of alliance data: ATOP 5.1 and COW v4.1 dyad-years, ATOP v4 treaty files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from foedus.features.readers.core import read_rda, reader, typed

ATOP_FLAGS = ["atop_defense", "atop_offense", "atop_neutral", "atop_nonagg", "atop_consul"]
COW_FLAGS = ["cow_defense", "cow_neutral", "cow_nonagg", "cow_entente"]


@reader("atop_alliance")
def atop_alliance(path: Path) -> pd.DataFrame:
    """ATOP 5.1 directed dyad-years in which the pair shares an alliance, 1815-2018.

    Columns: ccode1, ccode2, year (int32); atop_defense, atop_offense, atop_neutral,
    atop_nonagg, atop_consul (int8 0/1). The flags are directional: row (a, b) says what a
    owes b. A row with all five flags 0 is a shared treaty with no obligation between the two.
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "year"], flags=ATOP_FLAGS)


@reader("cow_alliance")
def cow_alliance(path: Path) -> pd.DataFrame:
    """COW Formal Alliances v4.1 directed dyad-years, 1816-2012.

    Columns: ccode1, ccode2, year (int32); cow_defense, cow_neutral, cow_nonagg,
    cow_entente (int8 0/1).
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "year"], flags=COW_FLAGS)


@reader("atop_alliance_level", years=("begyr", "endyr"))
def atop_alliance_level(path: Path) -> pd.DataFrame:
    """ATOP v4 alliance-level file: one row per treaty (atopid), 1815-2016.

    141 columns as published (begin/end dates, obligations, provisions, members mem1...);
    codes follow the ATOP v4 codebook. atopid, begyr and endyr are int32; endyr 0 (the
    codebook's "still in effect") becomes NA.
    """
    df = pd.read_csv(path, low_memory=False)
    return typed(df, ints=["atopid", "begyr", "endyr"], missing_codes={"endyr": [0]})


@reader("atop_member_level", years=("yrent", "yrexit"))
def atop_member_level(path: Path) -> pd.DataFrame:
    """ATOP v4 member-level file: one row per treaty member and phase, 1815-2016.

    105 columns as published; codes follow the ATOP v4 codebook. atopid, member (COW code),
    yrent and yrexit are int32; yrexit 0 (the codebook's "still a member") becomes NA.
    """
    df = pd.read_csv(path, low_memory=False)
    return typed(df, ints=["atopid", "member", "yrent", "yrexit"], missing_codes={"yrexit": [0]})


@reader("benson_clinton_scores", years=())
def benson_clinton_scores(path: Path) -> pd.DataFrame:
    """Benson & Clinton (2016) latent depth, scope and capacity per ATOP treaty (no years).

    45 columns as published, keyed by atopid (int32).
    """
    return typed(pd.read_csv(path, low_memory=False), ints=["atopid"])

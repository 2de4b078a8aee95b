"""Readers of conflict data: militarized disputes, wars, rivalries, territorial threat."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from foedus.features.readers.core import read_rda, reader, typed

_MID_INTS = ["dispnum", "ccode1", "ccode2", "year", "hiact1", "hiact2", "hostlev1", "hostlev2", "hostlev"]
_MID_FLAGS = ["sidea1", "sidea2", "orig1", "orig2", "recip"]
_FATALITY = ["fatality1", "fatality2", "fatalpre1", "fatalpre2", "fatality"]


@reader("gml_mid_ddydisps")
def gml_mid_ddydisps(path: Path) -> pd.DataFrame:
    """Gibler-Miller-Little MIDs 2.2.1, directed dispute-dyad-years, 1816-2010.

    Columns: dispnum, ccode1, ccode2, year (int32); gmlmidongoing, gmlmidonset, sidea1,
    sidea2 (int8 0/1; sidea = on the side that started the dispute), hostility and action
    levels (int32), fatality codes (float, -9 = missing becomes NA), durations, stmon.
    Ongoing years are rows too, not only onsets.
    """
    df = read_rda(path)
    return typed(
        df,
        ints=_MID_INTS,
        flags=["gmlmidongoing", "gmlmidonset", *_MID_FLAGS],
        missing_codes={c: [-9] for c in _FATALITY},
    )


@reader("cow_mid_ddydisps")
def cow_mid_ddydisps(path: Path) -> pd.DataFrame:
    """COW MIDs, directed dispute-dyad-years, 1816-2014 (same layout as the GML file).

    Columns: dispnum, ccode1, ccode2, year (int32); cowmidongoing, cowmidonset, sidea1,
    sidea2 (int8 0/1); hostility and action levels (int32); fatality codes (-9 becomes NA).
    """
    df = read_rda(path)
    return typed(
        df,
        ints=_MID_INTS,
        flags=["cowmidongoing", "cowmidonset", *_MID_FLAGS],
        missing_codes={c: [-9] for c in _FATALITY},
    )


@reader("gml_dirdisp")
def gml_dirdisp(path: Path) -> pd.DataFrame:
    """GML MIDs 2.2.1, directed dispute-dyad-years with revisionism detail, 1816-2010.

    Columns as gml_mid_ddydisps plus revstate*, revtype*, outcome, settle, numa, numb,
    ongo2010, version; -9 (missing) becomes NA.
    """
    df = read_rda(path)
    sentinel = ["revstate1", "revstate2", "revtype11", "revtype12", "revtype21", "revtype22", "outcome", "settle",
                *_FATALITY, "fatalpre"]
    return typed(
        df,
        ints=_MID_INTS,
        flags=["midongoing", "midonset", *_MID_FLAGS],
        strings=["version"],
        missing_codes={c: [-9] for c in sentinel},
    )


@reader("gml_part", years=("styear", "endyear"))
def gml_part(path: Path) -> pd.DataFrame:
    """GML MIDs 2.2.1 participants: state, side and dates of participation, 1816-2010.

    Columns: dispnum, ccode, styear, stmon, stday, endyear, endmon, endday (int32; an unknown
    day, -9 in the source, is NA), sidea, orig (int8), hiact (int32), leader-match columns.
    """
    df = read_rda(path)
    return typed(
        df,
        ints=["dispnum", "ccode", "styear", "stmon", "stday", "endyear", "endmon", "endday", "hiact"],
        flags=["sidea", "orig"],
        strings=["obsid_start", "obsid_end"],
        missing_codes={"stday": [-9], "endday": [-9]},
    )


@reader("cow_war_inter")
def cow_war_inter(path: Path) -> pd.DataFrame:
    """COW inter-state wars v4.0, directed dyad-years, 1823-2003.

    Columns: warnum, ccode1, ccode2, year (int32); cowinterongoing, cowinteronset (int8);
    sides, initiators, outcomes; batdeath1, batdeath2 (-9 becomes NA).
    """
    df = read_rda(path)
    return typed(
        df,
        ints=["warnum", "ccode1", "ccode2", "year"],
        flags=["cowinterongoing", "cowinteronset"],
        missing_codes={"batdeath1": [-9], "batdeath2": [-9]},
    )


@reader("td_rivalries", years=("styear", "endyear"))
def td_rivalries(path: Path) -> pd.DataFrame:
    """Thompson & Dreyer (2011) strategic rivalries: one row per rivalry spell, 1494-2010.

    Columns: rivalryno, ccode1, ccode2, styear, endyear (int32); rivalryname, region,
    type1-type3 (positional, spatial, ideological, interventionary). A few codes are not
    COW states; the feature families drop them. Some pairs have two spells.
    """
    df = read_rda(path)
    return typed(df, ints=["rivalryno", "ccode1", "ccode2", "styear", "endyear"],
                 strings=["rivalryname", "region", "type1", "type2", "type3"])


@reader("tss_rivalries", years=("start", "end"))
def tss_rivalries(path: Path) -> pd.DataFrame:
    """Thompson, Sakuwa & Suzuki rivalries: one row per spell, 1494-2020.

    Columns: tssr_id, ccode1, ccode2, start, end (int32 years); rivalry (name); positional,
    spatial, ideological, interventionary, principal, aprin (float 1 or NA as published).
    """
    df = read_rda(path)
    return typed(df, ints=["tssr_id", "ccode1", "ccode2", "start", "end"], strings=["rivalry"])


@reader("terrthreat")
def terrthreat(path: Path) -> pd.DataFrame:
    """Latent territorial threat per state-year (Miller), 1816-2010.

    Columns: ccode, year (int32); lterrthreat with sd, lwr, upr; m_* variants (NA where the
    source gives none).
    """
    return typed(read_rda(path), ints=["ccode", "year"])

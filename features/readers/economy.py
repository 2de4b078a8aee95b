"""Readers of state-year attributes: capabilities, democracy, economy, trade, IGOs, society."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from foedus.features.readers.core import read_rda, reader, typed


@reader("cow_nmc")
def cow_nmc(path: Path) -> pd.DataFrame:
    """COW National Material Capabilities, state-years 1816-2022.

    Columns: ccode, year (int32); milex (thousands of USD), milper (thousands), irst
    (thousands of tons), pec (thousands of coal-ton equivalents), tpop, upop (thousands),
    cinc (share of system capabilities). NA where NMC has no estimate.
    """
    return typed(read_rda(path), ints=["ccode", "year"])


@reader("cw_democracy")
def cw_democracy(path: Path) -> pd.DataFrame:
    """Democracy scores per state-year (isard), 1816-2025.

    Columns: ccode, year (int32); euds, aeuds (extended Unified Democracy Scores, latent
    scale centred near 0); polity2 (-10..10); v2x_polyarchy (V-Dem, 0..1). NA where the
    measure does not cover the state-year.
    """
    return typed(read_rda(path), ints=["ccode", "year"])


@reader("cw_gdppop")
def cw_gdppop(path: Path) -> pd.DataFrame:
    """GDP per capita, real GDP and population estimates per state-year (isard), 1816-2019.

    Columns: ccode, year (int32); mrgdppc (Maddison GDP per capita), pwtrgdp (real GDP),
    pwtpop (population), each with a standard error sd_*.
    """
    return typed(read_rda(path), ints=["ccode", "year"])


@reader("cow_sdp_gdp")
def cow_sdp_gdp(path: Path) -> pd.DataFrame:
    """GDP, population and surplus domestic product estimates (natural logs), 1800-2016.

    Columns: ccode, year (int32); wbgdp2011est, wbpopest, sdpest, wbgdppc2011est (logs).
    """
    return typed(read_rda(path), ints=["ccode", "year"])


@reader("cow_trade_sy")
def cow_trade_sy(path: Path) -> pd.DataFrame:
    """Total imports and exports per state-year (COW trade), 1870-2014.

    Columns: ccode, year (int32); imports, exports (millions of current USD; NA if unknown).
    """
    return typed(read_rda(path), ints=["ccode", "year"])


@reader("cow_igo_ndy")
def cow_igo_ndy(path: Path) -> pd.DataFrame:
    """Shared IGO memberships per undirected dyad-year (COW IGO), 1816-2014.

    Columns: ccode1, ccode2, year (int32); dyadigos (number of IGOs both belong to).
    """
    return typed(read_rda(path), ints=["ccode1", "ccode2", "year", "dyadigos"])


@reader("creg")
def creg(path: Path) -> pd.DataFrame:
    """Ethnic and religious fractionalization and polarization (CREG), 1945-2013.

    Columns: ccode, gwcode, creg_ccode, year (int32); ethfrac, ethpol, relfrac, relpol.
    """
    return typed(read_rda(path), ints=["ccode", "gwcode", "creg_ccode", "year"])

"""Economy and ties: GDP and GDP per capita (isard), trade openness (COW trade), shared IGOs.

Wealthy and open economies have more to protect and more ways to cooperate; shared
intergovernmental organisations measure institutional ties that often precede treaties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Columns, Dyads, Sources, min_max

GDP = ("cw_gdppop",)
TRADE = ("cow_trade_sy", "cw_gdppop")
IGO = ("cow_igo_ndy",)

FAMILY = Family(
    "economy",
    ("cw_gdppop", "cow_trade_sy", "cow_igo_ndy"),
    "GDP and GDP per capita from isard's cw_gdppop (to 2019), trade from COW state-level trade "
    "(1870-2014), shared IGO memberships from COW IGO (to 2014). Trade openness is relative: the "
    "state's share of the system's trade over its share of the system's GDP in t-1, so that the "
    "current-dollar trade and the real-dollar GDP need no common deflator (1 = as open as the system).",
)
FAMILY.feature("log_gdp_min", "log millions of 2017 USD", "log real GDP of the smaller economy", GDP,
               label="GDP of the smaller economy (log)")
FAMILY.feature("log_gdp_max", "log millions of 2017 USD", "log real GDP of the larger economy", GDP,
               label="GDP of the larger economy (log)")
FAMILY.feature("log_gdppc_min", "log USD per person", "log GDP per capita of the poorer state", GDP,
               label="GDP per capita of the poorer state (log)")
FAMILY.feature("log_gdppc_max", "log USD per person", "log GDP per capita of the richer state", GDP,
               label="GDP per capita of the richer state (log)")
FAMILY.feature("trade_openness_min", "ratio", "relative trade openness of the less open state", TRADE,
               label="trade openness of the less open state")
FAMILY.feature("trade_openness_max", "ratio", "relative trade openness of the more open state", TRADE,
               label="trade openness of the more open state")
FAMILY.feature("shared_igos", "count", "intergovernmental organisations both states belong to", IGO,
               label="shared IGO memberships")


def relative_openness(trade: pd.DataFrame, gdp: pd.DataFrame) -> pd.DataFrame:
    """State-years (ccode, year, openness): trade share of the system over GDP share."""
    merged = trade.merge(gdp[["ccode", "year", "pwtrgdp"]], on=["ccode", "year"], how="inner")
    merged["trade"] = merged["imports"] + merged["exports"]
    merged = merged.dropna(subset=["trade", "pwtrgdp"])
    totals = merged.groupby("year")[["trade", "pwtrgdp"]].transform("sum")
    merged["openness"] = (merged["trade"] / totals["trade"]) / (merged["pwtrgdp"] / totals["pwtrgdp"])
    return merged[["ccode", "year", "openness"]]


@FAMILY.compute
def economy(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    gdp = sources["cw_gdppop"]
    columns = Columns()
    for column, short in (("pwtrgdp", "gdp"), ("mrgdppc", "gdppc")):
        a, b = dyads.state_values(gdp, column)
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[f"log_{short}_min"], columns[f"log_{short}_max"] = min_max(np.log(a), np.log(b))
    a, b = dyads.state_values(relative_openness(sources["cow_trade_sy"], gdp), "openness")
    columns["trade_openness_min"], columns["trade_openness_max"] = min_max(a, b)
    # cow_igo_ndy lists pairs with zero shared IGOs too, so a pair without a row is unknown, not 0.
    columns["shared_igos"] = dyads.dyad_values(sources["cow_igo_ndy"], "dyadigos")
    return pd.DataFrame(columns, copy=False)

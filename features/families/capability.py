"""Capability gap (COW NMC, COW major powers).

Power-based theories (Walt's balance of threat, Morrow's autonomy-security trade-off) read
alliances off the capability distribution: asymmetric pairs trade autonomy for security,
rising powers attract or repel partners. Stronger/weaker is by CINC in t-1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Dyads, Sources, stronger_weaker
from foedus.features.readers.system import spell_last_years

FAMILY = Family(
    "capability",
    ("cow_nmc", "cow_majors"),
    "Capability gap from COW National Material Capabilities (to 2022) and the COW major-power "
    "list (v2016; spells running at its end are carried to 2024, as system membership is). "
    "Stronger and weaker are by CINC in t-1.",
)
NMC = ("cow_nmc",)
MAJORS = ("cow_majors",)
CINC_FLOOR = 1e-7  # a few micro-states have CINC 0; the floor keeps log ratios finite

FAMILY.feature("cinc_stronger", "share of system capabilities", "CINC of the stronger state", NMC,
               label="capabilities of the stronger state (CINC)")
FAMILY.feature("cinc_weaker", "share of system capabilities", "CINC of the weaker state", NMC,
               label="capabilities of the weaker state (CINC)")
FAMILY.feature("cinc_share_stronger", "proportion 0.5-1", "stronger's share of the pair's combined CINC", NMC,
               label="stronger state's share of the pair's capabilities")
FAMILY.feature("log_cinc_ratio", "log ratio", "log of stronger's CINC over weaker's (floored at 1e-7)", NMC,
               label="capability gap (log CINC ratio)")
FAMILY.feature("log_milex_ratio", "log ratio", "absolute log ratio of military expenditures (+1)", NMC,
               label="military spending gap (log ratio)")
FAMILY.feature("log_milper_ratio", "log ratio", "absolute log ratio of military personnel (+1)", NMC,
               label="military personnel gap (log ratio)")
FAMILY.feature("cinc_growth5_stronger", "log ratio", "stronger's CINC in t-1 over its CINC in t-6 (rising power)", NMC,
               label="stronger state's capability growth over 5 years (log)")
FAMILY.feature("cinc_growth5_weaker", "log ratio", "weaker's CINC in t-1 over its CINC in t-6", NMC,
               label="weaker state's capability growth over 5 years (log)")
FAMILY.feature("n_major", "count 0-2", "number of COW major powers in the pair", MAJORS,
               label="major powers in the pair")
FAMILY.feature("major_minor", "0/1", "asymmetric pair: one major power and one minor power", MAJORS,
               label="major-minor pair")


def major_power_years(majors: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """State-years (ccode, year, major=1) for every year a major-power spell touches.

    A spell ending on the COW list's last day is still running (``spell_last_years``).
    """
    ends = spell_last_years(majors["end"], last)
    spans = [np.arange(a, b + 1) for a, b in zip(majors["start"].dt.year, ends)]
    years = np.concatenate(spans) if spans else np.array([], dtype=int)
    codes = np.repeat(majors["ccode"].to_numpy(), [len(s) for s in spans])
    out = pd.DataFrame({"ccode": codes, "year": years, "major": 1.0}).drop_duplicates(["ccode", "year"])
    return out[out["year"].between(first, last)]


@FAMILY.compute
def capability(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    nmc = sources["cow_nmc"]
    cinc1, cinc2 = dyads.state_values(nmc, "cinc")
    strong, weak = stronger_weaker(cinc1, cinc2, cinc1, cinc2)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = strong / (strong + weak)
        # np.maximum, not fmax: a missing CINC must stay missing, not become the floor
        log_ratio = np.log(np.maximum(strong, CINC_FLOOR)) - np.log(np.maximum(weak, CINC_FLOOR))
        ratios = {}
        for col in ("milex", "milper"):
            a, b = dyads.state_values(nmc, col)
            ratios[col] = np.abs(np.log1p(a) - np.log1p(b))
        old1, old2 = dyads.state_values(nmc, "cinc", lag=6)
        g1 = np.log(np.maximum(cinc1, CINC_FLOOR)) - np.log(np.maximum(old1, CINC_FLOOR))
        g2 = np.log(np.maximum(cinc2, CINC_FLOOR)) - np.log(np.maximum(old2, CINC_FLOOR))
    g_strong, g_weak = stronger_weaker(g1, g2, cinc1, cinc2)

    first, last = sources.coverage["cow_majors"]
    majors = major_power_years(sources["cow_majors"], first, last)
    m1, m2 = dyads.state_values(majors, "major")
    covered = sources.covers("cow_majors", dyads.year - 1)
    n_major = np.where(covered, np.nan_to_num(m1) + np.nan_to_num(m2), np.nan)
    return pd.DataFrame({
        "cinc_stronger": strong,
        "cinc_weaker": weak,
        "cinc_share_stronger": share,
        "log_cinc_ratio": log_ratio,
        "log_milex_ratio": ratios["milex"],
        "log_milper_ratio": ratios["milper"],
        "cinc_growth5_stronger": g_strong,
        "cinc_growth5_weaker": g_weak,
        "n_major": n_major,
        "major_minor": np.where(covered, (n_major == 1).astype(float), np.nan),
    }, copy=False)

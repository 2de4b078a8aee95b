"""Regime differences (isard democracy scores: extended UDS, Polity, V-Dem).

Democracies ally with each other more than with autocracies (Siverson & Emmons 1991; Lai &
Reiter 2000), and regime difference is one of the reasons a threatened pair stays apart.
Extended UDS (Marquez) is preferred for coverage: it reaches nearly every state-year from
1816 to 2025, where Polity misses micro-states and ends in 2020.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Columns, Dyads, Sources, min_max

FAMILY = Family(
    "regime",
    ("cw_democracy",),
    "Regime scores from isard's cw_democracy (to 2025). Extended UDS (`euds`, latent scale, higher = "
    "more democratic) is the preferred measure for coverage; Polity2 (-10..10, to 2020) gives the classic "
    "joint-democracy coding (both >= 6) and V-Dem polyarchy (0..1) a third view.",
)

MEASURES = {"euds": "extended UDS", "polity2": "Polity2", "v2x_polyarchy": "V-Dem polyarchy"}
SHORT = {"euds": "euds", "polity2": "polity", "v2x_polyarchy": "polyarchy"}
# how explanations name each state's score: "democracy of the less democratic state (extended UDS)"
WORDS = {"euds": ("democracy of the {} state (extended UDS)", "regime difference (extended UDS)"),
         "polity2": ("Polity2 of the {} state", "regime difference (Polity2)"),
         "v2x_polyarchy": ("polyarchy of the {} state (V-Dem)", "regime difference (V-Dem polyarchy)")}
DEMOCRACY, AUTOCRACY = 6, -6  # the Polity convention (Jaggers & Gurr)

for column, label in MEASURES.items():
    short = SHORT[column]
    unit = {"euds": "latent score", "polity2": "-10..10", "v2x_polyarchy": "0..1"}[column]
    state, difference = WORDS[column]
    FAMILY.feature(f"{short}_min", unit, f"{label} of the less democratic state", label=state.format("less democratic"))
    FAMILY.feature(f"{short}_max", unit, f"{label} of the more democratic state", label=state.format("more democratic"))
    FAMILY.feature(f"{short}_absdiff", unit, f"absolute difference of the two states' {label} (regime difference)",
                   label=difference)
FAMILY.feature("joint_democracy", "0/1", "both states have Polity2 >= 6", label="both democracies (Polity2 >= 6)")
FAMILY.feature("joint_autocracy", "0/1", "both states have Polity2 <= -6", label="both autocracies (Polity2 <= -6)")
FAMILY.feature("mixed_regime", "0/1", "one state has Polity2 >= 6 and the other <= -6",
               label="democracy-autocracy pair")


@FAMILY.compute
def regime(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    table = sources["cw_democracy"]
    columns = Columns()
    polity = None
    for column in MEASURES:
        a, b = dyads.state_values(table, column)
        lo, hi = min_max(a, b)
        short = SHORT[column]
        columns[f"{short}_min"], columns[f"{short}_max"], columns[f"{short}_absdiff"] = lo, hi, np.abs(a - b)
        if column == "polity2":
            polity = (lo, hi)
    lo, hi = polity
    known = ~(np.isnan(lo) | np.isnan(hi))
    columns["joint_democracy"] = np.where(known, (lo >= DEMOCRACY).astype(float), np.nan)
    columns["joint_autocracy"] = np.where(known, (hi <= AUTOCRACY).astype(float), np.nan)
    columns["mixed_regime"] = np.where(known, ((hi >= DEMOCRACY) & (lo <= AUTOCRACY)).astype(float), np.nan)
    return pd.DataFrame(columns, copy=False)

"""Missing stays missing in pair features: a pair value with one side unknown is unknown.

The rule, for every family at once: remove one state's row for t-1 from a state-year source
(as if the source did not know that state that year). Every feature of a pair with that state
that depends on the removed value must become missing: a feature that changes but still
claims a value was filled in from the other side (the NaN-ignoring fmax/fmin defect).
Features that do not read the state's own value (third-state sums, the pair's contiguity)
do not change, and the rule does not touch them.
"""

from __future__ import annotations

import numpy as np
import pytest
from foedus.features.dyads import Sources
from foedus.features.families import FAMILIES
from foedus.features.table import feature_table

US, SAN_MARINO, UK, RUSSIA, CHINA, INDIA = 2, 331, 200, 365, 710, 750
STATE_YEAR_SOURCES = ["cow_nmc", "cw_democracy", "cw_gdppop", "cow_trade_sy", "terrthreat"]
# (forecast year t, state whose t-1 row is removed): majors and minors, four eras
CASES = [(1913, UK), (1950, RUSSIA), (1992, US), (2005, CHINA), (2010, INDIA)]


@pytest.mark.parametrize("key", STATE_YEAR_SOURCES)
@pytest.mark.parametrize("year, state", CASES)
def test_a_pair_feature_with_one_side_unknown_is_unknown(one_year, sources, key, year, state):
    table = sources[key]
    removed = (table["ccode"] == state) & (table["year"] == year - 1)
    if not removed.any():
        pytest.fail(f"{key} has no row for {state} in {year - 1}: pick another case")
    families = [family for family in FAMILIES if key in family.sources]
    dyads = one_year(year)
    without = Sources({**sources.tables, key: table[~removed]}, sources.coverage)
    before = feature_table(dyads, sources, families)
    after = feature_table(dyads, without, families)
    involved = ((dyads["ccode1"] == state) | (dyads["ccode2"] == state)).to_numpy()
    columns = [f.name for family in families for f in family.features]
    changed_somewhere = []
    for column in columns:
        x, y = before.loc[involved, column].to_numpy(float), after.loc[involved, column].to_numpy(float)
        changed = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        claims = changed & ~np.isnan(y)
        assert not claims.any(), (f"{column}: {claims.sum()} pairs with {state} still claim a value without "
                                  f"its {key} row for {year - 1}, e.g. {x[claims][:3]} -> {y[claims][:3]}")
        if changed.any():
            changed_somewhere.append(column)
    assert changed_somewhere, f"removing {state}'s {key} row changed no feature: the case tests nothing"


def test_united_states_and_san_marino_1992_have_no_capability_gap(features, sources, dyad_row):
    # NMC has the US in 1991 but not San Marino: the gap and the ordering are unknown
    nmc = sources["cow_nmc"]
    assert ((nmc["ccode"] == US) & (nmc["year"] == 1991)).any()
    assert not ((nmc["ccode"] == SAN_MARINO) & (nmc["year"] == 1991)).any()
    row = dyad_row(features, US, SAN_MARINO, 1992)
    for column in ("cinc_stronger", "cinc_weaker", "cinc_share_stronger", "log_cinc_ratio",
                   "cinc_growth5_stronger", "cinc_growth5_weaker", "log_milex_ratio", "log_milper_ratio"):
        assert np.isnan(row[column]), column
    assert row["n_major"] == 1  # the major-power list does know San Marino is not one

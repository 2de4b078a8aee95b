"""Present-day models: each source's staleness, sources shifted by it, and the generalized lag
rule (a model for year Y never reads a source past the vintage it will have when scoring Y)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state
from foedus.features.dyads import Sources
from foedus.features.families import FAMILIES
from foedus.features.labels import LabelSpec, label_dyad_years
from foedus.features.staleness import check_target, shift_columns, shift_sources, shift_table, vintage
from foedus.features.table import feature_table
from foedus.features.vintage import cut_each
from foedus.features.years import NEXT_YEAR
from foedus.infra.errors import InvalidInput

USA, CAN, UK, IND, AUL = 2, 20, 200, 750, 900


def test_the_vintage_of_2026_on_the_real_data(sources):
    stale = vintage(2026, sources).staleness
    # 2025 minus each source's last year; Polity2 ends before its source (cw_democracy, 2025)
    assert stale["cw_democracy"] == 0 and stale["cw_democracy.polity2"] == 7
    assert stale["gml_mid_ddydisps"] == 15 and stale["cow_nmc"] == 3 and stale["cw_system"] == 1
    assert vintage(2011, sources).staleness["gml_mid_ddydisps"] == 0  # never negative


def test_a_target_year_outside_the_present_day_range_is_refused():
    assert check_target(2019, 2018, "atop_alliance") == 2019
    assert check_target(str(NEXT_YEAR), 2018, "atop_alliance") == NEXT_YEAR
    for bad in (2018, 1990, NEXT_YEAR + 1):
        with pytest.raises(InvalidInput, match=f"--for-year {bad}: present-day models serve 2019-{NEXT_YEAR}"):
            check_target(bad, 2018, "atop_alliance")
    with pytest.raises(InvalidInput, match="is not a year"):
        check_target("next", 2018, "atop_alliance")


def test_shifting_moves_years_dates_and_coverage_and_keeps_running_spells_running():
    yearly = pd.DataFrame({"ccode": [2, 2], "year": [2009, 2010], "v": [1.0, 2.0]})
    assert shift_table(yearly, "cow_nmc", 3)["year"].tolist() == [2012, 2013]
    system = pd.DataFrame({"ccode": [2, 300], "start": pd.to_datetime(["1816-01-01", "1816-01-01"]),
                           "end": pd.to_datetime(["2016-12-31", "1918-11-11"])})
    moved = shift_table(system, "cw_system", 2)
    assert moved["start"].dt.year.tolist() == [1818, 1818]
    assert moved["end"].tolist() == [pd.Timestamp("2016-12-31"), pd.Timestamp("1920-11-11")]  # running: unchanged
    shifted = shift_sources(Sources({"cow_nmc": yearly}, {"cow_nmc": (2009, 2010)}), {"cow_nmc": 3})
    assert shifted.coverage["cow_nmc"] == (2012, 2013)


def test_a_column_that_ends_early_reads_further_back_and_is_missing_where_there_is_no_value():
    table = pd.DataFrame({"ccode": [2, 2, 2, 20], "year": [2016, 2017, 2018, 2018], "p": [1.0, 2.0, 3.0, 4.0],
                          "q": [5.0, 6.0, 7.0, 8.0]})
    out = shift_columns(table, "cw_democracy", {"p": 2})
    assert np.isnan(out["p"].iloc[0]) and np.isnan(out["p"].iloc[1])
    assert out["p"].iloc[2] == 1.0 and np.isnan(out["p"].iloc[3]) and out["q"].tolist() == table["q"].tolist()


@pytest.mark.parametrize("target", [2019, 2026, NEXT_YEAR])
@pytest.mark.parametrize("year", [1870, 1946, 1990, 2005, 2012, 2018])
def test_a_present_day_model_never_reads_a_source_past_its_vintage(sources, one_year, assert_same, target, year):
    """The generalized lag test: the features of training year t under the vintage of Y equal
    those computed with each source k cut at t-1-d_k (and each early-ending column at its own)."""
    stale = vintage(target, sources).staleness
    dyads = one_year(year)
    full = feature_table(dyads, shift_sources(sources, stale), FAMILIES)
    cut = cut_each(sources, {key: year - 1 - d for key, d in stale.items()})
    assert_same(full, feature_table(dyads, shift_sources(cut, stale), FAMILIES), f"{year} for {target}")


def test_the_forecast_rows_read_each_source_at_its_last_year(sources, universe):
    from foedus.features.staleness import carry_forward

    stale = vintage(2026, sources).staleness
    rows = carry_forward(universe, 2026)
    rows = rows[(rows["year"] == 2026) & (rows["ccode1"] == USA) & (rows["ccode2"] == CAN)].reset_index(drop=True)
    assert len(rows) == 1  # the pairs of 2024, carried forward
    out = feature_table(rows, shift_sources(sources, stale), FAMILIES).iloc[0]
    dem, nmc = sources["cw_democracy"], sources["cow_nmc"]

    def value(table, code, year, column):
        return float(table.loc[(table["ccode"] == code) & (table["year"] == year), column].iloc[0])

    assert out["euds_min"] == pytest.approx(min(value(dem, USA, 2025, "euds"), value(dem, CAN, 2025, "euds")))
    assert out["polity_min"] == min(value(dem, USA, 2018, "polity2"), value(dem, CAN, 2018, "polity2"))
    assert out["cinc_weaker"] == pytest.approx(min(value(nmc, USA, 2022, "cinc"), value(nmc, CAN, 2022, "cinc")),
                                               rel=1e-6)
    assert out["covered_gml_mid_ddydisps"] == 1  # stale, not missing: GML as of 2010


def test_stale_labels_take_the_at_risk_set_the_source_knew_and_the_usual_onset():
    atop = ALLIANCE_SOURCES["atop"]
    cols = ["ccode1", "ccode2", "year", "atop_defense", "atop_offense", "atop_neutral", "atop_nonagg", "atop_consul"]
    # pair (2, 20) allies in 2003 and stays allied; (2, 200) allied through 2000 and again from 2005
    directed = pd.DataFrame([(2, 20, y, 1, 0, 0, 0, 0) for y in range(2003, 2008)]
                            + [(2, 200, y, 1, 0, 0, 0, 0) for y in [*range(1995, 2001), *range(2005, 2008)]],
                            columns=cols)
    universe = pd.DataFrame([(a, b, y) for y in range(2000, 2008) for a, b in ((2, 20), (2, 200))],
                            columns=["ccode1", "ccode2", "year"])
    out = label_dyad_years(universe, alliance_state(directed, atop), (1990, 2007), LabelSpec("atop", "defense"), 3)
    row = out.set_index(["ccode1", "ccode2", "year"])
    # 2005: known at 2001 (3 years stale), not allied then: at risk; allied since 2003: no onset
    assert bool(row.loc[(2, 20, 2005), "at_risk"]) and not bool(row.loc[(2, 20, 2005), "onset"])
    assert bool(row.loc[(2, 20, 2003), "onset"])  # the usual onset, known at 1999
    assert not bool(row.loc[(2, 200, 2003), "at_risk"])  # allied in 1999 as far as anyone knew in 2002
    assert bool(row.loc[(2, 200, 2005), "onset"])  # known at 2001: not allied; allies in 2005
    late = label_dyad_years(universe, alliance_state(directed, atop), (1999, 2007), LabelSpec("atop", "defense"), 3)
    late = late.set_index(["ccode1", "ccode2", "year"])
    assert pd.isna(late.loc[(2, 20, 2002), "at_risk"])  # known at 1998, before the source begins
    assert late.loc[(2, 20, 2003), "at_risk"] is not pd.NA  # known at 1999

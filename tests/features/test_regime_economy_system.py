"""Regime, economy and system families, checked against the source tables."""

import numpy as np


def lagged(table, ccode, year, column):
    return table.set_index(["ccode", "year"]).loc[(ccode, year - 1), column]


def test_regime_united_states_and_franco_spain_1950(features, sources, dyad_row):
    row = dyad_row(features, 2, 230, 1950)
    dem = sources["cw_democracy"]
    us, spain = lagged(dem, 2, 1950, "polity2"), lagged(dem, 230, 1950, "polity2")
    assert us >= 6 and spain <= -6  # isard's Polity2 in 1949
    assert row["polity_min"] == spain and row["polity_max"] == us and row["polity_absdiff"] == us - spain
    assert row["joint_democracy"] == 0 and row["joint_autocracy"] == 0 and row["mixed_regime"] == 1
    eu = sorted([lagged(dem, 2, 1950, "euds"), lagged(dem, 230, 1950, "euds")])
    assert np.isclose(row["euds_min"], eu[0], atol=1e-6) and np.isclose(row["euds_absdiff"], eu[1] - eu[0], atol=1e-6)


def test_joint_democracy_united_states_and_united_kingdom_1950(features, dyad_row):
    row = dyad_row(features, 2, 200, 1950)
    assert row["joint_democracy"] == 1 and row["mixed_regime"] == 0


def test_economy_gdp_and_igos(features, sources, dyad_row):
    row = dyad_row(features, 2, 200, 1950)
    gdp = sources["cw_gdppop"]
    logs = sorted(np.log([lagged(gdp, 2, 1950, "pwtrgdp"), lagged(gdp, 200, 1950, "pwtrgdp")]))
    assert np.isclose(row["log_gdp_min"], logs[0]) and np.isclose(row["log_gdp_max"], logs[1])
    igo = sources["cow_igo_ndy"]
    shared = igo[(igo["ccode1"] == 2) & (igo["ccode2"] == 200) & (igo["year"] == 1949)]["dyadigos"].item()
    assert row["shared_igos"] == shared


def test_trade_openness_is_relative_to_the_system(features, dyad_row):
    # The world's openness averages near 1 by construction; the US (a large, closed economy) is below it.
    row = dyad_row(features, 2, 200, 1990)
    assert 0 < row["trade_openness_min"] < 1 < row["trade_openness_max"]


def test_economy_is_missing_past_its_sources(features):
    late = features[features["year"] >= 2016]
    assert late["shared_igos"].isna().all() and late["trade_openness_max"].isna().all()



def test_shared_igos_are_missing_only_for_pairs_that_were_not_a_dyad_in_t_minus_1(features, universe):
    from foedus.features.universe import dyad_year_key

    covered = features[features["year"].between(1817, 2015)]
    missing = covered[covered["shared_igos"].isna()]
    existed = np.isin(dyad_year_key(missing["ccode1"], missing["ccode2"], missing["year"] - 1),
                      dyad_year_key(universe["ccode1"], universe["ccode2"], universe["year"]))
    assert len(missing) > 0 and not existed.any()
    assert features.loc[features["year"] >= 2021, "log_gdp_max"].isna().all()


def test_system_size_and_era(features, universe, dyad_row):
    row = dyad_row(features, 2, 200, 1950)
    states_1949 = np.union1d(*(universe.loc[universe["year"] == 1949, c] for c in ("ccode1", "ccode2")))
    assert row["n_states"] == len(states_1949) and row["era"] == 2
    assert np.isnan(dyad_row(features, 2, 200, 1816)["n_states"])
    assert dyad_row(features, 2, 200, 1913)["era"] == 0 and dyad_row(features, 2, 200, 1990)["era"] == 3

"""Capability gap, checked against COW NMC and the major-power list."""

import numpy as np


def test_united_states_and_united_kingdom_1950(features, sources, dyad_row):
    row = dyad_row(features, 2, 200, 1950)
    nmc = sources["cow_nmc"].set_index(["ccode", "year"])["cinc"]
    us, uk = nmc[(2, 1949)], nmc[(200, 1949)]  # lagged: 1949 capabilities
    assert row["cinc_stronger"] == np.float32(us) and row["cinc_weaker"] == np.float32(uk)
    assert np.isclose(row["cinc_share_stronger"], us / (us + uk))
    assert np.isclose(row["log_cinc_ratio"], np.log(us / uk), rtol=1e-5)
    assert row["n_major"] == 2 and row["major_minor"] == 0


def test_major_minor_pair_and_spells(features, dyad_row):
    assert dyad_row(features, 2, 20, 1950)["major_minor"] == 1  # US (major) and Canada
    # Germany: not a major power 1919-1924 (spells 1816-1918 and 1925-1945)
    assert dyad_row(features, 200, 255, 1920)["n_major"] == 1
    assert dyad_row(features, 200, 255, 1926)["n_major"] == 2


def test_rising_power_growth_is_five_year_log_change(features, sources, dyad_row):
    nmc = sources["cow_nmc"].set_index(["ccode", "year"])["cinc"]
    row = dyad_row(features, 710, 740, 2000)  # China and Japan
    growth = {c: np.log(nmc[(c, 1999)] / nmc[(c, 1994)]) for c in (710, 740)}
    stronger = 710 if nmc[(710, 1999)] > nmc[(740, 1999)] else 740
    weaker = 740 if stronger == 710 else 710
    assert np.isclose(row["cinc_growth5_stronger"], growth[stronger], atol=1e-5)
    assert np.isclose(row["cinc_growth5_weaker"], growth[weaker], atol=1e-5)


def test_missing_outside_the_sources_coverage(features, dyad_row):
    # NMC covers 1816-2022: features exist for t = 1817-2023. Majors: the v2016 list's running
    # spells are carried to 2024, so n_major exists for t = 1817-2024 and is missing only in 1816.
    years = features["year"]
    assert features.loc[years.isin([1816, 2024]), "cinc_stronger"].isna().all()
    assert features.loc[years.between(1817, 2023), "cinc_stronger"].notna().mean() > 0.95
    assert features.loc[years == 1816, "n_major"].isna().all()
    assert features.loc[years >= 1817, "n_major"].notna().all()
    assert dyad_row(features, 2, 710, 2024)["n_major"] == 2  # US and China
    assert dyad_row(features, 255, 740, 2020)["n_major"] == 2  # Germany and Japan, majors again from 1991

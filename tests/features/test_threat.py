"""Shared threats, checked against the GML and COW MIDs, the rivalry lists and brute force."""

import logging
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from foedus.features.dyads import Dyads, Sources
from foedus.features.families.threat import FAMILY, common_foe_years, common_foes_of, common_rivals_of, shared_threat

GML_ONLY = [f.name for f in FAMILY.features if f.sources == ("gml_mid_ddydisps",)]
UK, USSR, GERMANY, ITALY, JAPAN = 200, 365, 255, 325, 740
INDIA, PAKISTAN = 750, 770


@pytest.fixture(scope="module")
def threat_sources(sources):
    return sources.only(FAMILY.sources, "the threat tests")


@pytest.fixture(scope="module")
def threats(features):
    return features  # the session's table of every family, the threat columns among them


# --- hand-checked pairs --------------------------------------------------------------------

def test_united_kingdom_and_soviet_union_1939_share_three_foes(threats, threat_sources, dyad_row):
    # GML 1929-1938: both faced Germany, Italy and Japan (the UK over Abyssinia, Spain and
    # China; the USSR at Lake Khasan and in Spain)
    assert dyad_row(threats, UK, USSR, 1939)["common_foes_10y"] == 3
    assert common_foes_of(threat_sources, UK, USSR, 1939) == [GERMANY, ITALY, JAPAN]
    named = common_foe_years(threat_sources, UK, USSR, 1939).set_index("ccode")
    assert list(named.index) == [GERMANY, ITALY, JAPAN]
    assert 1938 in named.loc[JAPAN, "years_b"]  # Lake Khasan
    assert all(1929 <= y <= 1938 for years in named["years_a"] for y in years)


def test_named_common_foes_and_rivals_are_the_counted_ones(threats, threat_sources):
    # what `foedus score` names must be what the features count, on a sample of real pairs
    rows = threats[threats["year"].between(1900, 2010) & (threats["shared_threat"] == 1)].sample(40, random_state=5)
    for row in rows.itertuples():
        a, b, year = int(row.ccode1), int(row.ccode2), int(row.year)
        assert len(common_foe_years(threat_sources, a, b, year)) == row.common_foes_10y
        assert len(common_rivals_of(threat_sources, a, b, year, "td_rivalries")) == row.common_rivals_td
        assert len(common_rivals_of(threat_sources, a, b, year, "tss_rivalries")) == row.common_rivals_tss
    with pytest.raises(ValueError, match="2012"):
        common_foe_years(threat_sources, UK, USSR, 2013)


def test_india_and_pakistan_1990_disputed_in_the_last_ten_years(threats, threat_sources, dyad_row):
    row = dyad_row(threats, INDIA, PAKISTAN, 1990)
    mids = threat_sources["gml_mid_ddydisps"]
    pair = mids[(mids["ccode1"] == INDIA) & (mids["ccode2"] == PAKISTAN) & mids["year"].between(1980, 1989)]
    assert row["disputes_10y"] == pair["dispnum"].nunique() >= 1
    assert row["ever_disputed"] == 1
    assert row["years_since_dispute"] == 1989 - pair["year"].max()


def test_india_and_pakistan_are_rivals_from_partition(threats, dyad_row):
    # Thompson-Dreyer and TSS both date the rivalry from 1947: t=1947 reads 1946, t=1948 reads 1947
    for year, expected in ((1947, 0), (1948, 1), (1990, 1)):
        row = dyad_row(threats, INDIA, PAKISTAN, year)
        assert row["rivals_td"] == expected and row["rivals_tss"] == expected, year
    assert np.isnan(dyad_row(threats, INDIA, PAKISTAN, 2012)["rivals_td"])  # TD ends in 2010
    assert dyad_row(threats, INDIA, PAKISTAN, 2021)["rivals_tss"] == 1  # TSS runs to 2020


def test_a_pair_that_never_disputed_has_no_years_since_dispute(threats, dyad_row):
    row = dyad_row(threats, INDIA, PAKISTAN, 1947)  # Pakistan's first year: no dispute yet
    assert row["ever_disputed"] == 0 and np.isnan(row["years_since_dispute"])


def test_shared_threat_with_only_tss_known(threats, dyad_row):
    # 2015: GML and TD end in 2010, TSS in 2020. China is a TSS rival of the United States
    # and of Japan (1996-2020), so the threat is known to be shared; Canada and Australia
    # share no TSS rival, but GML foes are unknown, so nothing is known to be zero.
    us_japan = dyad_row(threats, 2, JAPAN, 2015)
    assert np.isnan(us_japan["common_foes_10y"]) and us_japan["common_rivals_tss"] == 1
    assert us_japan["shared_threat"] == 1
    canada_australia = dyad_row(threats, 20, 900, 2015)
    assert canada_australia["common_rivals_tss"] == 0 and np.isnan(canada_australia["shared_threat"])


def test_shared_threat_rule():
    nan = np.nan
    foes, td, tss = (np.array(v) for v in ([2, 0, 0, nan, nan, nan], [0, 0, 0, nan, nan, nan], [0, 0, nan, 1, 0, nan]))
    assert np.array_equal(shared_threat(foes, td, tss), [1, 0, nan, 1, nan, nan], equal_nan=True)


def test_shared_threat_is_zero_or_one_while_every_source_covers(threats):
    covered = threats[threats["year"].between(1817, 2011)]["shared_threat"]
    assert covered.notna().all() and covered.isin([0, 1]).all()


# --- coverage ------------------------------------------------------------------------------

def test_gml_features_exist_for_1817_to_2011_only(threats):
    years = threats["year"]
    for name in GML_ONLY:
        assert threats.loc[(years == 1816) | (years >= 2012), name].isna().all(), name
        inside = threats.loc[years.between(1817, 2011)]
        if name == "years_since_dispute":  # missing inside coverage only for pairs that never disputed
            assert (inside[name].notna() == (inside["ever_disputed"] == 1)).all()
        else:
            assert inside[name].notna().all(), name


def test_cow_mid_variant_reaches_2015(threats):
    years = threats["year"]
    assert threats.loc[years.between(1817, 2015), "common_foes_10y_cowmid"].notna().all()
    assert threats.loc[(years == 1816) | (years >= 2016), "common_foes_10y_cowmid"].isna().all()


def test_rivalry_features_follow_their_sources(threats):
    years = threats["year"]
    assert threats.loc[years.between(1817, 2011), "common_rivals_td"].notna().all()
    assert threats.loc[years >= 2012, "common_rivals_td"].isna().all()
    assert threats.loc[years.between(1817, 2021), "common_rivals_tss"].notna().all()
    assert threats.loc[years >= 2022, "common_rivals_tss"].isna().all()
    # no COW list in 1815, so no third state is known to be a member
    assert threats.loc[years == 1816, ["common_rivals_td", "common_rivals_tss"]].isna().all().all()


# --- against brute force -------------------------------------------------------------------

def brute_force(mids: pd.DataFrame, cinc: dict, year: int) -> dict:
    """Per pair: common foes (5 and 10 years), their CINC, own foes, disputes; plain sets."""
    opposed = mids[mids["sidea1"] != mids["sidea2"]]
    foes = {w: defaultdict(set) for w in (5, 10)}
    disputes = defaultdict(set)
    for a, b, y, d in zip(opposed["ccode1"], opposed["ccode2"], opposed["year"], opposed["dispnum"]):
        for w in (5, 10):
            if year - w <= y <= year - 1:
                foes[w][a].add(b)
                foes[w][b].add(a)
        if year - 10 <= y <= year - 1:
            disputes[min(a, b), max(a, b)].add(d)

    def values(a, b):
        common = (foes[10][a] & foes[10][b]) - {a, b}
        own = sorted([len(foes[10][a] - {b}), len(foes[10][b] - {a})])
        return {"common_foes_5y": len((foes[5][a] & foes[5][b]) - {a, b}),
                "common_foes_10y": len(common),
                "common_foe_cinc_10y": sum(cinc.get((k, year - 1), 0.0) for k in common),
                "foes_10y_min": own[0], "foes_10y_max": own[1],
                "joint_foes_10y": len((foes[10][a] | foes[10][b]) - {a, b}),
                "disputes_10y": len(disputes[a, b])}
    return values


@pytest.mark.parametrize("year", [1817, 1870, 1914, 1939, 1946, 1990, 2011])
def test_common_foes_match_brute_force_over_every_pair(threats, threat_sources, year):
    nmc = threat_sources["cow_nmc"]
    cinc = dict(zip(zip(nmc["ccode"], nmc["year"]), nmc["cinc"].fillna(0.0)))
    values = brute_force(threat_sources["gml_mid_ddydisps"], cinc, year)
    rows = threats[threats["year"] == year]
    expected = pd.DataFrame([values(a, b) for a, b in zip(rows["ccode1"], rows["ccode2"])], index=rows.index)
    for col in expected.columns:
        assert np.allclose(rows[col], expected[col], atol=1e-6), f"{col} in {year}"
    if year in (1914, 1939, 1946):
        assert (expected["common_foes_10y"] > 0).sum() > 50  # the check is not vacuous


# --- rivalry codes -------------------------------------------------------------------------

def test_rivalry_codes_that_are_not_cow_states_are_dropped(threat_sources, caplog, one_year):
    # 324 (Venice) is in both rivalry lists but is no COW state; add it, and Denmark (390) for
    # contrast, as a rival of both the UK and France in 1900.
    td = threat_sources["td_rivalries"]
    extra = pd.DataFrame({"rivalryno": 0, "ccode1": [324, 220, 390, 220], "ccode2": [200, 324, 200, 390],
                          "styear": 1900, "endyear": 1900}).astype("int32")
    tables = dict(threat_sources.tables, td_rivalries=pd.concat([td, extra], ignore_index=True))
    dyads = one_year(1901)
    with caplog.at_level(logging.INFO, logger="foedus.features.families.threat"):
        before = FAMILY(Dyads.from_frame(dyads), threat_sources)
        after = FAMILY(Dyads.from_frame(dyads), Sources(tables, threat_sources.coverage))
    assert "td_rivalries: 2 rivalry spells name codes not on the COW list [324]" in caplog.text
    uk_france = ((dyads["ccode1"] == UK) & (dyads["ccode2"] == 220)).to_numpy()
    assert after.loc[uk_france, "common_rivals_td"].item() == before.loc[uk_france, "common_rivals_td"].item() + 1

"""Alliance network and history, checked against the ATOP and COW alliance rows of t-1."""

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state
from foedus.features.families.network import FAMILY, make_family, partners_opponents, s_score
from foedus.features.table import feature_table, load_sources
from foedus.features.vintage import cut_sources

US, UK, JAPAN = 2, 200, 740
COW_FAMILY = make_family("cow")


@pytest.fixture(scope="module")
def network_sources(paths):
    return load_sources([*FAMILY.sources, *COW_FAMILY.sources], paths)


@pytest.fixture(scope="module")
def network(features):
    return features  # the session's table of every family, the (ATOP) network columns among them


@pytest.fixture(scope="module")
def atop_allied(network_sources):
    return alliance_state(network_sources["atop_alliance"], ALLIANCE_SOURCES["atop"])


def partners(allied: pd.DataFrame, year: int) -> dict:
    out = defaultdict(set)
    rows = allied[allied["year"] == year]
    for a, b in zip(rows["ccode1"], rows["ccode2"]):
        out[a].add(b)
        out[b].add(a)
    return out


# --- hand-checked pairs --------------------------------------------------------------------

def test_united_states_and_united_kingdom_around_nato(network, dyad_row):
    # ATOP: allied 1942-1945 (the wartime alliance), not 1946-1948, again from 1949 (NATO)
    y1947, y1949, y1950 = (dyad_row(network, US, UK, y) for y in (1947, 1949, 1950))
    assert y1947["ever_allied"] == 1 and y1947["years_since_allied"] == 1946 - 1945
    assert y1949["years_since_allied"] == 1948 - 1945
    assert y1950["ever_allied"] == 1 and y1950["years_since_allied"] == 0  # allied in 1949


def test_united_kingdom_and_japan_after_their_alliance(network, dyad_row):
    # ATOP: allied 1902-1931 (the Anglo-Japanese alliance, then the Four-Power Treaty); 1941 reads 1940
    row = dyad_row(network, UK, JAPAN, 1941)
    assert row["ever_allied"] == 1 and row["years_since_allied"] == 1940 - 1931
    never = dyad_row(network, UK, JAPAN, 1900)
    assert never["ever_allied"] == 0 and np.isnan(never["years_since_allied"])


def test_allies_of_the_united_states_in_1950_are_its_atop_partners_of_1949(network, network_sources, dyad_row):
    atop = network_sources["atop_alliance"]
    flags = list(ALLIANCE_SOURCES["atop"].flags.values())
    rows = atop[(atop["year"] == 1949) & (atop[flags].sum(axis=1) > 0)]
    us_partners = set(rows.loc[rows["ccode1"] == US, "ccode2"]) | set(rows.loc[rows["ccode2"] == US, "ccode1"])
    row = dyad_row(network, US, UK, 1950)
    assert len(us_partners) == 31
    assert row["allies_max"] == len(us_partners)  # the US has more allies than the UK


def test_no_values_after_the_source_ends(network, network_sources, one_year):
    assert network.loc[network["year"] >= 2020, FAMILY.columns].isna().all().all()
    assert network.loc[network["year"].between(1817, 2019), "allies_min"].notna().all()
    cow = feature_table(one_year(2014), network_sources, [COW_FAMILY])  # COW ends in 2012
    assert cow[COW_FAMILY.columns].isna().all().all()


def test_cow_variant_has_the_same_columns(network_sources, one_year, dyad_row):
    assert COW_FAMILY.columns == FAMILY.columns
    cow = feature_table(one_year(1950), network_sources, [COW_FAMILY])
    assert dyad_row(cow, US, UK, 1950)["ever_allied"] == 1  # COW: NATO from 1949


# --- against brute force -------------------------------------------------------------------

@pytest.mark.parametrize("year", [1817, 1914, 1939, 1950, 1990, 2015])
def test_shared_allies_and_ally_counts_match_brute_force(network, atop_allied, year):
    allies = partners(atop_allied, year - 1)
    rows = network[network["year"] == year]
    shared = [len(allies[a] & allies[b]) for a, b in zip(rows["ccode1"], rows["ccode2"])]
    most = [max(len(allies[a]), len(allies[b])) for a, b in zip(rows["ccode1"], rows["ccode2"])]
    assert np.array_equal(rows["shared_allies"], shared)
    assert np.array_equal(rows["allies_max"], most)
    if year >= 1914:
        assert sum(shared) > 0


def test_s_score_matches_its_definition_for_every_pair(network, network_sources, atop_allied):
    year = 1990
    allies = partners(atop_allied, year - 1)
    system = network_sources["cw_system"]
    members = set(system.loc[(system["start"].dt.year <= year - 1) & (system["end"].dt.year >= year - 1), "ccode"])
    rows = network[network["year"] == year]
    for a, b, s in list(zip(rows["ccode1"], rows["ccode2"], rows["alliance_s_score"]))[::37]:
        if not {a, b} <= members:
            assert np.isnan(s)
            continue
        tie_a, tie_b = allies[a] | {a}, allies[b] | {b}
        differ = sum((k in tie_a) != (k in tie_b) for k in members)
        assert np.isclose(s, 1 - 2 * differ / len(members), atol=1e-6)


@pytest.mark.parametrize("year", [1817, 1946, 1992])
def test_the_alliance_climate_is_last_years_share_of_new_alliances(network, network_sources, atop_allied, year):
    system = network_sources["cw_system"]
    members = sorted(set(system.loc[(system["start"].dt.year <= year - 1) & (system["end"].dt.year >= year - 1),
                                    "ccode"]))
    before, after = partners(atop_allied, year - 2), partners(atop_allied, year - 1)
    open_pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1:] if b not in before[a]]
    new = sum(b in after[a] for a, b in open_pairs)
    values = network.loc[network["year"] == year, "new_alliance_rate"]
    assert values.nunique() == 1  # a year-wide value
    assert np.isclose(values.iloc[0], new / len(open_pairs), rtol=1e-6)
    if year == 1946:
        assert values.iloc[0] > 0.2  # the 1945 burst: the UN-era treaties


def test_the_alliance_climate_is_missing_without_a_member_list(network):
    assert network.loc[network["year"] == 1816, "new_alliance_rate"].isna().all()


def test_s_score_bounds_on_the_real_data(network):
    s = network["alliance_s_score"].dropna()
    assert s.between(-1, 1).all() and (s == 1).any()


# --- on hand-made matrices ------------------------------------------------------------------

def test_s_score_is_one_for_identical_portfolios_and_minus_one_for_opposite():
    # five members: 0 and 1 allied to each other and to 2; 3 and 4 allied to each other
    allies = np.zeros((5, 5), dtype=np.float32)
    for a, b in [(0, 1), (0, 2), (1, 2), (3, 4)]:
        allies[a, b] = allies[b, a] = 1
    s = s_score(allies, np.ones(5, dtype=bool))
    assert np.isclose(s[0, 1], 1)  # same ties {0, 1, 2}, each tied to itself
    assert np.isclose(s[0, 3], 1 - 2 * 5 / 5)  # {0,1,2} vs {3,4}: all five differ
    assert np.allclose(s, s.T) and (s >= -1).all() and (s <= 1).all()
    # a state outside the system does not enter the portfolios
    assert np.isclose(s_score(allies, np.array([1, 1, 0, 1, 1], bool))[0, 1], 1)


def test_allied_to_the_partners_opponent_counts_each_third_state_once():
    # 0-1 the pair; 2 allied to 0 and rival of 1; 3 allied to 1 and rival of 0; 4 both ways
    allies, rivals = np.zeros((5, 5), np.float32), np.zeros((5, 5), np.float32)
    for a, b in [(0, 2), (1, 3), (0, 4), (1, 4)]:
        allies[a, b] = allies[b, a] = 1
    for a, b in [(1, 2), (0, 3), (0, 4), (1, 4)]:
        rivals[a, b] = rivals[b, a] = 1
    assert partners_opponents(allies, rivals)[0, 1] == 3


# --- the lag rule for the COW variant (the ATOP default is in test_feature_rules.py) -------

def test_cow_network_features_of_year_t_use_nothing_from_t_or_later(network_sources, sample_year, one_year,
                                                                   assert_same):
    dyads = one_year(sample_year)
    full = feature_table(dyads, network_sources, [COW_FAMILY])
    cut = feature_table(dyads, cut_sources(network_sources, sample_year - 1), [COW_FAMILY])
    assert_same(full, cut, f"year {sample_year}")

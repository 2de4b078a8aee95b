"""Geography, checked against COW contiguity, CShapes distances and the capitals table."""

import numpy as np
import pandas as pd
import pytest
from foedus.features.dyads import Sources
from foedus.features.families.geography import FAMILY, great_circle_km
from foedus.features.table import feature_table
from foedus.features.vintage import cut_sources

CONTIG = ["contig_land", "contig_12mi", "contig_24mi", "contig_150mi", "contig_400mi", "contig_type"]


@pytest.fixture(scope="module")
def geo_sources(sources):
    return sources.only(FAMILY.sources, "the geography tests")


@pytest.fixture(scope="module")
def geography(features):
    return features  # the session's table of every family, the geography columns among them


def contiguity(row):
    return [row[c] for c in CONTIG]


def capital(sources, name):
    caps = sources["cow_capitals"]
    row = caps[caps["capital"] == name].iloc[0]
    return row["lat"], row["lng"]


# --- contiguity (COW Direct Contiguity 3.2) ------------------------------------------------

def test_france_and_germany_1913_are_contiguous_by_land(geography, dyad_row):
    assert contiguity(dyad_row(geography, 220, 255, 1913)) == [1, 1, 1, 1, 1, 1]


def test_contiguity_is_the_spell_in_effect_in_december_of_t_minus_1(geography, dyad_row):
    # COW: France-Germany land border to June 1940, then no contiguity July 1940-Nov 1942
    # (Vichy). In December 1940 there was none, so 1941 reads "not contiguous", not missing.
    assert contiguity(dyad_row(geography, 220, 255, 1941)) == [0, 0, 0, 0, 0, 6]


def test_united_kingdom_and_france_are_across_24_miles_of_water(geography, dyad_row):
    # COW type 3 (the Strait of Dover): within 24 miles but not 12, not by land
    assert contiguity(dyad_row(geography, 200, 220, 1913)) == [0, 0, 1, 1, 1, 3]


def test_united_states_and_cuba_are_across_150_miles_of_water(geography, dyad_row):
    assert contiguity(dyad_row(geography, 2, 40, 1950)) == [0, 0, 0, 1, 1, 4]


def test_bering_strait_contiguity_starts_in_1959_and_shows_in_1960(geography, dyad_row):
    # COW dates US-Russia type 2 (Alaska's statehood) from January 1959; year t reads t-1.
    assert contiguity(dyad_row(geography, 2, 365, 1959)) == [0, 0, 0, 0, 0, 6]
    assert contiguity(dyad_row(geography, 2, 365, 1960)) == [0, 1, 1, 1, 1, 2]


def test_united_states_and_united_kingdom_are_not_contiguous(geography, dyad_row):
    assert contiguity(dyad_row(geography, 2, 200, 1913)) == [0, 0, 0, 0, 0, 6]


def test_contiguity_is_missing_after_2016(geography, dyad_row):
    assert dyad_row(geography, 220, 255, 2017)["contig_land"] == 1  # reads December 2016
    late = geography[geography["year"] >= 2018]
    assert late[CONTIG].isna().all().all()
    early = geography[geography["year"].between(1817, 2017)]
    assert early[CONTIG].notna().all().all()


def test_contiguity_classes_are_cumulative(geography):
    table = geography[geography["contig_type"].notna()]
    for miles, conttype in [(12, 2), (24, 3), (150, 4), (400, 5)]:
        assert (table[f"contig_{miles}mi"] == (table["contig_type"] <= conttype)).all()
    assert (table["contig_land"] == (table["contig_type"] == 1)).all()


# --- minimum border distance (CShapes) ------------------------------------------------------

def test_land_neighbours_have_zero_border_distance(geography, dyad_row):
    row = dyad_row(geography, 220, 255, 1913)
    assert row["mindist_km"] == 0 and row["log1p_mindist"] == 0


def test_border_distance_is_read_from_t_minus_1(geography, geo_sources, dyad_row):
    # the United Kingdom and France: about 35 km across the Strait of Dover in CShapes
    mindist = geo_sources["cow_mindist"]
    source = mindist[(mindist["ccode1"] == 200) & (mindist["ccode2"] == 220) & (mindist["year"] == 1912)]
    row = dyad_row(geography, 200, 220, 1913)
    assert row["mindist_km"] == np.float32(source["mindist"].item())
    assert 30 < row["mindist_km"] < 40
    assert np.isclose(row["log1p_mindist"], np.log1p(source["mindist"].item()))


def test_border_distance_is_missing_outside_1886_2019(geography, dyad_row):
    years = geography["year"]
    assert geography.loc[(years <= 1886) | (years >= 2021), ["mindist_km", "log1p_mindist"]].isna().all().all()
    assert dyad_row(geography, 220, 255, 1887)["mindist_km"] == 0  # reads 1886
    assert dyad_row(geography, 220, 255, 2020)["mindist_km"] == 0  # reads 2019


# --- distance between capitals ---------------------------------------------------------------

def test_capital_distances_of_known_city_pairs(geography, dyad_row):
    assert 335 < dyad_row(geography, 200, 220, 1950)["capital_distance_km"] < 350  # London-Paris, 344 km
    assert 5850 < dyad_row(geography, 2, 200, 1950)["capital_distance_km"] < 5950  # Washington-London, 5,897 km


def test_russian_capital_moves_to_moscow_in_march_1918_and_shows_in_1919(geography, dyad_row):
    # London-St Petersburg is about 2,090 km, London-Moscow about 2,500 km
    assert 2050 < dyad_row(geography, 200, 365, 1918)["capital_distance_km"] < 2130
    assert 2460 < dyad_row(geography, 200, 365, 1919)["capital_distance_km"] < 2540


def test_australian_capital_moves_to_canberra_in_1927(geography, dyad_row):
    # Wellington-Melbourne about 2,570 km; Wellington-Canberra about 2,330 km
    assert 2530 < dyad_row(geography, 900, 920, 1927)["capital_distance_km"] < 2610
    assert 2290 < dyad_row(geography, 900, 920, 1928)["capital_distance_km"] < 2370


def test_brazilian_capital_moves_to_brasilia_in_april_1960_and_shows_in_1961(geography, geo_sources, dyad_row):
    buenos_aires = capital(geo_sources, "Buenos Aires")
    rio = great_circle_km(*capital(geo_sources, "Rio de Janeiro"), *buenos_aires)
    brasilia = great_circle_km(*capital(geo_sources, "Brasilia"), *buenos_aires)
    assert 1930 < rio < 2010  # Rio-Buenos Aires, about 1,970 km
    assert np.isclose(dyad_row(geography, 140, 160, 1960)["capital_distance_km"], rio)
    assert np.isclose(dyad_row(geography, 140, 160, 1961)["capital_distance_km"], brasilia)


def test_vichy_is_the_french_capital_read_for_1941(geography, geo_sources, dyad_row):
    vichy_berlin = great_circle_km(*capital(geo_sources, "Vichy"), *capital(geo_sources, "Berlin"))
    assert np.isclose(dyad_row(geography, 220, 255, 1941)["capital_distance_km"], vichy_berlin)
    assert 860 < dyad_row(geography, 220, 255, 1940)["capital_distance_km"] < 900  # Paris-Berlin, 878 km


def test_capital_distance_is_missing_for_a_state_without_a_capital_in_t_minus_1(geography, dyad_row):
    # South Sudan's capital spell begins in 2011: unknown at the end of 2010
    assert np.isnan(dyad_row(geography, 625, 626, 2011)["capital_distance_km"])
    assert 1000 < dyad_row(geography, 625, 626, 2012)["capital_distance_km"] < 1300  # Khartoum-Juba
    assert geography.loc[geography["year"] == 1816, "capital_distance_km"].isna().all()


def test_haversine_is_a_great_circle_distance():
    assert np.isclose(great_circle_km(0.0, 0.0, 0.0, 180.0), np.pi * 6371.0088)
    assert great_circle_km(10.0, 20.0, 10.0, 20.0) == 0
    assert np.isnan(great_circle_km(np.nan, 0.0, 0.0, 0.0))


# --- region ----------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b, same", [
    (220, 255, 1),  # France, Germany: Europe
    (2, 20, 1),  # United States, Canada: Americas
    (2, 200, 0),  # United States, United Kingdom
    (651, 666, 1),  # Egypt, Israel: Middle East in COW's blocks
    (620, 651, 0),  # Libya (Africa) and Egypt (Middle East)
    (350, 640, 0),  # Greece (Europe) and Turkey (Middle East)
    (740, 900, 1),  # Japan, Australia: Asia and Oceania
])
def test_same_region_by_cow_code_blocks(geography, a, b, same, dyad_row):
    assert dyad_row(geography, a, b, 1990)["same_region"] == same


def test_same_region_is_time_invariant_and_never_missing(geography):
    assert geography["same_region"].notna().all()
    assert geography.groupby(["ccode1", "ccode2"])["same_region"].nunique().eq(1).all()


# --- the rules every feature obeys, for this family ----------------------------------------

@pytest.mark.parametrize("year", [1817, 1887, 1919, 1941, 1959, 1960, 1961, 1991, 2012, 2017, 2018, 2020, 2021])
def test_geography_of_year_t_uses_nothing_from_t_or_later(geo_sources, year, one_year, assert_same):
    dyads = one_year(year)
    full = feature_table(dyads, geo_sources, [FAMILY])
    cut = feature_table(dyads, cut_sources(geo_sources, year - 1), [FAMILY])
    assert_same(full, cut, f"year {year}")


@pytest.mark.parametrize("year", [1913, 1941, 1960, 2008])
def test_geography_does_not_depend_on_which_state_is_first_in_the_sources(geo_sources, year, one_year, swap_pairs,
                                                                         assert_same):
    swapped = Sources({k: swap_pairs(t) if "ccode1" in t else t for k, t in geo_sources.tables.items()},
                      geo_sources.coverage)
    dyads = one_year(year)
    assert_same(feature_table(dyads, geo_sources, [FAMILY]), feature_table(dyads, swapped, [FAMILY]), f"year {year}")


def test_geography_returns_one_float_row_per_dyad_year(universe, geography):
    assert len(geography) == len(universe)
    first = list(geography.columns).index(FAMILY.columns[0])  # the family's columns, together and in order
    assert list(geography.columns[first:first + len(FAMILY.columns)]) == FAMILY.columns
    assert all(pd.api.types.is_float_dtype(geography[c]) for c in FAMILY.columns)

"""Rules every feature obeys, checked for all families at once on the real data.

- Lagged: features of year t are identical when every source is cut at t-1 (all rows and
  spells after t-1 removed), i.e. nothing from year t or later is used.
- Symmetric: swapping ccode1/ccode2 (and every paired x1/x2 column) in the dyadic sources
  changes nothing.
- Coverage-aware: where none of a feature's sources covers t-1, the feature is missing.
- Declared once: every column is in the catalogue exactly once.
- Sources declared: a family sees only the sources it declares; reading another raises.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from foedus.features.catalogue import Family, catalogue_frame
from foedus.features.dyads import Dyads, Sources, UndeclaredSource
from foedus.features.families import FAMILIES
from foedus.features.table import feature_table, with_coverage
from foedus.features.vintage import cut_sources


def test_features_of_year_t_use_nothing_from_t_or_later(sources, sample_year, one_year, assert_same):
    dyads = one_year(sample_year)
    full = feature_table(dyads, sources, FAMILIES)
    cut = feature_table(dyads, cut_sources(sources, sample_year - 1), FAMILIES)
    # the coverage flags of t-1 are equal by construction; compare everything
    assert_same(full, cut, f"year {sample_year}")


@pytest.mark.parametrize("year", [1914, 1950, 1990, 2008])
def test_features_do_not_depend_on_which_state_is_first_in_the_sources(sources, year, one_year, swap_pairs,
                                                                       assert_same):
    swapped = Sources({k: swap_pairs(t) if "ccode1" in t else t for k, t in sources.tables.items()}, sources.coverage)
    dyads = one_year(year)
    assert_same(feature_table(dyads, sources, FAMILIES), feature_table(dyads, swapped, FAMILIES), f"year {year}")


@pytest.mark.parametrize("year", [1946, 1991, 2015])
def test_a_one_year_build_equals_the_full_build(sources, features, year, one_year, assert_same):
    part = feature_table(one_year(year), sources, FAMILIES)
    assert_same(part, features[features["year"] == year].reset_index(drop=True), f"year {year}")


def test_a_feature_is_missing_where_none_of_its_sources_covers_t_minus_1(features, sources):
    years = features["year"].to_numpy()
    for family in FAMILIES:
        for feat in family.features:
            if not feat.sources:
                continue
            uncovered = np.ones(len(features), dtype=bool)
            for key in feat.sources:
                uncovered &= ~sources.covers(key, years - 1)
            if uncovered.any():
                values = features.loc[uncovered, feat.name]
                assert values.isna().all(), f"{feat.name} has {values.notna().sum()} values where its sources end"


def test_every_column_is_declared_once_in_the_catalogue(features):
    catalogue = catalogue_frame(with_coverage(FAMILIES))
    assert not catalogue["name"].duplicated().any()
    assert list(features.columns) == ["ccode1", "ccode2", "year", *catalogue["name"]]
    assert catalogue["meaning"].str.len().gt(0).all()
    # lag 0 only for what is known in advance and read from no source (the era of t)
    assert ((catalogue["lag"] >= 1) | (catalogue["sources"] == "")).all()


def test_the_documented_catalogue_is_up_to_date(sources):
    from pathlib import Path

    from foedus.features.catalogue import catalogue_markdown
    from foedus.features.citations import source_citations

    docs = Path(__file__).resolve().parents[2] / "docs" / "features.md"
    expected = catalogue_markdown(with_coverage(FAMILIES), sources.coverage, source_citations()) + "\n"
    assert docs.read_text() == expected, "regenerate it: foedus features list --markdown docs/features.md"


def test_a_family_reads_only_the_sources_it_declares():
    nmc = pd.DataFrame({"ccode": [2, 200], "year": [1950, 1950], "cinc": [0.3, 0.1]})
    majors = pd.DataFrame({"ccode": [2], "year": [1950]})
    sources = Sources({"cow_nmc": nmc, "cow_majors": majors}, {"cow_nmc": (1816, 2016), "cow_majors": (1816, 2024)})
    dyads = Dyads([2], [200], [1951])

    def probe(read):
        family = Family("probe", ("cow_nmc",), "reads what a test tells it to")
        family.feature("value", "count", "a value", label="a value")
        family.compute(lambda dyads, seen: pd.DataFrame({"value": [float(read(seen))]}))
        return family

    assert probe(lambda seen: seen["cow_nmc"]["cinc"].sum())(dyads, sources)["value"].tolist() == [pytest.approx(0.4)]
    assert probe(lambda seen: seen.coverage["cow_nmc"][0])(dyads, sources)["value"].tolist() == [1816]
    assert probe(lambda seen: len(seen.tables))(dyads, sources)["value"].tolist() == [1]
    message = "family probe read source 'cow_majors' it does not declare"
    for undeclared in (lambda seen: len(seen["cow_majors"]), lambda seen: seen.coverage["cow_majors"][0],
                       lambda seen: seen.covers("cow_majors", np.array([1950])).sum(),
                       lambda seen: "cow_majors" in seen.tables):
        with pytest.raises(UndeclaredSource, match=message):
            probe(undeclared)(dyads, sources)
    # a declared source the build did not load is a different error
    with pytest.raises(KeyError, match="not loaded"):
        probe(lambda seen: len(seen["cow_nmc"]))(dyads, Sources({}, {}))


def test_the_table_is_the_same_on_one_thread_or_several(sources, one_year, assert_same):
    dyads = one_year(1950)
    one, several = (feature_table(dyads, sources, FAMILIES, workers=n) for n in (1, 3))
    assert list(one.columns) == list(several.columns)
    assert_same(one, several, "1950 on one thread and on three")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_family_that_fails_fails_the_table(sources, one_year, workers):
    broken = Family("broken", ("cow_nmc",), "reads a source it does not declare")
    broken.feature("value", "count", "a value", label="a value")
    broken.compute(lambda dyads, seen: pd.DataFrame({"value": seen["cow_majors"]["ccode"]}))
    with pytest.raises(UndeclaredSource, match="family broken read source 'cow_majors'"):
        feature_table(one_year(1950), sources, [*FAMILIES[:2], broken, *FAMILIES[2:]], workers=workers)

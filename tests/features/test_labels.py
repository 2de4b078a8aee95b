"""Alliance state and onset labels: hand-made cases for each rule, then the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state, coverage
from foedus.features.labels import LabelSpec, counts_by_era, label_dyad_years, labelled
from foedus.features.readers import load_source
from foedus.features.years import count_by_era
from foedus.infra.errors import InvalidInput
from foedus.jobs import labelled_universe

ATOP = ALLIANCE_SOURCES["atop"]


def atop_rows(*rows):
    """Directed ATOP rows: (ccode1, ccode2, year, defense, offense, neutral, nonagg, consul)."""
    cols = ["ccode1", "ccode2", "year", "atop_defense", "atop_offense", "atop_neutral", "atop_nonagg", "atop_consul"]
    return pd.DataFrame(rows, columns=cols)


def universe(pairs_years):
    return pd.DataFrame(pairs_years, columns=["ccode1", "ccode2", "year"])


def labels(u, directed, spec=LabelSpec(), years=None):
    return label_dyad_years(u, alliance_state(directed, ATOP), years or coverage(directed), spec)


# --- the coding rules, on hand-made tables --------------------------------------------------

def test_a_flag_in_either_direction_makes_the_pair_allied():
    directed = atop_rows((20, 2, 1900, 1, 0, 0, 0, 0), (2, 20, 1900, 0, 0, 0, 0, 1))
    state = alliance_state(directed, ATOP)
    assert state[["ccode1", "ccode2", "year"]].values.tolist() == [[2, 20, 1900]]
    row = state.iloc[0]
    assert row["any"] and row["defense"] and row["consultation"] and not row["offense"]


def test_a_row_with_no_obligation_is_not_an_alliance():
    directed = atop_rows((2, 20, 1900, 0, 0, 0, 0, 0), (20, 2, 1900, 0, 0, 0, 0, 0))
    assert alliance_state(directed, ATOP).empty


def test_an_alliance_recorded_before_the_pair_enters_or_returns_continues():
    # pair (100, 200): system dyad 1900-1902 and again 1905-1906, allied in every year 1899-1906:
    # the source records the alliance in each t-1, so it never begins (the record convention)
    u = universe([(100, 200, y) for y in (1900, 1901, 1902, 1905, 1906)])
    directed = atop_rows(*[(100, 200, y, 1, 0, 0, 0, 0) for y in range(1899, 1907)])
    out = labels(u, directed, years=(1899, 1906)).set_index("year")
    assert out["at_risk"].tolist() == [False] * 5
    assert out["onset"].tolist() == [False] * 5


def test_a_pair_entering_the_system_is_at_risk_unless_the_source_records_its_alliance():
    # (100, 200) enters in 1900, allied from 1900: an onset; (100, 300) enters in 1900 already
    # allied in 1899 (the record): not at risk, no onset
    u = universe([(100, 200, 1900), (100, 300, 1900)])
    directed = atop_rows((100, 200, 1900, 1, 0, 0, 0, 0), (100, 300, 1899, 1, 0, 0, 0, 0),
                         (100, 300, 1900, 1, 0, 0, 0, 0))
    out = labels(u, directed, years=(1899, 1906)).set_index("ccode2")
    assert out.loc[200, "at_risk"] == True and out.loc[200, "onset"] == True  # noqa: E712
    assert out.loc[300, "at_risk"] == False and out.loc[300, "onset"] == False  # noqa: E712


def test_an_alliance_that_lapses_makes_the_pair_at_risk_the_year_after():
    u = universe([(100, 200, y) for y in range(1900, 1905)])
    directed = atop_rows((100, 200, 1899, 1, 0, 0, 0, 0), (100, 200, 1900, 1, 0, 0, 0, 0),
                         (100, 200, 1903, 1, 0, 0, 0, 0))
    out = labels(u, directed, years=(1899, 1906)).set_index("year")
    assert out["at_risk"].tolist() == [False, False, True, True, False]  # 1900: allied in 1899
    assert out["onset"].tolist() == [False, False, False, True, False]


def test_years_past_the_source_coverage_are_missing_not_zero():
    u = universe([(100, 200, y) for y in (1901, 1902, 1903, 1904)])
    directed = atop_rows((100, 200, 1902, 0, 0, 0, 0, 1))
    out = labels(u, directed, years=(1900, 1902)).set_index("year")
    assert out.loc[1902, "onset"] == True  # noqa: E712
    assert pd.isna(out.loc[1903, "onset"]) and pd.isna(out.loc[1904, "onset"])
    assert out.loc[1903, "at_risk"] == False  # noqa: E712  (allied in 1902, which is covered)
    assert pd.isna(out.loc[1904, "at_risk"])  # t-1 = 1903 is past coverage


def test_horizon_looks_ahead_and_is_missing_when_the_window_leaves_coverage():
    u = universe([(100, 200, y) for y in range(1900, 1906)])
    directed = atop_rows((100, 200, 1903, 1, 0, 0, 0, 0))
    out = labels(u, directed, LabelSpec("atop", "any", 3), years=(1899, 1905)).set_index("year")
    assert out["onset"].tolist()[:4] == [False, True, True, True]
    assert out["onset"].isna().tolist()[4:] == [True, True]


def test_obligation_type_selects_the_flag():
    u = universe([(100, 200, 1901)])
    directed = atop_rows((100, 200, 1901, 0, 0, 0, 0, 1))
    assert labels(u, directed, LabelSpec("atop", "consultation"), years=(1899, 1905))["onset"].tolist() == [True]
    assert labels(u, directed, LabelSpec("atop", "defense"), years=(1899, 1905))["onset"].tolist() == [False]


@pytest.mark.parametrize(
    "text, expected",
    [("atop", LabelSpec()), ("atop:defense", LabelSpec("atop", "defense")), ("COW:any:5", LabelSpec("cow", "any", 5))],
)
def test_label_spec_parses(text, expected):
    assert LabelSpec.parse(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("ucdp:any:1", "unknown label source 'ucdp'"),
        ("atop:entente", "unknown obligation type 'entente' for atop"),
        ("cow:offense", "unknown obligation type 'offense' for cow"),
        ("atop:any:0", "horizon 0 must be"),
        ("atop:any:x", "horizon 'x' is not a whole number"),
        ("atop:any:1:2", "is not source"),
    ],
)
def test_bad_label_specs_are_refused(text, message):
    with pytest.raises(InvalidInput, match=message):
        LabelSpec.parse(text)


def test_labelled_rows_are_at_risk_with_a_known_onset_and_rates_count_only_those():
    table = pd.DataFrame({
        "year": [1816, 1913, 1914, 1950, 2024, 2024],
        "at_risk": pd.array([True, True, False, pd.NA, True, True], dtype="boolean"),
        "onset": pd.array([True, False, False, pd.NA, pd.NA, True], dtype="boolean"),
    })
    assert labelled(table).tolist() == [True, True, False, False, False, True]
    counts = counts_by_era(table)
    assert list(counts.index) == ["1816-1913", "1914-1945", "1946-1989", "1990-2024", "all"]
    assert counts[["dyad_years", "at_risk", "onsets", "onset_unknown"]].to_numpy().tolist() == [
        [2, 2, 1, 0], [1, 0, 0, 0], [1, 0, 0, 1], [2, 2, 1, 1], [6, 4, 2, 2]]
    rates = counts["onset_rate"].to_numpy()
    assert rates[0] == 0.5 and rates[3] == 1.0 and rates[4] == 2 / 3
    assert np.isnan(rates[1]) and np.isnan(rates[2])  # no at-risk dyad-year with a known onset: no rate, not 0


def test_counting_by_era_can_leave_out_eras_without_rows():
    years = np.array([1816, 1990, 1990])
    counts = count_by_era(years, {"rows": np.ones(3, dtype=bool), "late": years > 1900}, every_era=False)
    assert list(counts.index) == ["1816-1913", "1990-2024", "all"] and counts.index.name == "era"
    assert counts.to_numpy().tolist() == [[1, 0], [2, 2], [3, 2]] and (counts.dtypes == "int64").all()


# --- the real data -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def atop_any(paths):
    return labelled_universe("atop:any:1", paths=paths)


@pytest.fixture(scope="module")
def atop_defense(paths):
    return labelled_universe("atop:defense:1", paths=paths)


def test_atop_flags_are_directional_in_the_shipped_data(paths):
    directed = load_source("atop_alliance", paths)
    both = directed.merge(directed, left_on=["ccode1", "ccode2", "year"], right_on=["ccode2", "ccode1", "year"])
    assert len(both) == len(directed)  # every directed row has its reverse
    assert (both["atop_defense_x"] != both["atop_defense_y"]).sum() == 984
    flags = ["atop_defense", "atop_offense", "atop_neutral", "atop_nonagg", "atop_consul"]
    assert (directed[flags].sum(axis=1) == 0).sum() == 170


def test_universe_and_label_counts_match_the_independent_figures(atop_any, atop_defense):
    assert len(atop_any) == 1_107_465
    assert (atop_any["ccode1"] < atop_any["ccode2"]).all()
    assert not atop_any.duplicated(["ccode1", "ccode2", "year"]).any()
    to_2018 = atop_any[atop_any["year"] <= 2018]
    assert len(to_2018) == 993_975
    assert to_2018["at_risk"].sum() == 864_285
    assert to_2018["onset"].sum() == 5_320
    eras = counts_by_era(to_2018)["onsets"]
    assert eras[["1816-1913", "1914-1945", "1946-1989", "1990-2024"]].tolist() == [137, 828, 1_386, 2_969]
    d = atop_defense[atop_defense["year"] <= 2018]
    assert d["at_risk"].sum() == 927_531 and d["onset"].sum() == 2_677


def test_onsets_are_unknown_after_the_source_ends(atop_any, paths):
    assert atop_any.loc[atop_any["year"] <= 2018, "onset"].notna().all()
    assert atop_any.loc[atop_any["year"] > 2018, "onset"].isna().all()
    cow = labelled_universe("cow:any:1", paths=paths)
    assert cow.loc[cow["year"] > 2012, "onset"].isna().all()
    assert cow.loc[cow["year"].between(1817, 2012), "onset"].notna().all()
    # COW begins in 1816: whether a pair was allied in 1815 is unknown, so is its risk in 1816
    assert cow.loc[cow["year"] == 1816, "at_risk"].isna().all()


def pair(table, a, b):
    lo, hi = min(a, b), max(a, b)
    return table[(table["ccode1"] == lo) & (table["ccode2"] == hi)].set_index("year")


def test_united_states_and_united_kingdom(atop_any):
    # ATOP spells 1921-1931, 1942-1945 and 1949-2018.
    us_uk = pair(atop_any, 2, 200)
    assert us_uk.index[us_uk["onset"].fillna(False)].tolist() == [1921, 1942, 1949]
    assert us_uk.loc[1950, "at_risk"] == False  # noqa: E712
    assert us_uk.loc[1932, "at_risk"] == False  # noqa: E712  (allied in 1931)
    assert us_uk.loc[1933, "at_risk"] == True  # noqa: E712


def test_russia_and_china_2019(atop_any, atop_defense):
    # Allied through consultation from 1992: not at risk for any obligation, at risk for defense.
    assert pair(atop_any, 365, 710).loc[2019, "at_risk"] == False  # noqa: E712
    assert pair(atop_defense, 365, 710).loc[2019, "at_risk"] == True  # noqa: E712
    assert pair(atop_any, 365, 710).loc[1992, "onset"] == True  # noqa: E712


def test_united_kingdom_and_poland_do_not_begin_again_on_reentry(atop_any):
    uk_pl = pair(atop_any, 200, 290)
    assert 1940 not in uk_pl.index  # Poland out of the system 1940-1944
    # 1939: the guarantee. ATOP records the alliance through 1944, so Poland's first year back
    # (1945) continues it. A consultation pact 1962-1964 and non-aggression from 1975 are each
    # a new onset after a gap.
    assert uk_pl.loc[1945, "at_risk"] == False  # noqa: E712
    assert uk_pl.index[uk_pl["onset"].fillna(False)].tolist() == [1939, 1962, 1975]


def test_a_pair_allied_in_1815_is_not_at_risk_in_1816(atop_any, paths):
    allied = alliance_state(load_source("atop_alliance", paths), ATOP)
    in_1815 = allied[allied["year"] == 1815]
    assert len(in_1815)
    first = atop_any[atop_any["year"] == 1816].merge(in_1815[["ccode1", "ccode2"]], on=["ccode1", "ccode2"])
    assert len(first) and (first["at_risk"] == False).all()  # noqa: E712

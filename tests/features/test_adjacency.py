"""Per-year adjacency matrices, checked on small hand-made tables."""

import numpy as np
import pandas as pd
import pytest
from foedus.features import adjacency
from foedus.features.adjacency import (
    SystemMembers,
    YearMatrices,
    code_list,
    foe_matrices,
    positions,
    rival_matrices,
    spell_years,
    state_year_values,
    years_to_build,
)

# Four states: 2 (USA), 200 (UK), 255 (Germany), 365 (Russia)
CODES = code_list([2, 200], [255, 365])


def entry(matrix, a, b):
    i, j = positions(CODES, [a, b])
    return matrix[i, j]


def test_code_list_is_the_sorted_union_and_positions_find_each_code():
    assert CODES.tolist() == [2, 200, 255, 365]
    assert positions(CODES, [365, 2]).tolist() == [3, 0]
    with pytest.raises(ValueError):
        positions(CODES, [220])


def test_pairs_give_symmetric_matrices_with_an_empty_diagonal():
    m = YearMatrices.from_pairs([200, 255, 2, 2], [255, 200, 2, 365], [1914, 1914, 1914, 1950], CODES, 1914, 1916)
    at = m.at(1914)
    assert np.array_equal(at, at.T) and np.trace(at) == 0
    assert entry(at, 200, 255) == 1 and entry(at, 2, 365) == 0  # 1950 is outside 1914-1916
    assert at.sum() == 2  # one pair, both ways; the self-pair (2, 2) never counts
    assert m.covers(1916) and not m.covers(1917)
    with pytest.raises(KeyError):
        m.at(1913)


def test_windows_end_at_the_year_and_are_cut_at_the_first_year():
    # 200-255 related in 1914 and 1916; 2-255 in 1917
    m = YearMatrices.from_pairs([200, 200, 2], [255, 255, 255], [1914, 1916, 1917], CODES, 1914, 1920)
    assert entry(m.window(1916, 1), 200, 255) == 1
    assert entry(m.window(1915, 1), 200, 255) == 0
    assert entry(m.window(1915, 10), 200, 255) == 1  # cut at 1914, not an error
    assert entry(m.window(1920, 3), 200, 255) == 0 and entry(m.window(1920, 4), 2, 255) == 1
    assert set(np.unique(m.window(1920, 10))) == {0, 1}  # related or not, not a count of years


def test_common_neighbours_are_the_square_of_the_window_matrix():
    # UK and Russia both fought Germany; the USA fought Germany too; UK-Russia are foes themselves
    m = YearMatrices.from_pairs([200, 365, 2, 200], [255, 255, 255, 365], [1914] * 4, CODES, 1914, 1914)
    w = m.window(1914, 10)
    common = w @ w
    assert entry(common, 200, 365) == 1  # Germany only: neither 200 nor 365 counts itself
    assert entry(common, 2, 200) == 1 and entry(common, 2, 365) == 1
    assert entry(common, 200, 255) == 1  # Russia fought both
    assert entry(common, 2, 255) == 0  # foes of each other, but no state fought both


def test_last_year_is_the_latest_related_year_so_far():
    m = YearMatrices.from_pairs([200, 200], [255, 255], [1914, 1917], CODES, 1910, 1920)
    assert entry(m.last_year(1913), 200, 255) == -1
    assert entry(m.last_year(1916), 200, 255) == 1914
    assert entry(m.last_year(1920), 200, 255) == 1917


def test_foes_are_pairs_on_opposite_sides():
    mids = pd.DataFrame({"ccode1": [200, 200, 2], "ccode2": [255, 365, 255], "year": [1914] * 3,
                         "sidea1": [1, 0, 0], "sidea2": [0, 0, 1]})
    foes = foe_matrices(mids, CODES, 1914, 1914).at(1914)
    assert entry(foes, 200, 255) == 1 and entry(foes, 2, 255) == 1
    assert entry(foes, 200, 365) == 0  # same side: partners in the dispute, not foes


def test_spells_are_inclusive_and_merged_per_pair():
    years = spell_years([200, 255], [255, 200], [1900, 1904], [1905, 1907], 1890, 1906)
    assert sorted(years["year"]) == list(range(1900, 1907))  # each year once, clipped at 1906
    assert (years["ccode1"] == 200).all() and (years["ccode2"] == 255).all()
    spells = pd.DataFrame({"ccode1": [200], "ccode2": [255], "styear": [1900], "endyear": [1905]})
    rivals = rival_matrices(spells, "styear", "endyear", CODES, 1899, 1906)
    assert [entry(rivals.at(y), 255, 200) for y in (1899, 1900, 1905, 1906)] == [0, 1, 1, 0]


def test_state_year_values_put_each_state_in_its_column():
    nmc = pd.DataFrame({"ccode": [200, 255, 255, 999], "year": [1913, 1913, 1914, 1913], "cinc": [0.1, 0.2, 0.3, 0.9]})
    values = state_year_values(nmc, "cinc", CODES, 1913, 1914)
    assert values.shape == (2, 4)
    assert values[0, 1] == 0.1 and values[1, 2] == 0.3
    assert np.isnan(values[0, 0]) and np.isnan(values[1, 1])  # no row: missing; 999 ignored


def test_system_membership_reads_spells_and_the_open_end_of_the_cow_list():
    system = pd.DataFrame({
        "ccode": [2, 255, 255, 365],
        "start": pd.to_datetime(["1816-01-01", "1816-01-01", "1990-10-03", "1816-01-01"]),
        "end": pd.to_datetime(["2016-12-31", "1945-05-08", "2016-12-31", "2016-12-31"]),
    })
    members = SystemMembers(system, CODES)
    assert members.at(1815) is None  # before the COW list: unknown
    assert members.at(1945).tolist() == [True, False, True, True]  # 200 not listed
    assert members.at(1950).tolist() == [True, False, False, True]
    assert members.at(2020).tolist() == [True, False, True, True]  # still members
    assert members.at(2030).tolist() == [False, False, False, False]  # after every spell


def test_membership_of_every_year_matches_the_spells_read_one_year_at_a_time(sources):
    from foedus.features.readers.system import spell_last_years

    system = sources["cw_system"]
    codes = code_list(system["ccode"], [324, 999])  # two codes that are not COW states
    members = SystemMembers(system, codes)
    start, last = system["start"].dt.year.to_numpy(), spell_last_years(system["end"])
    for year in range(1816, 2027):
        listed = system.loc[(start <= year) & (last >= year), "ccode"].to_numpy()
        assert members.at(year).tolist() == np.isin(codes, listed).tolist(), year
    assert members.at(1815) is None


def test_threat_and_network_share_the_matrices_they_both_read(universe, sources, monkeypatch):
    from foedus.features.dyads import Sources
    from foedus.features.families import network, threat
    from foedus.features.table import feature_table

    made = []
    for name in ("foe_matrices", "rival_matrices", "SystemMembers"):
        make = getattr(adjacency, name)
        monkeypatch.setattr(adjacency, name, lambda *a, _make=make, _name=name: made.append(_name) or _make(*a))
    fresh = Sources(sources.tables, sources.coverage)  # a new build: nothing derived yet
    one_year = universe[universe["year"] == 1950].reset_index(drop=True)
    feature_table(one_year, fresh, [threat.FAMILY, network.FAMILY])
    # foes: GML (both families) and COW MIDs (threat); rivals: TD and TSS (both); members (both)
    assert sorted(made) == ["SystemMembers", "foe_matrices", "foe_matrices", "rival_matrices", "rival_matrices"]


def test_what_is_derived_from_a_source_is_made_once_and_only_for_who_declares_it():
    from foedus.features.dyads import Sources, UndeclaredSource

    sources = Sources({"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame({"x": [2]})}, {"a": (1, 2), "b": (1, 2)})
    calls = []
    make = lambda: calls.append(1) or len(calls)  # noqa: E731
    first, second = sources.only(["a"], "family one"), sources.only(["a", "b"], "family two")
    assert first.derived("a", ("sum",), make) == 1 and second.derived("a", ("sum",), make) == 1
    assert second.derived("a", ("other",), make) == 2 and len(calls) == 2
    with pytest.raises(UndeclaredSource, match="family one read source 'b'"):
        first.derived("b", ("sum",), make)


def test_years_to_build_stop_at_the_last_t_minus_1_and_reach_back_only_for_history():
    described = np.array([1950, 1951, 1990])
    assert years_to_build((1816, 2010), described, history=True) == (1816, 1989)
    assert years_to_build((1494, 2010), described, history=False) == (1949, 1989)
    assert years_to_build((1816, 1960), described, history=False) == (1949, 1960)

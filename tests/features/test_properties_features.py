"""Feature symmetry and the lag rule on random pairs and years of the real data.

Each example draws a few dyad-years of the real universe and builds their features twice (a
build of some dyad-years equals those rows of the full build: test_feature_rules), from the
real sources and from sources changed in a way that, by the rule, cannot matter:

- symmetry: in every dyadic source, the rows of a random set of pairs name the other state
  first (ccode1 and ccode2 swapped, and with them every column pair <x>1/<x>2, as the
  ``swap_pairs`` fixture does for whole tables);
- the lag rule: what the sources say about year t and later is removed (``cut_sources`` at
  t-1) or changed (rows of yearly tables dropped at random and their values shuffled among
  themselves, spells beginning in t or later dropped at random, spells running at the end of
  t-1 ended at a random date in t or later). Features of year t and earlier must not change.

A build takes about a second, so each property runs a few examples, each with many rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from foedus.features.dyads import Sources
from foedus.features.families import FAMILIES
from foedus.features.readers import READERS
from foedus.features.table import feature_table
from foedus.features.vintage import cut_sources
from foedus.features.years import FIRST_YEAR, LAST_YEAR
from hypothesis import Phase, given, note, settings
from hypothesis import strategies as st

# No shrinking: every example is two builds, and shrinking would take minutes; the falsifying
# example is printed as drawn (a few years, some pairs, a seed).
BUILDS = settings(max_examples=6, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate])
PAIRS_A_YEAR = 30
KEYS = {"ccode", "ccode1", "ccode2", "year", "dispnum"}  # what identifies a row: never shuffled
# any year alike (st.integers would favour the first years of the range)
any_year = st.sampled_from(range(FIRST_YEAR, LAST_YEAR + 1))


@dataclass(repr=False)
class RealData:
    """The real universe and sources, with where each year's rows are (the universe is sorted
    by year). Its repr is short: a falsifying example prints it."""

    universe: pd.DataFrame
    sources: Sources

    def __post_init__(self):
        year = self.universe["year"].to_numpy()
        cuts = np.flatnonzero(np.diff(year)) + 1
        self.rows = {int(year[a]): (int(a), int(b)) for a, b in zip([0, *cuts], [*cuts, len(year)])}
        # each dyadic table's rows numbered by their undirected pair (0..number of pairs - 1)
        self.pair_of_row = {}
        for key, table in self.sources.tables.items():
            if "ccode1" in table.columns:
                c1, c2 = table["ccode1"].to_numpy(np.int64), table["ccode2"].to_numpy(np.int64)
                self.pair_of_row[key] = np.unique(np.minimum(c1, c2) * 1000 + np.maximum(c1, c2),
                                                  return_inverse=True)[1]

    def __repr__(self) -> str:
        return "<the real universe and sources>"

    def year(self, year: int) -> pd.DataFrame:
        first, end = self.rows[year]
        return self.universe.iloc[first:end].reset_index(drop=True)


@pytest.fixture(scope="module")
def real(universe, sources) -> RealData:
    return RealData(universe, sources)


def draw_dyad_years(data, real: RealData, years) -> pd.DataFrame:
    """Up to ``PAIRS_A_YEAR`` random pairs of each of ``years``, sorted by year as a build wants."""
    parts = []
    for year in sorted(set(years)):
        first, end = real.rows[year]
        picks = data.draw(st.lists(st.integers(0, end - first - 1), min_size=1, max_size=PAIRS_A_YEAR, unique=True),
                          label=f"pairs of {year}")
        parts.append(real.universe.iloc[[first + i for i in sorted(picks)]])
    dyads = pd.concat(parts, ignore_index=True)
    note(f"dyad-years: {dyads.to_numpy().tolist()}")
    return dyads


def assert_unchanged(before: pd.DataFrame, after: pd.DataFrame, what: str) -> None:
    """Every feature of every row is the same (missing where missing), else the first difference."""
    assert before[["ccode1", "ccode2", "year"]].equals(after[["ccode1", "ccode2", "year"]])
    for column in before.columns[3:]:
        x, y = before[column].to_numpy(float), after[column].to_numpy(float)
        differs = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        if differs.any():
            i = int(np.flatnonzero(differs)[0])
            a, b, year = before.loc[i, ["ccode1", "ccode2", "year"]]
            raise AssertionError(f"{what}: {column} of {a}-{b} in {year} is {x[i]} from the real sources, {y[i]} "
                                 f"from the changed ones ({differs.sum()} of {len(x)} rows differ)")


# --- symmetry -------------------------------------------------------------------------------

def side_columns(columns) -> list[tuple[str, str]]:
    return [(c, c[:-1] + "2") for c in columns if c.endswith("1") and c[:-1] + "2" in columns]


def with_pairs_turned(real: RealData, rng: np.random.Generator, share: float) -> tuple[Sources, dict[str, int]]:
    """The real sources, whose dyadic tables name the other state first in every row of a
    random ``share`` of their pairs; and how many rows each table turned."""
    tables, turned = dict(real.sources.tables), {}
    for key, pair_of_row in real.pair_of_row.items():
        table = tables[key]
        turn = (rng.random(pair_of_row.max() + 1) < share)[pair_of_row]
        out = table.copy()
        for one, two in side_columns(table.columns):
            out[one], out[two] = table[one].where(~turn, table[two]), table[two].where(~turn, table[one])
        tables[key], turned[key] = out, int(turn.sum())
    return Sources(tables, real.sources.coverage), turned


@BUILDS
@given(data=st.data(), years=st.lists(any_year, min_size=1, max_size=3),
       seed=st.integers(0, 2**32 - 1), share=st.floats(0.2, 1.0))
def test_features_do_not_depend_on_which_state_a_source_row_names_first(real, data, years, seed, share):
    dyads = draw_dyad_years(data, real, years)
    turned_sources, turned = with_pairs_turned(real, np.random.default_rng(seed), share)
    note(f"rows turned per source: {turned}")
    assert sum(turned.values()) > 0
    assert_unchanged(feature_table(dyads, real.sources, FAMILIES), feature_table(dyads, turned_sources, FAMILIES),
                     f"pairs turned in {share:.0%} of the source pairs")


# --- the lag rule ---------------------------------------------------------------------------

def year_of(values: pd.Series) -> np.ndarray:
    return (values.dt.year if pd.api.types.is_datetime64_any_dtype(values) else values).to_numpy(float)


def change_rows(table: pd.DataFrame, year: int, rng: np.random.Generator, drop: float) -> pd.DataFrame:
    """A yearly table whose rows of ``year`` and later are dropped (a ``drop`` share) or
    have their values shuffled among themselves."""
    later = table["year"].to_numpy() >= year
    keep = ~later | (rng.random(len(table)) >= drop)
    out, later = table[keep].copy(), later[keep]
    if later.any():
        for column in out.columns:
            if column not in KEYS and isinstance(out[column].dtype, np.dtype) and out[column].dtype.kind in "biuf":
                values = out[column].to_numpy(copy=True)
                values[later] = rng.permutation(values[later])
                out[column] = values
    return out


def change_spells(table: pd.DataFrame, start: str, end: str, year: int, rng: np.random.Generator,
                  drop: float) -> pd.DataFrame:
    """A spell table whose spells beginning in ``year`` or later are dropped (a ``drop``
    share), and whose spells running at the end of ``year - 1`` end at a random date from 1
    January of ``year`` to their own end (earlier, never later: a state's next capital, say,
    must not overlap it)."""
    begins = year_of(table[start])
    out = table[(begins < year) | (rng.random(len(table)) >= drop)].copy()
    running = (year_of(out[start]) < year) & (year_of(out[end]) >= year)
    if running.any():
        values = out[end].to_numpy(copy=True)
        if values.dtype.kind == "M":
            first = np.datetime64(f"{year}-01-01", "D")
            room = (values[running].astype("datetime64[D]") - first).astype(np.int64)
            days = np.floor(rng.random(len(room)) * (room + 1)).astype(np.int64)
            values[running] = (first + days.astype("timedelta64[D]")).astype(values.dtype)
            out[end] = values
            for part in ("year", "month", "day"):  # COW's majors also give the end date in parts
                if f"end{part}" in out.columns:
                    out[f"end{part}"] = getattr(out[end].dt, part).astype(out[f"end{part}"].dtype)
        else:
            room = values[running] - year
            values[running] = year + np.floor(rng.random(len(room)) * (room + 1)).astype(values.dtype)
            out[end] = values
    return out


def changed_from(sources: Sources, year: int, rng: np.random.Generator, drop: float) -> Sources:
    """``sources`` with what they say about ``year`` and later changed; coverage kept."""
    tables = {}
    for key, table in sources.tables.items():
        columns = READERS[key].years
        if columns == ("year",):
            tables[key] = change_rows(table, year, rng, drop)
        elif len(columns) == 2:
            tables[key] = change_spells(table, *columns, year, rng, drop)
        else:
            tables[key] = table
    return Sources(tables, sources.coverage)


@BUILDS
@given(data=st.data(), year=any_year.filter(lambda year: year > FIRST_YEAR),
       earlier=st.lists(st.integers(1, 12), max_size=2), how=st.sampled_from(["cut", "changed"]),
       seed=st.integers(0, 2**32 - 1), drop=st.sampled_from([0.0, 0.5, 1.0]))
def test_features_of_year_t_and_before_ignore_what_the_sources_say_about_t_and_later(
        real, data, year, earlier, how, seed, drop):
    years = [year] + [year - k for k in earlier if year - k >= FIRST_YEAR]
    dyads = draw_dyad_years(data, real, years)
    sources = real.sources
    if how == "cut":
        later = cut_sources(sources, year - 1)
    else:
        later = changed_from(sources, year, np.random.default_rng(seed), drop)
    assert_unchanged(feature_table(dyads, sources, FAMILIES), feature_table(dyads, later, FAMILIES),
                     f"sources {how} from {year}")


@pytest.mark.parametrize("year", [1914, 1990])
def test_the_changes_reach_the_features_of_the_next_year(real, year):
    # the lag test could pass by changing nothing that matters: the same change must reach
    # year t+1, which reads year t
    dyads, sources = real.year(year + 1), real.sources
    changed = changed_from(sources, year, np.random.default_rng(0), 0.5)
    before, after = feature_table(dyads, sources, FAMILIES), feature_table(dyads, changed, FAMILIES)
    differ = [c for c in before.columns[3:]
              if not np.array_equal(before[c].to_numpy(), after[c].to_numpy(), equal_nan=True)]
    for family in ("capability", "regime", "threat", "network", "system"):
        columns = next(f.columns for f in FAMILIES if f.name == family)
        assert set(columns) & set(differ), f"changing {year} changed no {family} feature of {year + 1}"

"""Shared fixtures: the real raw data, fetched and verified once per session into a temp dir.

The tests use the same real data as users (../shared/data beside the checkout, or
FOEDUS_MIRROR). If it is absent the session fails: data tests are never silently skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from foedus.infra.config import Paths

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    folder = Path(os.environ.get("FOEDUS_MIRROR") or ROOT / "../shared/data").resolve()
    if not (folder / "SHA256SUMS").is_file():
        pytest.fail(f"the raw data mirror {folder} is missing: put ../shared beside the checkout or set FOEDUS_MIRROR")
    return folder


@pytest.fixture(scope="session")
def paths(tmp_path_factory, mirror) -> Paths:
    """Project paths whose data folder is a session temp dir holding verified raw data."""
    from foedus.jobs import fetch_data

    data = tmp_path_factory.mktemp("data")
    saved = {k: os.environ.get(k) for k in ("FOEDUS_HOME", "FOEDUS_DATA_DIR", "FOEDUS_MIRROR")}
    os.environ.update(FOEDUS_HOME=str(ROOT), FOEDUS_DATA_DIR=str(data), FOEDUS_MIRROR=str(mirror))
    found = Paths.discover()
    fetch_data(paths=found, show_progress=False)
    yield found
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def built(paths, tmp_path_factory):
    """``built(spec, for_year=None, years=None)``: the build of ``spec`` (of ``years``, a
    (first, last) pair, if given; else all) in the session's data folder (its Parquet path and
    provenance), computed once per session whichever worker asks first (tests/shared_once.py)."""
    from tests.shared_once import shared_build

    return lambda spec, for_year=None, years=None: shared_build(tmp_path_factory, paths, spec, for_year, years)


@pytest.fixture(scope="session")
def registry(paths):
    from foedus.features.states import load_registry

    return load_registry(paths)


@pytest.fixture(scope="session")
def universe(paths):
    """The undirected dyad-years 1816-2024 (sorted by year)."""
    from foedus.features.readers import load_source
    from foedus.features.universe import dyad_years

    return dyad_years(load_source("cow_ddy", paths))


@pytest.fixture(scope="session")
def sources(paths):
    """Every source any feature family reads, with coverage."""
    from foedus.features.families import FAMILIES
    from foedus.features.table import load_sources, sources_of

    return load_sources(sources_of(FAMILIES), paths)


@pytest.fixture(scope="session")
def features(universe, sources):
    """The full feature table on the real data (all families, 1816-2024)."""
    from foedus.features.families import FAMILIES
    from foedus.features.table import feature_table

    return feature_table(universe, sources, FAMILIES)


# --- helpers shared by the feature tests, as fixtures ----------------------------------------

# Years the lag rule is checked in: the first year, turns of eras, the last years of sources.
SAMPLE_YEARS = [1817, 1870, 1914, 1939, 1946, 1962, 1990, 2005, 2011, 2012, 2015, 2019]


@pytest.fixture(params=SAMPLE_YEARS, ids=str)
def sample_year(request) -> int:
    """Each of ``SAMPLE_YEARS`` in turn."""
    return request.param


@pytest.fixture(scope="session")
def one_year(universe):
    """``one_year(year)``: the universe's dyad-years of ``year`` alone."""
    return lambda year: universe[universe["year"] == year].reset_index(drop=True)


def _dyad_row(table, a: int, b: int, year: int):
    lo, hi = min(a, b), max(a, b)
    rows = table[(table["ccode1"] == lo) & (table["ccode2"] == hi) & (table["year"] == year)]
    assert len(rows) == 1, f"expected one row for {a}-{b} {year}, found {len(rows)}"
    return rows.iloc[0]


@pytest.fixture(scope="session")
def dyad_row():
    """``dyad_row(table, a, b, year)``: the row of the undirected pair (a, b) in ``year``."""
    return _dyad_row


def _assert_same(a, b, what: str):
    for col in a.columns:
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        assert same.all(), f"{what}: {col} differs in {(~same).sum()} rows, e.g. {x[~same][:3]} vs {y[~same][:3]}"


@pytest.fixture(scope="session")
def assert_same():
    """``assert_same(a, b, what)``: two feature tables hold the same values, missing where missing."""
    return _assert_same


def _swap_pairs(table):
    renames = {}
    for col in table.columns:
        if col.endswith("1") and col[:-1] + "2" in table.columns:
            renames[col], renames[col[:-1] + "2"] = col[:-1] + "2", col
    return table.rename(columns=renames)[list(table.columns)]


@pytest.fixture(scope="session")
def swap_pairs():
    """``swap_pairs(table)``: swap ccode1/ccode2 and every column pair named <x>1/<x>2."""
    return _swap_pairs


@pytest.fixture(scope="session")
def small_table(paths):
    """The feature table with ATOP any-obligation labels for 1946-1991, built in memory."""
    from foedus.jobs import build

    return build("atop:any:1", 1946, 1991, paths=paths, write=False).table

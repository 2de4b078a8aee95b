"""Shared fixtures: the real raw data, fetched and verified once per session into a temp dir.

The tests use the same real data as users (../shared/data beside the checkout, or
FOEDUS_MIRROR). If it is absent the session fails: data tests are never silently skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from foedus.features.config import Paths

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


def dyad_row(table, a: int, b: int, year: int):
    """The row of the undirected pair (a, b) in ``year``."""
    lo, hi = min(a, b), max(a, b)
    rows = table[(table["ccode1"] == lo) & (table["ccode2"] == hi) & (table["year"] == year)]
    assert len(rows) == 1, f"expected one row for {a}-{b} {year}, found {len(rows)}"
    return rows.iloc[0]

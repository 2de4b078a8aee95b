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

"""foedus.build: the feature table with labels, its sidecar, and reuse of identical builds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from foedus.features.catalogue import catalogue_frame
from foedus.features.families import FAMILIES
from foedus.features.table import with_coverage
from foedus.infra.config import Paths
from foedus.jobs import build


@pytest.fixture
def own_paths(tmp_path, paths):
    data = tmp_path / "data"
    shutil.copytree(paths.raw, data / "raw")
    return Paths(root=paths.root, data=data, mirror=paths.mirror)


def test_build_writes_features_labels_and_a_sidecar(own_paths):
    result = build("atop:any:1", 1946, 1950, paths=own_paths)
    names = list(catalogue_frame(with_coverage(FAMILIES))["name"])
    assert list(result.table.columns) == ["ccode1", "ccode2", "year", "at_risk", "onset", *names]
    assert result.table["year"].between(1946, 1950).all() and not result.reused
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar["label_spec"] == "atop:any:1" and sidecar["rows"] == len(result.table)
    assert [row["name"] for row in sidecar["catalogue"]] == names
    assert set(sidecar["sources"]) >= {"cow_ddy", "atop_alliance", "cow_nmc"}
    assert sidecar["code"]["foedus_version"] and sidecar["code"]["source_digest"]
    # what a caller keeps once the table is used (the main job): its shape and path, not the table
    kept = result.released()
    assert kept.table is None and kept.shape == result.table.shape and kept.path == result.path


def test_an_identical_build_is_reused_and_a_changed_one_is_not(own_paths):
    first = build("atop:any:1", 1946, 1950, paths=own_paths)
    mtime = first.path.stat().st_mtime_ns
    again = build("atop:any:1", 1946, 1950, paths=own_paths)
    assert again.reused and again.path.stat().st_mtime_ns == mtime
    assert again.table.equals(first.table)
    # read back a column per block (row selections on pandas' one joined block were 13 times slower)
    assert again.table._mgr.nblocks == again.table.shape[1]
    pd.testing.assert_frame_equal(again.table, pd.read_parquet(first.path))
    other = build("atop:defense:1", 1946, 1950, paths=own_paths)
    assert not other.reused and other.path != first.path
    forced = build("atop:any:1", 1946, 1950, force=True, paths=own_paths)
    assert not forced.reused and forced.table.equals(first.table)  # reproducible


def test_a_build_without_its_sidecar_is_not_reused(own_paths):
    first = build("atop:any:1", 1946, 1947, paths=own_paths)
    first.path.with_suffix(".json").unlink()
    assert not build("atop:any:1", 1946, 1947, paths=own_paths).reused


def test_cite_reads_the_sources_of_the_build_and_the_spec_gives_the_same_list(own_paths):
    from foedus.features.citations import citations_for
    from foedus.jobs import cite

    before = cite("atop:any:1", first=1946, last=1947, paths=own_paths)
    assert "not built yet" in before.origin
    built = build("atop:any:1", 1946, 1947, paths=own_paths)
    sidecar = json.loads(built.path.with_suffix(".json").read_text())
    after = cite("atop:any:1", first=1946, last=1947, paths=own_paths)
    assert "sidecar" in after.origin and after.sources == list(sidecar["sources"])
    # the list computed without building is the one the build records
    assert before.sources == after.sources
    assert after.references == citations_for(sidecar["sources"], own_paths)


def test_the_build_lives_in_features_and_loads_neither_models_nor_the_cli():
    code = ("import sys, foedus.features.build; "
            "print([m for m in ('foedus.models', 'foedus.cli', 'foedus.jobs', 'mlflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import foedus
    import foedus.features.build as features_build

    assert foedus.build is features_build.build and foedus.BuildResult is features_build.BuildResult

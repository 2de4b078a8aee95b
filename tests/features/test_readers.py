"""Readers: every source reads into a typed table; the cache is keyed by the raw checksum."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil

import pandas as pd
import pyreadr
import pytest
from foedus.features.manifest import load_manifest
from foedus.features.readers import READERS, core, load_source, source_years
from foedus.infra.errors import DataError

# What the data README and the sources themselves say each file covers.
COVERAGE = {
    "cow_ddy": (1816, 2024), "atop_alliance": (1815, 2018), "cow_alliance": (1816, 2012),
    "cow_nmc": (1816, 2022), "cw_democracy": (1816, 2025), "gml_mid_ddydisps": (1816, 2010),
    "cow_mid_ddydisps": (1816, 2014), "cow_mindist": (1886, 2019), "cow_igo_ndy": (1816, 2014),
    "cow_trade_sy": (1870, 2014), "terrthreat": (1816, 2010), "creg": (1945, 2013),
}


def test_every_manifest_source_has_a_documented_reader(paths):
    manifest = load_manifest(paths.manifest)
    assert set(READERS) == set(manifest)
    for reader in READERS.values():
        assert reader.summary, f"reader {reader.key} has no docstring"


def test_all_sources_read_with_cow_codes_and_years_as_integers(paths):
    for key in READERS:
        table = load_source(key, paths)
        assert len(table) > 0, key
        for col in ("ccode", "ccode1", "ccode2", "year", "member"):
            if col in table:
                assert pd.api.types.is_integer_dtype(table[col]), f"{key}.{col} is {table[col].dtype}"
                assert table[col].notna().all(), f"{key}.{col} has missing codes"


def test_years_covered_match_the_documented_coverage(paths):
    for key, span in COVERAGE.items():
        assert source_years(key, load_source(key, paths)) == span, key


def test_dates_are_dates_and_sentinels_are_missing(paths):
    system = load_source("cw_system", paths)
    assert pd.api.types.is_datetime64_any_dtype(system["start"])
    poland = system[system["ccode"] == 290].sort_values("start")
    assert [d.date().isoformat() for d in poland["start"]] == ["1918-11-03", "1945-06-28"]
    contdir = load_source("cow_contdir", paths)
    assert pd.api.types.is_datetime64_any_dtype(contdir["stdate"])
    part = load_source("gml_part", paths)
    assert part["stday"].isna().sum() > 0 and (part["stday"].dropna() >= 1).all()  # -9 = unknown day
    mids = load_source("gml_mid_ddydisps", paths)
    assert not (mids["fatality"] == -9).any()
    atop = load_source("atop_alliance", paths)
    assert atop["atop_defense"].dtype == "int8"


def test_the_cache_is_keyed_by_the_raw_checksum_and_reused(paths, monkeypatch):
    key = "cow_majors"
    source = load_manifest(paths.manifest)[key]
    load_source(key, paths)
    # named by the raw file's checksum, then the cache's own
    [cached] = paths.interim.glob(f"{key}.{source.sha256[:16]}.v{core.READER_VERSION}.*.parquet")
    assert cached.name.split(".")[3] == hashlib.sha256(cached.read_bytes()).hexdigest()[:16]
    core._memo.clear()

    def fail(path):
        raise AssertionError("the raw file was re-read although the cache is valid")

    monkeypatch.setitem(READERS, key, dataclasses.replace(READERS[key], read=fail))
    assert len(load_source(key, paths)) == 14


def _project_with(tmp_path, paths, key: str, raw_file) -> core.Paths:
    """A project whose manifest lists only ``key``, pinned to ``raw_file``'s checksum."""
    source = load_manifest(paths.manifest)[key]
    project = tmp_path / "project"
    target = project / "data" / "raw" / source.path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw_file, target)
    entry = dataclasses.asdict(dataclasses.replace(source, sha256=hashlib.sha256(target.read_bytes()).hexdigest()))
    entry.pop("key")
    cite = entry.pop("cite")
    cited = ", ".join(f'"{c}"' for c in cite)
    lines = [f"[sources.{key}]", *(f'{k} = "{v}"' for k, v in entry.items()), f"cite = [{cited}]"]
    # the references the source cites, as the real manifest has them
    references = paths.manifest.read_text().split("\n[references.", 1)[1]
    (project / "data" / "sources.toml").write_text("\n".join(lines) + "\n\n[references." + references)
    return core.Paths(root=project, data=project / "data", mirror=paths.mirror)


def test_a_changed_source_is_re_read(tmp_path, paths):
    original = paths.raw / "peacesciencer/cow_majors.rda"
    edited = tmp_path / "edited.rda"
    majors = load_source("cow_majors", paths)
    pyreadr.write_rdata(str(edited), pyreadr.read_r(str(original))["cow_majors"].iloc[:-1], df_name="cow_majors")

    first = load_source("cow_majors", _project_with(tmp_path, paths, "cow_majors", edited))
    assert len(first) == len(majors) - 1
    again = _project_with(tmp_path, paths, "cow_majors", original)
    assert len(load_source("cow_majors", again)) == len(majors)
    cached = list(again.interim.glob("cow_majors.*.parquet"))
    assert [p.name.split(".")[1] for p in cached] == [load_manifest(paths.manifest)["cow_majors"].sha256[:16]]


def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path, paths):
    garbage = tmp_path / "garbage.rda"
    garbage.write_bytes(b"this is not an R data file")
    broken = _project_with(tmp_path, paths, "cow_majors", garbage)
    with pytest.raises(DataError, match=r"cannot read raw file .*cow_majors.rda .*foedus data fetch"):
        load_source("cow_majors", broken)
    assert not broken.interim.exists() or not list(broken.interim.iterdir())


def test_missing_and_corrupted_raw_files_are_data_errors(tmp_path, paths):
    broken = _project_with(tmp_path, paths, "cow_majors", paths.raw / "peacesciencer/cow_majors.rda")
    raw = broken.raw / "peacesciencer/cow_majors.rda"
    raw.write_bytes(raw.read_bytes()[:-1] + b"x")
    with pytest.raises(DataError, match=r"cow_majors.rda fails its checksum.*foedus data fetch"):
        load_source("cow_majors", broken)
    raw.unlink()
    with pytest.raises(DataError, match=r"cow_majors.rda is missing: run `foedus data fetch`"):
        load_source("cow_majors", broken)

"""Damaged caches and builds are found by their checksums, said in one line and rebuilt, never used.

A cache under data/interim carries its SHA-256 in its name; a built table's sidecar records the
table's SHA-256 and size. Each way a file gets damaged on a disk (cut short, one byte changed,
overwritten) is tried on the real data.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess

import pandas as pd
import pytest
from foedus.features.build import build, ensure_built
from foedus.features.readers import core, load_source
from foedus.infra.atomic import checksummed_ok, remove_unfinished
from foedus.infra.config import Paths


def cut_short(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def one_byte_changed(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte, mid-file: the size stays the same
    path.write_bytes(bytes(data))


def overwritten(path):
    path.write_bytes(b"PAR1" + b"\0" * 100 + b"PAR1")


def emptied(path):
    path.write_bytes(b"")


DAMAGE = [cut_short, one_byte_changed, overwritten, emptied]


@pytest.fixture
def own_paths(tmp_path, paths):
    data = tmp_path / "data"
    shutil.copytree(paths.raw, data / "raw")
    return Paths(root=paths.root, data=data, mirror=paths.mirror)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("foedus")]


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_interim_cache_is_deleted_and_the_raw_file_read_again(own_paths, caplog, damage):
    # COW major powers: 14 spells (the United States, the United Kingdom, France, ...)
    majors = load_source("cow_majors", own_paths)
    [cache] = own_paths.interim.glob("cow_majors.*.parquet")
    assert checksummed_ok(cache, cache.read_bytes())
    damage(cache)
    assert not checksummed_ok(cache, cache.read_bytes())
    core._memo.clear()  # as a new process would: from the disk
    with caplog.at_level(logging.WARNING):
        again = load_source("cow_majors", own_paths)
    pd.testing.assert_frame_equal(again, majors)
    [message] = _warnings(caplog)
    assert str(cache) in message and "damaged" in message and "reading the raw file again" in message
    assert "\n" not in message
    [rewritten] = own_paths.interim.glob("cow_majors.*.parquet")
    assert rewritten == cache and checksummed_ok(rewritten, rewritten.read_bytes())


def test_a_cache_is_never_used_when_its_bytes_do_not_match_its_name(own_paths, monkeypatch):
    """A readable Parquet file of the wrong content (another source's table under this name)
    is refused too: the checksum, not readability, decides."""
    load_source("cow_majors", own_paths)
    load_source("cw_system", own_paths)
    [majors] = own_paths.interim.glob("cow_majors.*.parquet")
    [system] = own_paths.interim.glob("cw_system.*.parquet")
    shutil.copyfile(system, majors)
    core._memo.clear()
    read = []
    original = core.READERS["cow_majors"]
    monkeypatch.setitem(core.READERS, "cow_majors",
                        dataclasses.replace(original, read=lambda raw: read.append(raw) or original.read(raw)))
    assert len(load_source("cow_majors", own_paths)) == 14 and len(read) == 1


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: no process has this pid now
    return child.pid


def test_only_a_dead_writers_leftover_is_removed(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        dead = tmp_path / f".table.parquet.{_dead_pid()}.0badc0de.part"
        alive = tmp_path / f".table.parquet.{sleeper.pid}.0badc0de.part"
        mine = tmp_path / f".table.parquet.{os.getpid()}.0badc0de.part"
        other = tmp_path / ".table.parquet.abc123.part"  # not named by foedus: not ours to remove
        for path in (dead, alive, mine, other):
            path.write_bytes(b"half a table")
        assert remove_unfinished(tmp_path) == [dead]
        assert not dead.exists() and alive.exists() and mine.exists() and other.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def _consistent(path) -> bool:
    sidecar = json.loads(path.with_suffix(".json").read_text())
    from foedus.infra.atomic import sha256_of

    return sidecar["table"] == {"sha256": sha256_of(path), "bytes": path.stat().st_size}


@pytest.fixture(scope="module")
def built(tmp_path_factory, paths):
    """A labels-only build of ATOP any 1946-1991, and a pristine copy of its table and sidecar."""
    data = tmp_path_factory.mktemp("built") / "data"
    shutil.copytree(paths.raw, data / "raw")
    own = Paths(root=paths.root, data=data, mirror=paths.mirror)
    result = build("atop:any:1", 1946, 1991, labels_only=True, paths=own)
    pristine = data / "pristine"
    pristine.mkdir()
    for path in (result.path, result.path.with_suffix(".json")):
        shutil.copyfile(path, pristine / path.name)
    return own, result


def _restore(own, result):
    for name in (result.path.name, result.path.with_suffix(".json").name):
        shutil.copyfile(own.data / "pristine" / name, result.path.parent / name)


def _rebuild_saying(own, result, caplog, *fragments):
    with caplog.at_level(logging.WARNING):
        again = build("atop:any:1", 1946, 1991, labels_only=True, paths=own)
    assert not again.reused
    [message] = _warnings(caplog)
    for fragment in fragments:
        assert fragment in message, message
    assert _consistent(again.path)
    pd.testing.assert_frame_equal(again.table, result.table)
    return again


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda d: d.__name__)
def test_a_damaged_table_does_not_match_its_sidecar_and_is_rebuilt(built, caplog, damage):
    own, result = built
    _restore(own, result)
    assert build("atop:any:1", 1946, 1991, labels_only=True, paths=own).reused  # intact: reused
    damage(result.path)
    _rebuild_saying(own, result, caplog, str(result.path), "does not match its sidecar", "rebuilding")


def test_a_sidecar_recording_another_table_is_not_trusted(built, caplog):
    own, result = built
    _restore(own, result)
    sidecar = result.path.with_suffix(".json")
    provenance = json.loads(sidecar.read_text())
    provenance["table"]["sha256"] = "0" * 64  # the size still matches
    sidecar.write_text(json.dumps(provenance))
    _rebuild_saying(own, result, caplog, "does not match its sidecar", "SHA-256", "rebuilding")


@pytest.mark.parametrize("damage", [cut_short, overwritten, emptied], ids=lambda d: d.__name__)
def test_an_unreadable_sidecar_is_rebuilt(built, caplog, damage):
    own, result = built
    _restore(own, result)
    damage(result.path.with_suffix(".json"))
    _rebuild_saying(own, result, caplog, "sidecar", "unreadable", "rebuilding")


def test_a_table_without_its_sidecar_is_an_unfinished_build(built, caplog):
    own, result = built
    _restore(own, result)
    result.path.with_suffix(".json").unlink()
    _rebuild_saying(own, result, caplog, str(result.path), "did not finish", "rebuilding")


def test_scoring_s_table_is_verified_before_it_is_used(own_paths, caplog):
    """ensure_built (what score, rank and threats read the table through) rebuilds a damaged table."""
    path, provenance = ensure_built("atop:defense:1", paths=own_paths)
    assert _consistent(path)
    one_byte_changed(path)
    with caplog.at_level(logging.WARNING):
        again, rebuilt = ensure_built("atop:defense:1", paths=own_paths)
    [message] = _warnings(caplog)  # said once, though both ensure_built and build check
    assert "does not match its sidecar" in message and again == path
    assert _consistent(path) and rebuilt["build_key"] == provenance["build_key"]
    assert rebuilt["table"] == provenance["table"]  # the same table again, byte for byte

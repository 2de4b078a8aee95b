"""foedus build under faults: a damaged raw file, cache or table, a full or read-only output
folder (foedus run in this process: the fault is the point, not the process), two builds at
once and SIGKILL at named points of the build (real subprocesses).

After each: one line on stderr saying what and what to do, exit code 2 for an error the user
must fix, no partial file at any target, the previous outputs intact and readable, and the
next invocation finds what was left unfinished and completes it.

The labels-only table (ATOP any, 1816-2024: 1,107,465 rows, five row groups) takes the same
code path as the full build (the lock, the reuse check, the row-group writer, the sidecar)
in about two seconds instead of several.
"""

from __future__ import annotations

import fcntl
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from foedus.features.build import build
from foedus.infra.atomic import sha256_of
from foedus.infra.config import Paths

from tests.pipelines.cli_helpers import ROOT, assert_user_error, foedus, foedus_here

LABELS = "labels_atop_any_h1"
ROWS = 1_107_465  # ATOP any, 1816-2024 (tests/pipelines/test_cli.py checks the defense table's count)


@pytest.fixture
def project(tmp_path, paths):
    """A data folder of its own with verified raw files; ``env`` runs foedus on it."""
    data = tmp_path / "data"
    shutil.copytree(paths.raw, data / "raw")
    env = {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(data), "FOEDUS_MIRROR": str(tmp_path / "no-mirror")}
    return {"data": data, "env": env, "paths": Paths(root=paths.root, data=data, mirror=paths.mirror),
            "table": data / "processed" / f"{LABELS}.parquet", "sidecar": data / "processed" / f"{LABELS}.json"}


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_consistent(table: Path) -> dict:
    """The table is a whole Parquet file matching its sidecar's checksum, size and row count."""
    sidecar = json.loads(table.with_suffix(".json").read_text())
    assert sidecar["table"] == {"sha256": sha256_of(table), "bytes": table.stat().st_size}
    assert pq.read_table(table).num_rows == sidecar["rows"] == ROWS
    return sidecar


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part"))


@contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False):
    """A tmpfs of ``size`` mounted at ``where`` (root may write anywhere but on a read-only or
    full filesystem, so the faults are real ones); unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.fail(f"these tests need to mount a tmpfs (a real full or read-only folder) and `mount` failed: "
                    f"{mounted.stderr.strip()} (run them as root in a container that allows mount)")
    try:
        yield where
    finally:
        # another process walking the folder (a concurrent pytest pruning old temporary folders)
        # can keep it busy for a moment; a lazy unmount then detaches it as soon as it is free
        for _ in range(20):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
                break
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", str(where)], check=True)


# --- damaged inputs -----------------------------------------------------------------------


def test_a_raw_file_with_one_byte_changed_is_refused_and_fetch_replaces_it(project, mirror):
    raw = project["data"] / "raw" / "peacesciencer" / "cow_ddy.rda"
    data = bytearray(raw.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one byte different
    raw.write_bytes(bytes(data))
    refused = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert_user_error(refused, "cow_ddy.rda fails its checksum", "run `foedus data fetch` to replace it")
    assert not project["table"].exists()
    fetched = foedus_here("data", "fetch", "--from", str(mirror), env_extra=project["env"])
    assert fetched.returncode == 0, fetched.stderr
    assert "fetched peacesciencer/cow_ddy.rda" in fetched.stdout and "1 fetched" in fetched.stdout
    assert raw.read_bytes() == (mirror / "peacesciencer" / "cow_ddy.rda").read_bytes()
    built = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert built.returncode == 0, built.stderr
    assert_consistent(project["table"])


def test_a_damaged_cache_is_one_line_and_read_again_from_raw(project):
    first = foedus("build", "--labels-only", env_extra=project["env"])
    assert first.returncode == 0, first.stderr
    [cache] = (project["data"] / "interim").glob("cow_ddy.*.parquet")
    cache.write_bytes(cache.read_bytes()[:1000])  # a Parquet file cut short
    again = foedus("build", "--labels-only", "--force", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"interim cache {cache} is damaged" in line and "reading the raw file again" in line
    [rewritten] = (project["data"] / "interim").glob("cow_ddy.*.parquet")
    assert rewritten.name.split(".")[3] == sha256_of(rewritten)[:16]
    assert_consistent(project["table"])


def test_a_table_that_does_not_match_its_sidecar_is_one_line_and_rebuilt(project):
    first = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert first.returncode == 0, first.stderr
    sidecar = assert_consistent(project["table"])
    project["table"].write_bytes(project["table"].read_bytes()[:-100])
    again = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"{project['table']} does not match its sidecar" in line and "rebuilding" in line
    assert "wrote 1,107,465 dyad-years" in again.stdout
    assert assert_consistent(project["table"])["table"] == sidecar["table"]


# --- a read-only or full output folder ------------------------------------------------------


def test_a_read_only_data_folder_is_one_line_exit_2(project):
    processed = project["data"] / "processed"
    with tmpfs(processed, "1m", read_only=True):
        result = foedus_here("build", "--labels-only", env_extra=project["env"])
        assert_user_error(result, f"in {processed}: read-only file system", "nothing was written",
                          "FOEDUS_DATA_DIR")
        assert list(processed.iterdir()) == []


def test_a_read_only_cache_folder_is_one_line_exit_2(project):
    interim = project["data"] / "interim"
    with tmpfs(interim, "1m", read_only=True):
        result = foedus_here("build", "--labels-only", env_extra=project["env"])
        assert_user_error(result, f"in {interim}: read-only file system", "FOEDUS_DATA_DIR")
        assert list(interim.iterdir()) == []
    assert not project["table"].exists()


def test_a_disk_filling_up_mid_write_leaves_the_previous_build_intact(project):
    """The disk has room for one labels table (240 KB) but not for a second copy beside it: the
    rebuild's temporary file runs out of space mid-write."""
    processed = project["data"] / "processed"
    with tmpfs(processed, "400k"):
        first = foedus_here("build", "--labels-only", env_extra=project["env"])
        assert first.returncode == 0, first.stderr
        before = {p.name: p.read_bytes() for p in (project["table"], project["sidecar"])}
        result = foedus_here("build", "--labels-only", "--force", env_extra=project["env"])
        assert_user_error(result, f"cannot write {LABELS}.parquet in {processed}: no space left on device",
                          "free space there", "FOEDUS_DATA_DIR")
        assert parts(processed) == []
        assert {p.name: p.read_bytes() for p in (project["table"], project["sidecar"])} == before
        assert_consistent(project["table"])


def test_a_full_folder_for_a_file_the_user_names(project, tmp_path):
    folder = tmp_path / "full"
    with tmpfs(folder, "4k"):  # the catalogue's Markdown is about 24 KB
        result = foedus_here("features", "list", "--markdown", str(folder / "features.md"), env_extra=project["env"])
        assert_user_error(result, f"cannot write features.md in {folder}: no space left on device", "--output")
        assert list(folder.iterdir()) == []


def test_a_read_only_folder_for_a_file_the_user_names(project, tmp_path):
    folder = tmp_path / "read-only"
    with tmpfs(folder, "1m", read_only=True):
        result = foedus_here("cite", "--output", str(folder / "refs" / "references.bib"), env_extra=project["env"])
        assert_user_error(result, f"cannot create the folder {folder / 'refs'}: read-only file system")


def test_fetch_into_a_full_raw_folder(project, mirror):
    raw = project["data"] / "raw"
    shutil.rmtree(raw)
    with tmpfs(raw, "1m"):  # the raw files are 4.2 MB
        result = foedus_here("data", "fetch", "--from", str(mirror), env_extra=project["env"])
        assert_user_error(result, f"in {raw}", "no space left on device", "free space there")
        assert parts(raw) == [] and not [p for p in raw.rglob("*") if p.name.endswith(".part")]


@pytest.fixture
def mirror_url(mirror):
    """The mirror served over HTTP on 127.0.0.1."""
    handler = partial(QuietHandler, directory=str(mirror))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.network
def test_a_download_into_a_full_folder_says_so_not_the_network(tmp_path, mirror_url):
    """The disk, not the network: a full folder mid-download is not 'check the network'."""
    from foedus.features.fetch import fetch
    from foedus.features.manifest import load_manifest
    from foedus.infra.atomic import OutputError

    base = mirror_url
    [cow_nmc] = [s for s in load_manifest(ROOT / "data/sources.toml").values() if s.key == "cow_nmc"]
    raw = tmp_path / "raw"
    with tmpfs(raw, "64k"):  # cow_nmc.rda is several hundred KB
        with pytest.raises(OutputError, match=f"cannot write cow_nmc.rda in {raw}.*: no space left on device"):
            fetch([cow_nmc], raw, origin=base, show_progress=False)
        assert [p for p in raw.rglob("*") if p.is_file()] == []


# --- two builds at once -----------------------------------------------------------------------


def _waiting_on(lock: Path) -> int:
    """How many processes are blocked on a flock of ``lock`` (Linux's /proc/locks: ' -> ' lines)."""
    inode = lock.stat().st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line and "FLOCK" in line and line.split()[-3].endswith(f":{inode}"))


def test_two_builds_at_once_while_a_third_holds_the_table(project):
    """Both wait (saying so once), then one builds and the other reuses its build."""
    lock = project["data"] / "processed" / f".{LABELS}.lock"
    lock.parent.mkdir(parents=True)
    env = {**os.environ, **project["env"]}
    env.pop("FOEDUS_DEBUG", None)
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        both = [subprocess.Popen([sys.executable, "-m", "foedus", "build", "--labels-only"], env=env, cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        deadline = time.monotonic() + 120
        while _waiting_on(lock) < 2:
            assert time.monotonic() < deadline and all(p.poll() is None for p in both), "the builds did not wait"
            time.sleep(0.1)
    outputs = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    for _, err in outputs:
        [line] = [x for x in err.splitlines() if x.strip()]
        assert f"waiting for another build of {LABELS}.parquet" in line
    said = sorted("reused identical build" in out for out, _ in outputs)
    assert said == [False, True], outputs
    assert_consistent(project["table"])
    assert parts(project["data"] / "processed") == []


def test_two_builds_started_together_give_one_valid_table(project):
    env = {**os.environ, **project["env"]}
    env.pop("FOEDUS_DEBUG", None)
    both = [subprocess.Popen([sys.executable, "-m", "foedus", "build", "--labels-only"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert sum("wrote 1,107,465" in out for out, _ in outputs) == 1  # the other reused it
    sidecar = assert_consistent(project["table"])
    single = build("atop:any:1", labels_only=True, write=False, paths=project["paths"]).table
    assert pq.read_table(project["table"]).to_pandas().equals(single)
    assert sidecar["rows"] == len(single)
    assert sorted(p.name for p in (project["data"] / "processed").iterdir()) == [
        f".{LABELS}.lock", f"{LABELS}.json", f"{LABELS}.parquet"]


# --- SIGKILL at named points of the build ------------------------------------------------------


def killed_at(point: str, project, *args):
    result = foedus("build", "--labels-only", *args, env_extra={**project["env"], "FOEDUS_KILL_AT": point})
    assert result.returncode == -9, f"not killed at {point}: {result.returncode} {result.stderr}"
    return result


def previous_build(project) -> dict[str, bytes]:
    """A valid earlier build of the labels table (and the interim caches it read)."""
    build("atop:any:1", labels_only=True, paths=project["paths"])
    assert_consistent(project["table"])
    return {p.name: p.read_bytes() for p in (project["table"], project["sidecar"])}


def unchanged(project, before: dict[str, bytes]) -> bool:
    return {p.name: p.read_bytes() for p in (project["table"], project["sidecar"])} == before


def the_pid_in(part: Path) -> int:
    return int(re.match(r"^\..+\.(\d+)\.[0-9a-f]{8}\.part$", part.name)[1])


def test_killed_while_writing_a_cache(project):
    before = previous_build(project)
    interim = project["data"] / "interim"
    for cache in interim.glob("cow_ddy.*.parquet"):
        cache.unlink()  # the rebuild must read cow_ddy from raw and cache it
    killed_at("interim.cache_written", project, "--force")
    assert unchanged(project, before)
    [part] = parts(interim)
    assert part.name.startswith(".cow_ddy.") and list(interim.glob("cow_ddy.*.parquet")) == []

    again = foedus("build", "--labels-only", "--force", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"removed {part}, an unfinished write" in line and f"process {the_pid_in(part)}" in line
    assert parts(interim) == [] and not part.exists()
    [cache] = interim.glob("cow_ddy.*.parquet")
    assert cache.name.split(".")[3] == sha256_of(cache)[:16]
    assert_consistent(project["table"])


def test_killed_between_two_row_groups_of_the_table(project):
    before = previous_build(project)
    processed = project["data"] / "processed"
    killed_at("build.table_part#2", project, "--force")
    assert unchanged(project, before)
    [part] = parts(processed)
    assert part.name.startswith(f".{LABELS}.parquet.")
    with pytest.raises(Exception, match="(?i)parquet"):  # half a Parquet file: two row groups, no footer
        pq.read_metadata(part)
    assert_consistent(project["table"])  # the previous build, still whole and readable

    again = foedus_here("build", "--labels-only", "--force", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"removed {part}, an unfinished write of {LABELS}.parquet" in line
    assert "wrote 1,107,465" in again.stdout
    assert parts(processed) == []
    assert_consistent(project["table"])


def test_killed_after_the_table_before_its_sidecar(project):
    """The new table is in place, the sidecar is still the previous build's: the next build must
    see that they do not match, and rebuild rather than reuse the pair."""
    previous_build(project)
    # the previous build's table, written otherwise (smaller row groups, as another pyarrow might):
    # the same rows, other bytes, and a sidecar that records them
    table = pq.read_table(project["table"])
    pq.write_table(table, project["table"], row_group_size=100_000)
    sidecar = json.loads(project["sidecar"].read_text())
    sidecar["table"] = {"sha256": sha256_of(project["table"]), "bytes": project["table"].stat().st_size}
    project["sidecar"].write_text(json.dumps(sidecar))
    assert_consistent(project["table"])
    old_sidecar = project["sidecar"].read_bytes()

    killed_at("build.before_sidecar", project, "--force")
    assert project["sidecar"].read_bytes() == old_sidecar
    assert pq.read_table(project["table"]).num_rows == ROWS  # the new table, whole
    assert json.loads(old_sidecar)["table"]["sha256"] != sha256_of(project["table"])
    assert parts(project["data"] / "processed") == []

    again = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"{project['table']} does not match its sidecar {LABELS}.json" in line and "rebuilding" in line
    assert "wrote 1,107,465" in again.stdout  # rebuilt, not reused
    assert_consistent(project["table"])


def test_killed_before_the_first_sidecar(project):
    killed_at("build.before_sidecar", project)
    assert project["table"].is_file() and not project["sidecar"].exists()
    again = foedus_here("build", "--labels-only", env_extra=project["env"])
    assert again.returncode == 0, again.stderr
    [line] = stderr_lines(again)
    assert f"{project['table']} has no {LABELS}.json beside it" in line and "rebuilding" in line
    assert "wrote 1,107,465" in again.stdout
    assert_consistent(project["table"])

"""Work done once per test session, by whichever xdist worker needs it first: the others wait
for it, then use what it left in a folder every worker of the session shares. A build or a
trained store is reproducible (the same code, data and seed give the same table and the same
model), so a second worker doing it again would only spend minutes of the suite."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def session_folder(tmp_path_factory) -> Path:
    """A folder of this session only that every worker shares: the parent of the workers' own
    base folders under xdist (``pytest-<n>/popen-gw<i>``), the base folder without it."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """``session_folder/shared-<name>``, filled by ``make(folder)`` the first time any worker
    asks; a later ask, here or in another worker, waits for the first to finish and gets its
    folder. A ``make`` that failed is tried again by the next ask (its partial folder removed)."""
    folder = session_folder(tmp_path_factory) / f"shared-{name}"
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / ".done").touch()
    return folder


def shared_build(tmp_path_factory, paths, spec: str, for_year: int | None = None,
                 years: tuple[int, int] | None = None) -> tuple[Path, dict]:
    """The build of ``spec`` (of ``years``, (first, last), if given; else all) in ``paths``' data
    folder: built once per session (in the data folder of the first worker that asks), then
    copied into each other worker's, where its build key and checksum make ``build`` find it
    rather than compute it again. Its Parquet path and sidecar provenance, as ``ensure_built``
    gives them."""
    from foedus.features.build import ensure_built

    def make(folder: Path) -> None:
        path, _ = ensure_built(spec, for_year=for_year, paths=paths, **span)
        for item in (path, path.with_suffix(".json")):
            shutil.copy2(item, folder / item.name)

    span = {} if years is None else {"first": years[0], "last": years[1]}
    name = f"build-{spec.replace(':', '_')}-{for_year or 'full'}" + ("" if years is None else "-{}-{}".format(*years))
    folder = once(tmp_path_factory, name, make)
    paths.processed.mkdir(parents=True, exist_ok=True)
    for item in sorted(folder.glob("*.parquet")) + sorted(folder.glob("*.json")):  # the sidecar last
        if not (paths.processed / item.name).exists():
            shutil.copy2(item, paths.processed / item.name)
    return ensure_built(spec, for_year=for_year, paths=paths, **span)

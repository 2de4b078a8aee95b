"""The jobs behind the CLI, as plain functions for notebooks: fetch, status, build, run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from foedus.features.alliances import alliance_state, coverage
from foedus.features.atomic import write_atomic
from foedus.features.config import Paths
from foedus.features.fetch import Fetched, RawState, fetch, raw_state
from foedus.features.labels import LabelSpec, counts_by_era, label_dyad_years
from foedus.features.manifest import load_manifest
from foedus.features.readers import load_source, source_years
from foedus.features.universe import dyad_years
from foedus.features.years import FIRST_YEAR, LAST_YEAR, check_span


def fetch_data(origin: str | Path | None = None, *, force: bool = False, paths: Paths | None = None,
               show_progress: bool = True) -> list[Fetched]:
    """Fetch and verify every raw source into ``data/raw/`` (see ``foedus.features.fetch``).

    ``origin`` is a folder or http(s) URL laid out like ``../shared/data``; without it the
    configured mirror is used where it has the file, else the upstream URL.
    """
    paths = paths or Paths.discover()
    sources = load_manifest(paths.manifest).values()
    mirror = paths.mirror if paths.mirror.is_dir() else None
    return fetch(sources, paths.raw, origin=origin, mirror=mirror, force=force, show_progress=show_progress)


def data_status(paths: Paths | None = None) -> pd.DataFrame:
    """One row per source: path, state (verified / missing / checksum mismatch), version, years."""
    paths = paths or Paths.discover()
    rows = []
    for key, source in load_manifest(paths.manifest).items():
        state = raw_state(source, paths.raw)
        years = None
        if state is RawState.VERIFIED:
            years = source_years(key, load_source(key, paths))
        rows.append({
            "source": key,
            "path": source.path,
            "present": state is not RawState.MISSING,
            "verified": state is RawState.VERIFIED,
            "state": state.value,
            "version": source.pinned,
            "first_year": years[0] if years else None,
            "last_year": years[1] if years else None,
        })
    return pd.DataFrame(rows).astype({"first_year": "Int32", "last_year": "Int32"})


def _spec(spec: LabelSpec | str) -> LabelSpec:
    return spec if isinstance(spec, LabelSpec) else LabelSpec.parse(spec)


def labelled_universe(spec: LabelSpec | str = "atop:any:1", first: int = FIRST_YEAR, last: int = LAST_YEAR,
                      *, paths: Paths | None = None) -> pd.DataFrame:
    """Undirected dyad-years ``first..last`` with ``at_risk`` and ``onset`` under ``spec``.

    >>> table = labelled_universe("atop:defense:1", 1946, 1989)   # doctest: +SKIP
    """
    spec = _spec(spec)
    first, last = check_span(first, last)
    universe = dyad_years(load_source("cow_ddy", paths))  # whole span: t-1 of the first year is needed
    directed = load_source(spec.alliance_source.source_key, paths)
    labelled = label_dyad_years(universe, alliance_state(directed, spec.alliance_source), coverage(directed), spec)
    return labelled[labelled["year"].between(first, last)].reset_index(drop=True)


@dataclass(frozen=True)
class BuildResult:
    table: pd.DataFrame
    spec: LabelSpec
    counts: pd.DataFrame  # counts_by_era of the table
    path: Path | None  # where the table was written, if it was


def output_path(spec: LabelSpec, first: int, last: int, paths: Paths) -> Path:
    span = "" if (first, last) == (FIRST_YEAR, LAST_YEAR) else f"_{first}-{last}"
    return paths.processed / f"labels_{spec.name}{span}.parquet"


def _provenance(spec: LabelSpec, first: int, last: int, paths: Paths) -> dict:
    from foedus import __version__

    sources = load_manifest(paths.manifest)
    used = ["cow_ddy", spec.alliance_source.source_key]
    return {
        "foedus_version": __version__,
        "label_spec": str(spec),
        "years": [first, last],
        "sources": {key: sources[key].sha256 for key in used},
    }


def build(spec: LabelSpec | str = "atop:any:1", first: int = FIRST_YEAR, last: int = LAST_YEAR, *,
          write: bool = True, paths: Paths | None = None) -> BuildResult:
    """Build the labelled dyad-year table and write it to ``data/processed/`` as Parquet.

    The file (``labels_<source>_<obligation>_h<h>.parquet``) carries its label spec and the
    checksums of the sources it used in the Parquet metadata key ``foedus``. The write is
    atomic. (The feature families join this table in a later release.)
    """
    paths = paths or Paths.discover()
    spec = _spec(spec)
    first, last = check_span(first, last)
    table = labelled_universe(spec, first, last, paths=paths)
    path = None
    if write:
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        meta = {**(arrow.schema.metadata or {}), b"foedus": json.dumps(_provenance(spec, first, last, paths)).encode()}
        arrow = arrow.replace_schema_metadata(meta)
        path = write_atomic(output_path(spec, first, last, paths), lambda tmp: pq.write_table(arrow, tmp))
    return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path)


def run(spec: LabelSpec | str = "atop:any:1", *, paths: Paths | None = None, show_progress: bool = True) -> BuildResult:
    """The main job, end to end: fetch and verify the raw data, then build the labelled table."""
    paths = paths or Paths.discover()
    fetch_data(paths=paths, show_progress=show_progress)
    return build(spec, paths=paths)

"""Build the dyad-year table: the labelled universe, every feature family, written with provenance.

``foedus.build(...)`` and ``foedus build`` call ``build`` here; the CLI adds nothing to it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from foedus.features.alliances import alliance_state, coverage
from foedus.features.catalogue import Family, catalogue_frame, catalogue_markdown
from foedus.features.citations import source_citations
from foedus.features.families import feature_families
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec, as_label_spec, counts_by_era, label_dyad_years
from foedus.features.provenance import provenance as build_provenance
from foedus.features.provenance import reusable, sources_used, table_checksum
from foedus.features.readers import load_source
from foedus.features.staleness import Vintage, carry_forward, check_target, shift_sources, vintage
from foedus.features.table import Sources, feature_table, load_sources, sources_of, with_coverage
from foedus.features.universe import DYAD_YEAR, dyad_years
from foedus.features.years import FIRST_YEAR, LAST_YEAR, check_span
from foedus.infra.atomic import exclusive, remove_unfinished, write_atomic
from foedus.infra.config import Paths
from foedus.infra.errors import FoedusError
from foedus.infra.faults import kill_point
from foedus.infra.memory import release_free_memory
from foedus.infra.parallel import cores


def labelled_universe(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, first: int = FIRST_YEAR, last: int = LAST_YEAR,
                      *, paths: Paths | None = None, vintage: Vintage | None = None) -> pd.DataFrame:
    """Undirected dyad-years ``first..last`` with ``at_risk`` and ``onset`` under ``spec``.

    With ``vintage`` (a present-day model's), the at-risk set is the one the label source knew
    at t-1-d (its staleness d), and the target year's rows follow (the system's last pairs
    carried forward past 2024).

    >>> table = labelled_universe("atop:defense:1", 1946, 1989)   # doctest: +SKIP
    """
    spec = as_label_spec(spec)
    first, last = check_span(first, last)
    universe = dyad_years(load_source("cow_ddy", paths))  # whole span: t-1 of the first year is needed
    key = spec.alliance_source.source_key
    directed = load_source(key, paths)
    stale = 0
    if vintage is not None:
        universe, stale = carry_forward(universe, vintage.target), vintage.staleness[key]
    labelled = label_dyad_years(universe, alliance_state(directed, spec.alliance_source), coverage(directed), spec,
                                stale)
    keep = labelled["year"].between(first, last)
    if vintage is not None:
        keep |= labelled["year"] == vintage.target
    return labelled[keep].reset_index(drop=True)


@dataclass(frozen=True)
class BuildResult:
    table: pd.DataFrame | None  # None once released (``released``): it is on disk at ``path``
    spec: LabelSpec
    counts: pd.DataFrame  # counts_by_era of the table
    path: Path | None  # where the table was written, if it was
    reused: bool = False  # True if an identical earlier build was loaded instead of rebuilt
    shape: tuple[int, int] = (0, 0)  # the table's rows and columns (kept when it is released)

    def __post_init__(self):
        if self.table is not None:
            object.__setattr__(self, "shape", self.table.shape)

    def released(self) -> BuildResult:
        """This result without its table (its shape kept), for a caller that keeps the result
        after the table's use: half a gigabyte less in memory, the table still at ``path``."""
        return replace(self, table=None)


def output_path(spec: LabelSpec, first: int, last: int, paths: Paths, labels_only: bool = False,
                for_year: int | None = None) -> Path:
    span = "" if (first, last) == (FIRST_YEAR, LAST_YEAR) else f"_{first}-{last}"
    stem = "labels" if labels_only else "dyad_years"
    target = "" if for_year is None else f"_for{for_year}"
    return paths.processed / f"{stem}_{spec.name}{span}{target}.parquet"


def families_for(spec: LabelSpec) -> list[Family]:
    """The feature families of a build: the network family reads the label spec's alliance source."""
    return feature_families(spec.source)


def build(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, first: int = FIRST_YEAR, last: int = LAST_YEAR, *,
          labels_only: bool = False, write: bool = True, force: bool = False, for_year: int | None = None,
          paths: Paths | None = None) -> BuildResult:
    """Build the dyad-year table (features and labels) and write it to ``data/processed/``.

    Writes ``dyad_years_<source>_<obligation>_h<h>.parquet`` (or ``labels_...`` with
    ``labels_only``) and beside it a JSON sidecar with the feature catalogue, the checksums of
    the sources used and the code version. An earlier build with the same inputs and code is
    loaded instead of rebuilt unless ``force``. Both writes are atomic; the sidecar is written
    last and records the table's SHA-256, so a half-finished or damaged build is never reused.
    Two processes building the same table take turns (a lock file beside it): the second
    waits, then reuses the first one's build.

    ``for_year``: the table of the present-day model for that target year (``_for<year>``
    appended to the name): every source shifted by its staleness for the target and the
    at-risk set as the label source knew it (``foedus.features.staleness``), plus the target
    year's rows. The sidecar's ``vintage`` lists each source's last year and staleness.
    """
    paths = paths or Paths.discover()
    spec = as_label_spec(spec)
    first, last = check_span(first, last)
    families = [] if labels_only else families_for(spec)
    provenance = build_provenance(spec, first, last, families, paths, for_year)
    path = output_path(spec, first, last, paths, labels_only, for_year)
    if write:
        # what a killed build left (its writer's pid no longer runs) is deleted first, saying so
        remove_unfinished(paths.processed)
        remove_unfinished(paths.interim)
        if not force and (table := _verified_table(path, provenance["build_key"], quiet=True)) is not None:
            return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path, reused=True)
    # every source at once, on all cores: the labels and the families then find them loaded. A
    # missing or damaged raw file fails here, before anything is written to data/processed.
    sources = load_sources(sources_used(spec, families), paths)
    if not write:
        table = _compute(spec, first, last, families, provenance, sources, paths, for_year)
        return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=None)
    # One build of a table at a time: a second process waits, then reuses the first one's build.
    with exclusive(path.parent / f".{path.stem}.lock", f"build of {path.name}"):
        if not force and (table := _verified_table(path, provenance["build_key"])) is not None:
            return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path, reused=True)
        table = _compute(spec, first, last, families, provenance, sources, paths, for_year)
        _write(table, path, provenance)
    return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path)


def _verified_table(path: Path, build_key: str, quiet: bool = False) -> pd.DataFrame | None:
    """The earlier build at ``path`` if it is reusable, read from the very bytes whose checksum
    was checked (a build replacing it meanwhile cannot slip in between); else None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    if not reusable(path, build_key, quiet=quiet, data=data):
        return None
    return read_built_table(io.BytesIO(data))


def read_built_table(source, **kwargs) -> pd.DataFrame:
    """A built table (a path or a file object; ``kwargs`` as ``pd.read_parquet``'s) with one
    pandas block per column. pandas' default joins the 90 float columns into one 2-D block:
    measured on a built table of 1.1 million rows, joining them took 2.9 s of the 3.1 s read,
    and every row selection on the joined block (``table.loc[mask]``: each fold's slices, each
    tuning block) 3.0 s against 0.23 s column by column."""
    return pd.read_parquet(source, to_pandas_kwargs={"split_blocks": True, "self_destruct": True}, **kwargs)


def _compute(spec: LabelSpec, first: int, last: int, families: list[Family], provenance: dict, sources: Sources,
             paths: Paths, for_year: int | None) -> pd.DataFrame:
    """The table of a build from its loaded ``sources``; what it used is added to ``provenance``."""
    target = None
    if for_year is not None:
        label_key = spec.alliance_source.source_key
        target = vintage(check_target(for_year, sources.coverage[label_key][1], label_key), sources)
        provenance["vintage"] = {"target": target.target, "profile": target.profile(), "sources": target.rows(),
                                 "carried_forward": target.carried_forward}
        sources = shift_sources(sources, target.staleness)
    table = labelled_universe(spec, first, last, paths=paths, vintage=target)
    release_free_memory()  # the source reads' and the labelling's buffers, before the families
    if families:
        features = feature_table(table[list(DYAD_YEAR)], sources, families)
        table = pd.concat([table, features.drop(columns=list(DYAD_YEAR))], axis=1)
        provenance["coverage"] = {k: list(sources.coverage[k]) for k in sources_of(families)}
        provenance["catalogue"] = catalogue_frame(with_coverage(families), sources.coverage).to_dict("records")
    return table


def _write(table: pd.DataFrame, path: Path, provenance: dict) -> None:
    """The table, then its sidecar recording the table's SHA-256: a table is used only with a
    sidecar whose checksum it matches (``reusable``), so a build killed between the two writes,
    or a table damaged later, is rebuilt, never used."""
    provenance["rows"] = len(table)
    described = {k: provenance[k] for k in ("build_key", "label_spec", "years", "sources")}
    metadata = {b"foedus": json.dumps(described).encode()}

    def write_table(tmp: Path) -> None:
        write_parquet(table, tmp, metadata)
        # hashed here, before the rename: the file was just written and is still in the page cache
        provenance["table"] = table_checksum(tmp)

    write_atomic(path, write_table)
    kill_point("build.before_sidecar")
    write_atomic(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(provenance, indent=2)))


def ensure_built(spec: LabelSpec | str, *, for_year: int | None = None, first: int = FIRST_YEAR,
                 last: int = LAST_YEAR, paths: Paths | None = None) -> tuple[Path, dict]:
    """The table of ``spec``, years ``first..last`` (default all; of the present-day model for
    ``for_year`` if given; built first if no identical build exists): its Parquet path and its
    sidecar provenance, without reading the table."""
    paths = paths or Paths.discover()
    spec = as_label_spec(spec)
    first, last = check_span(first, last)
    path = output_path(spec, first, last, paths, for_year=for_year)
    key = build_provenance(spec, first, last, families_for(spec), paths, for_year)["build_key"]
    if not reusable(path, key, quiet=True):  # build() checks again under its lock, and says why it rebuilds
        build(spec, first, last, for_year=for_year, paths=paths)
    return path, json.loads(path.with_suffix(".json").read_text())


def read_year(path: Path, year: int) -> pd.DataFrame:
    """Every row of ``year`` of a built table, read alone (row-group and page filtering).

    ``path`` is one ``ensure_built`` returned: it verified the table against its sidecar's
    checksum once, rather than on each year read."""
    return read_built_table(path, filters=[("year", "==", int(year))])


# Rows converted to Arrow and written at a time: converting the whole table at once would hold a
# second copy of it (about 450 MB) at the build's memory peak.
ROW_GROUP = 1 << 18


def write_parquet(table: pd.DataFrame, path: Path, metadata: dict[bytes, bytes]) -> None:
    """Write ``table`` to ``path`` in row groups of ``ROW_GROUP`` rows, with ``metadata`` added to
    the schema's. Reading it back gives the same DataFrame as one ``write_table`` would."""
    schema = pa.Schema.from_pandas(table, preserve_index=False)
    schema = schema.with_metadata({**(schema.metadata or {}), **metadata})
    # A column gives up dictionary encoding once its dictionary passes 4 KB (~1,000 distinct
    # values) instead of 1 MB: flags and counts keep it, continuous measures (CINC, distances)
    # stop trying at once. A third faster to write, the file 8% larger, the values the same.
    with pq.ParquetWriter(path, schema, dictionary_pagesize_limit=1 << 12) as writer:
        for start in range(0, len(table), ROW_GROUP):
            part = table.iloc[start:start + ROW_GROUP]
            writer.write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False, nthreads=cores()))
            kill_point("build.table_part")


def feature_catalogue(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *,
                      paths: Paths | None = None) -> tuple[pd.DataFrame, str]:
    """The catalogue of a build's features (and its Markdown), with each source's last covered year."""
    families = with_coverage(families_for(as_label_spec(spec)))
    coverage = None
    try:
        coverage = load_sources(sources_of(families), paths).coverage
    except FoedusError:
        pass  # without the raw data the catalogue is still printed, without coverage years
    citations = source_citations(paths)
    return catalogue_frame(families, coverage, citations), catalogue_markdown(families, coverage, citations)


def build_sources(spec: LabelSpec, first: int = FIRST_YEAR, last: int = LAST_YEAR,
                  paths: Paths | None = None) -> tuple[list[str], str]:
    """The sources the build of ``spec`` used, and where that list comes from: the build's
    sidecar if it exists, else the same list computed from the spec without building."""
    paths = paths or Paths.discover()
    first, last = check_span(first, last)
    sidecar = output_path(spec, first, last, paths).with_suffix(".json")
    if not sidecar.is_file():
        return sources_used(spec, families_for(spec)), f"label spec {spec} (not built yet: the sources its build reads)"
    try:
        keys = list(json.loads(sidecar.read_text())["sources"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FoedusError(f"build sidecar {sidecar} is unreadable or lists no sources ({exc}): "
                          f"rebuild with `foedus build -l {spec} --force`") from exc
    return keys, f"the build of {spec} (sidecar {sidecar})"

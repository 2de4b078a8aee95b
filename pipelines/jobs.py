"""The jobs behind the CLI, as plain functions for notebooks: fetch, status, build, run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from foedus import features as features_pkg
from foedus.features.alliances import alliance_state, coverage
from foedus.features.atomic import write_atomic
from foedus.features.catalogue import Family, catalogue_frame, catalogue_markdown
from foedus.features.errors import FoedusError
from foedus.features.families import feature_families
from foedus.features.summary import threat_onset_summary
from foedus.features.table import feature_table, load_sources, sources_of, with_coverage
from foedus.features.config import Paths
from foedus.features.fetch import Fetched, RawState, fetch, raw_state
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec, counts_by_era, label_dyad_years
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


def labelled_universe(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, first: int = FIRST_YEAR, last: int = LAST_YEAR,
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
    reused: bool = False  # True if an identical earlier build was loaded instead of rebuilt


def output_path(spec: LabelSpec, first: int, last: int, paths: Paths, labels_only: bool = False) -> Path:
    span = "" if (first, last) == (FIRST_YEAR, LAST_YEAR) else f"_{first}-{last}"
    stem = "labels" if labels_only else "dyad_years"
    return paths.processed / f"{stem}_{spec.name}{span}.parquet"


def families_for(spec: LabelSpec) -> list[Family]:
    """The feature families of a build: the network family reads the label spec's alliance source."""
    return feature_families(spec.source)


def code_version() -> dict:
    """foedus's version, a digest of its source files and the git commit if there is one."""
    from foedus import __version__

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for folder in (package, Path(features_pkg.__file__).resolve().parent):
        for path in sorted(folder.rglob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"foedus_version": __version__, "source_digest": digest.hexdigest()[:16], "git_commit": commit}


def _provenance(spec: LabelSpec, first: int, last: int, families: list[Family], paths: Paths) -> dict:
    manifest = load_manifest(paths.manifest)
    used = ["cow_ddy", spec.alliance_source.source_key, *sources_of(families)]
    sources = {key: manifest[key].sha256 for key in dict.fromkeys(used)}
    version = code_version()
    key_material = {"spec": str(spec), "years": [first, last], "sources": sources,
                    "columns": [f.name for fam in with_coverage(families) for f in fam.features] if families else [],
                    "code": version["source_digest"]}
    return {
        "build_key": hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:16],
        "label_spec": str(spec),
        "years": [first, last],
        "sources": sources,
        "code": version,
    }


def _reusable(path: Path, build_key: str) -> bool:
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file()):
        return False
    try:
        return json.loads(sidecar.read_text()).get("build_key") == build_key
    except (OSError, json.JSONDecodeError):
        return False


def build(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, first: int = FIRST_YEAR, last: int = LAST_YEAR, *,
          labels_only: bool = False, write: bool = True, force: bool = False,
          paths: Paths | None = None) -> BuildResult:
    """Build the dyad-year table (features and labels) and write it to ``data/processed/``.

    Writes ``dyad_years_<source>_<obligation>_h<h>.parquet`` (or ``labels_...`` with
    ``labels_only``) and beside it a JSON sidecar with the feature catalogue, the checksums of
    the sources used and the code version. An earlier build with the same inputs and code is
    loaded instead of rebuilt unless ``force``. Both writes are atomic; the sidecar is written
    last, so a half-finished build is never reused.
    """
    paths = paths or Paths.discover()
    spec = _spec(spec)
    first, last = check_span(first, last)
    families = [] if labels_only else families_for(spec)
    provenance = _provenance(spec, first, last, families, paths)
    path = output_path(spec, first, last, paths, labels_only)
    if write and not force and _reusable(path, provenance["build_key"]):
        table = pd.read_parquet(path)
        return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path, reused=True)

    table = labelled_universe(spec, first, last, paths=paths)
    if families:
        sources = load_sources(sources_of(families), paths)
        features = feature_table(table[["ccode1", "ccode2", "year"]], sources, families)
        table = pd.concat([table, features.drop(columns=["ccode1", "ccode2", "year"])], axis=1)
        provenance["coverage"] = {k: list(v) for k, v in sources.coverage.items()}
        provenance["catalogue"] = catalogue_frame(with_coverage(families), sources.coverage).to_dict("records")
    if not write:
        return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=None)
    provenance["rows"] = len(table)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"foedus": json.dumps(
        {k: provenance[k] for k in ("build_key", "label_spec", "years", "sources")}).encode()})
    write_atomic(path, lambda tmp: pq.write_table(arrow, tmp))
    write_atomic(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(provenance, indent=2)))
    return BuildResult(table=table, spec=spec, counts=counts_by_era(table), path=path)


def describe(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, paths: Paths | None = None) -> pd.DataFrame:
    """Onset rate overall and within ``shared_threat == 1`` at-risk dyad-years, by era.

    Builds the table first if needed (an identical earlier build is reused).
    """
    return threat_onset_summary(build(spec, paths=paths).table)


def feature_catalogue(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, paths: Paths | None = None) -> tuple[pd.DataFrame, str]:
    """The catalogue of a build's features (and its Markdown), with each source's last covered year."""
    families = with_coverage(families_for(_spec(spec)))
    coverage = None
    try:
        coverage = load_sources(sources_of(families), paths).coverage
    except FoedusError:
        pass  # without the raw data the catalogue is still printed, without coverage years
    from foedus.features.citations import source_citations

    citations = source_citations(paths)
    return catalogue_frame(families, coverage, citations), catalogue_markdown(families, coverage, citations)


def _state_names(paths: Paths) -> dict[int, str]:
    from foedus.features.states import load_registry

    return {code: state.name for code, state in load_registry(paths).states.items()}


def _tracked_table(spec: LabelSpec, paths: Paths) -> tuple[BuildResult, dict]:
    """The built table (an identical build is reused), its sidecar provenance, and MLflow
    pointed at the project's store: what backtest and train both start from."""
    from foedus.models.tracking import configure

    built = build(spec, paths=paths)
    configure(paths.root)
    return built, json.loads(built.path.with_suffix(".json").read_text())


def backtest(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, models: str | Sequence[str] | None = None,
             folds: str | Sequence | None = None, *, seed: int | None = None, paths: Paths | None = None,
             log_models: bool = True, on_model=None) -> list:
    """Out-of-time backtest of each model (default: every model of ``foedus.models.catalogue``),
    tracked in MLflow (one parent run per model).

    ``folds`` is a list of ``Fold`` or text like ``"1946-1969,1970-1989"`` (default: the five
    blocks of ``foedus.models.folds.DEFAULT_FOLDS``). Each model's backtest is computed first
    (``foedus.models.backtest.run_backtest``, no MLflow), then logged. Returns one
    ``BacktestResult`` per model, with its ``run_id``; ``on_model(result)`` is called as each
    finishes (the CLI prints progress with it).
    """
    from foedus.models.backtest import run_backtest
    from foedus.models.catalogue import DEFAULT_SEED, MODELS, model_names
    from foedus.models.experiment import log_backtest
    from foedus.models.folds import DEFAULT_FOLDS, parse_folds

    paths = paths or Paths.discover()
    spec = _spec(spec)
    names = model_names(tuple(MODELS) if models is None else models)
    seed = DEFAULT_SEED if seed is None else seed
    folds = DEFAULT_FOLDS if folds is None else (parse_folds(folds) if isinstance(folds, str) else tuple(folds))
    built, provenance = _tracked_table(spec, paths)
    invocation = hashlib.sha256(f"{spec}{names}{folds}{seed}{time.time()}".encode()).hexdigest()[:12]
    state_names = _state_names(paths)
    results = []
    for name in names:
        result = run_backtest(built.table, name, folds, spec.horizon, seed=seed, names=state_names,
                              label_spec=str(spec))
        result.run_id = log_backtest(result, built.table, spec, provenance=provenance, root=paths.root,
                                     invocation=invocation, log_models=log_models)
        results.append(result)
        if on_model is not None:
            on_model(result)
    return results


def train(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, model: str = "lightgbm", *, seed: int | None = None,
          paths: Paths | None = None):
    """Fit ``model`` on all labelled years, register it as ``foedus-onset-<spec>`` and move the
    ``champion`` alias only if its backtest AP beats the champion's. Returns (run id, Promotion)."""
    from foedus.models.catalogue import DEFAULT_SEED, model_spec
    from foedus.models.experiment import train_final

    paths = paths or Paths.discover()
    spec = _spec(spec)
    model_spec(model)
    built, provenance = _tracked_table(spec, paths)
    return train_final(built.table, spec, model, provenance=provenance, root=paths.root,
                       seed=DEFAULT_SEED if seed is None else seed)


def compare(spec: LabelSpec | str | None = None, *, last: int = 20, paths: Paths | None = None) -> pd.DataFrame:
    """The latest backtest runs: model, label spec, pooled AP, ROC-AUC, Brier (as the MLflow UI shows)."""
    from foedus.models.experiment import compare_runs
    from foedus.models.tracking import configure

    paths = paths or Paths.discover()
    configure(paths.root)
    return compare_runs(paths.root, None if spec is None else _spec(spec), last)


@dataclass(frozen=True)
class RunResult:
    """What the main job did: the build, each model's backtest, the final model and the comparison."""

    build: BuildResult
    backtests: list  # BacktestResult per model, each with its run_id
    train_run: str  # the final model's run id
    promotion: object  # foedus.models.registry.Promotion: did the champion alias move?
    compare: pd.DataFrame


def run(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, models: str | Sequence[str] | None = None,
        folds: str | Sequence | None = None, final_model: str = "lightgbm", paths: Paths | None = None,
        show_progress: bool = True, on_model=None) -> RunResult:
    """The main job, end to end: fetch and verify the raw data, build the feature table, backtest
    every model out of time, train and register the final model (LightGBM), compare."""
    from foedus.models.catalogue import model_spec

    paths = paths or Paths.discover()
    model_spec(final_model)  # a typo fails now, not after the backtests
    fetch_data(paths=paths, show_progress=show_progress)
    built = build(spec, paths=paths)
    results = backtest(spec, models, folds, paths=paths, on_model=on_model)
    run_id, promotion = train(spec, final_model, paths=paths)
    return RunResult(build=built, backtests=results, train_run=run_id, promotion=promotion,
                     compare=compare(spec, last=len(results), paths=paths))


@dataclass(frozen=True)
class Cited:
    """What ``cite`` returns: the sources, the references to cite for them, and where the list came from."""

    sources: list[str]
    references: list  # foedus.features.manifest.Reference, in reference-list order
    origin: str

    def render(self, fmt: str = "bibtex") -> str:
        """``bibtex``, ``text`` (one APA-like line per reference) or ``both``."""
        from foedus.features.citations import render

        return render(self.references, fmt)

    def __str__(self) -> str:
        return self.render("bibtex")


def cite(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, all_sources: bool = False, first: int = FIRST_YEAR,
         last: int = LAST_YEAR, paths: Paths | None = None) -> Cited:
    """The references to cite for exactly the sources a build used, as peacesciencer's ``ps_cite()``.

    The sources are those the build's sidecar records (``dyad_years_<spec>.json``); before the
    build exists, the same list is computed from the spec without building. ``all_sources``
    cites every source in the manifest instead.

    >>> print(cite("atop:any:1").render("text"))   # doctest: +SKIP
    """
    from foedus.features.citations import citations_for

    paths = paths or Paths.discover()
    if all_sources:
        keys, origin = list(load_manifest(paths.manifest)), f"every source in {paths.manifest}"
    else:
        spec = _spec(spec)
        first, last = check_span(first, last)
        sidecar = output_path(spec, first, last, paths).with_suffix(".json")
        if sidecar.is_file():
            try:
                keys = list(json.loads(sidecar.read_text())["sources"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise FoedusError(f"build sidecar {sidecar} is unreadable or lists no sources ({exc}): "
                                  f"rebuild with `foedus build -l {spec} --force`") from exc
            origin = f"the build of {spec} (sidecar {sidecar})"
        else:
            # the list _provenance records in the sidecar, computed without building
            keys = list(dict.fromkeys(["cow_ddy", spec.alliance_source.source_key, *sources_of(families_for(spec))]))
            origin = f"label spec {spec} (not built yet: the sources its build reads)"
    return Cited(sources=keys, references=citations_for(keys, paths), origin=origin)

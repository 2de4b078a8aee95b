"""The jobs behind the CLI, as plain functions for notebooks: fetch, status, build, run."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

# build, labelled_universe, BuildResult and feature_catalogue live in foedus.features.build;
# they are re-exported here as the notebook API and for the CLI.
from foedus.features.build import BuildResult, build, feature_catalogue, labelled_universe  # noqa: F401
from foedus.features.config import Paths
from foedus.features.errors import InvalidInput
from foedus.features.fetch import Fetched, RawState, fetch, raw_state
from foedus.features.labels import LabelSpec
from foedus.features.labels import as_label_spec as _spec
from foedus.features.manifest import load_manifest
from foedus.features.readers import load_source, source_years
from foedus.features.summary import threat_onset_summary


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


def describe(spec: LabelSpec | str = "atop:any:1", *, paths: Paths | None = None) -> pd.DataFrame:
    """Onset rate overall and within ``shared_threat == 1`` at-risk dyad-years, by era.

    Builds the table first if needed (an identical earlier build is reused).
    """
    return threat_onset_summary(build(spec, paths=paths).table)


def _state_names(paths: Paths) -> dict[int, str]:
    from foedus.features.states import load_registry

    return {code: state.name for code, state in load_registry(paths).states.items()}


def _models(models: str | Sequence[str]) -> list[str]:
    from foedus.models.estimators import MODELS

    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise InvalidInput(f"unknown model {', '.join(unknown) or '(none)'}: choose from {', '.join(MODELS)}")
    return names


def _tracked_table(spec: LabelSpec, paths: Paths) -> tuple[BuildResult, dict]:
    """The built table (an identical build is reused), its sidecar provenance, and MLflow
    pointed at the project's store: what backtest and train both start from."""
    from foedus.models.tracking import configure

    built = build(spec, paths=paths)
    configure(paths.root)
    return built, json.loads(built.path.with_suffix(".json").read_text())


DEFAULT_MODELS = ("lightgbm", "logit-literature", "logit-threat", "hist-gradient-boosting", "base-rate")


def backtest(spec: LabelSpec | str = "atop:any:1", models: str | Sequence[str] = DEFAULT_MODELS,
             folds: str | Sequence | None = None, *, seed: int = 7, paths: Paths | None = None,
             log_models: bool = True, on_model=None) -> list:
    """Out-of-time backtest of each model, tracked in MLflow (one parent run per model).

    ``folds`` is a list of ``Fold`` or text like ``"1946-1969,1970-1989"`` (default: the five
    blocks of ``foedus.models.folds.DEFAULT_FOLDS``). Returns one ``BacktestSummary`` per model;
    ``on_model(summary)`` is called as each finishes (the CLI prints progress with it).
    """
    from foedus.models.experiment import run_backtest
    from foedus.models.folds import DEFAULT_FOLDS, parse_folds

    paths = paths or Paths.discover()
    spec = _spec(spec)
    names = _models(models)
    folds = DEFAULT_FOLDS if folds is None else (parse_folds(folds) if isinstance(folds, str) else tuple(folds))
    built, provenance = _tracked_table(spec, paths)
    invocation = hashlib.sha256(f"{spec}{names}{folds}{seed}{time.time()}".encode()).hexdigest()[:12]
    state_names = _state_names(paths)
    summaries = []
    for name in names:
        summary = run_backtest(built.table, spec, name, folds, provenance=provenance, root=paths.root,
                               names=state_names, seed=seed, invocation=invocation, log_models=log_models)
        summaries.append(summary)
        if on_model is not None:
            on_model(summary)
    return summaries


def train(spec: LabelSpec | str = "atop:any:1", model: str = "lightgbm", *, seed: int = 7,
          paths: Paths | None = None):
    """Fit ``model`` on all labelled years, register it as ``foedus-onset-<spec>`` and move the
    ``champion`` alias only if its backtest AP beats the champion's. Returns (run id, Promotion)."""
    from foedus.models.experiment import train_final

    paths = paths or Paths.discover()
    spec = _spec(spec)
    _models([model])
    built, provenance = _tracked_table(spec, paths)
    return train_final(built.table, spec, model, provenance=provenance, root=paths.root, seed=seed)


def compare(spec: LabelSpec | str | None = None, *, last: int = 20, paths: Paths | None = None) -> pd.DataFrame:
    """The latest backtest runs: model, label spec, pooled AP, ROC-AUC, Brier (as the MLflow UI shows)."""
    from foedus.models.experiment import compare_runs
    from foedus.models.tracking import configure

    paths = paths or Paths.discover()
    configure(paths.root)
    return compare_runs(paths.root, None if spec is None else _spec(spec), last)


def run(spec: LabelSpec | str = "atop:any:1", *, models: str | Sequence[str] = DEFAULT_MODELS,
        folds: str | Sequence | None = None, final_model: str = "lightgbm", paths: Paths | None = None,
        show_progress: bool = True, on_model=None) -> dict:
    """The main job, end to end: fetch and verify the raw data, build the feature table, backtest
    every model out of time, train and register the final model (LightGBM), compare."""
    paths = paths or Paths.discover()
    fetch_data(paths=paths, show_progress=show_progress)
    built = build(spec, paths=paths)
    summaries = backtest(spec, models, folds, paths=paths, on_model=on_model)
    run_id, promotion = train(spec, final_model, paths=paths)
    return {"build": built, "backtests": summaries, "train_run": run_id, "promotion": promotion,
            "compare": compare(spec, last=len(summaries), paths=paths)}

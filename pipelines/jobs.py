"""The jobs behind the CLI, as plain functions for notebooks: fetch, status, build, run."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# build, labelled_universe, BuildResult and feature_catalogue live in foedus.features.build;
# they are re-exported here as the notebook API and for the CLI.
from foedus.features.build import BuildResult, build, build_sources, feature_catalogue, labelled_universe  # noqa: F401
from foedus.features.fetch import Fetched, RawState, fetch, raw_state
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec
from foedus.features.labels import as_label_spec as _spec
from foedus.features.manifest import load_manifest
from foedus.features.readers import load_source, source_years
from foedus.features.summary import threat_onset_summary
from foedus.features.years import FIRST_YEAR, LAST_YEAR, check_span
from foedus.infra.config import Paths
from foedus.infra.errors import InvalidInput
from foedus.infra.memory import release_free_memory
from foedus.store import configure_tracking


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


def describe(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, paths: Paths | None = None) -> pd.DataFrame:
    """Onset rate overall and within ``shared_threat == 1`` at-risk dyad-years, by era.

    Builds the table first if needed (an identical earlier build is reused).
    """
    return threat_onset_summary(build(spec, paths=paths).table)


def _state_names(paths: Paths) -> dict[int, str]:
    from foedus.features.states import load_registry

    return load_registry(paths).names()


@dataclass(frozen=True)
class BacktestRequest:
    """Backtests of some models on one label spec's table (its present-day model's for
    ``for_year``), as one job asks for them: several requests fan out together."""

    spec: LabelSpec
    models: tuple[str, ...]
    folds: tuple  # of foedus.models.folds.Fold
    for_year: int | None = None
    log: bool = True  # log each model's backtest to MLflow (a staleness job's fresh profile is not)
    log_models: bool = True  # with each fold's fitted model
    sweep: bool = False  # LightGBM's folds with their sweep studies' best parameters (foedus sweep)
    params: Mapping = field(default_factory=dict)  # the model's given hyperparameters: no tuning
    first: int = FIRST_YEAR  # the table's years: every fold trains on the years from first
    last: int = LAST_YEAR


def check_folds_inside(folds: Sequence, first: int, last: int) -> None:
    """Every fold inside the table's years ``first..last``, with a year to train on before it."""
    for fold in folds:
        if not (first < fold.first and fold.last <= last):
            raise InvalidInput(f"fold {fold.name} is not inside the table's years {first}-{last} with a year before "
                               f"it to train on: give folds within {first + 1}-{last}, or other --first/--last")


def backtest_request(spec: LabelSpec | str, models: str | Sequence[str] | None = None,
                      folds: str | Sequence | None = None, *, for_year: int | None = None, log: bool = True,
                      log_models: bool = True, sweep: bool = False, params: Mapping | None = None,
                      first: int | None = None, last: int | None = None) -> BacktestRequest:
    """A ``BacktestRequest`` from what users type: models as ``"a,b"`` (default: every model of
    the catalogue), folds as ``"1946-1969,1970-1989"`` (default: the five blocks of
    ``DEFAULT_FOLDS``, or ``PRESENT_FOLDS`` for a present-day model). ``params``: one model's
    hyperparameters (``foedus.models.catalogue``), given to every fold instead of tuned there.
    ``first``/``last``: the table's years (default all, 1816-2024), e.g. 1946-2024 for models
    of the post-war system only; every fold must lie inside them."""
    from foedus.models.catalogue import MODELS, model_names
    from foedus.models.folds import DEFAULT_FOLDS, PRESENT_FOLDS, parse_folds

    default = DEFAULT_FOLDS if for_year is None else PRESENT_FOLDS
    folds = default if folds is None else (parse_folds(folds) if isinstance(folds, str) else tuple(folds))
    names = model_names(tuple(MODELS) if models is None else models)
    if sweep and (for_year is not None or any(name != "lightgbm" for name in names)):
        raise InvalidInput("--sweep backtests lightgbm only (--models lightgbm), without --for-year: the sweeps "
                           "tune LightGBM on the fresh tables")
    first, last = _span(first, last, sweep)
    if params and (len(names) != 1 or sweep):
        raise InvalidInput(f"given hyperparameters are one model's: ask for one model, not {', '.join(names)}"
                           + (", and not with --sweep" if sweep else ""))
    check_folds_inside(folds, first, last)
    return BacktestRequest(_spec(spec), tuple(names), folds, None if for_year is None else int(for_year), log,
                           log_models, sweep, dict(params or {}), first, last)


def _span(first: int | None, last: int | None, sweep: bool = False) -> tuple[int, int]:
    """The table's years as given, each default the whole of 1816-2024, checked; the sweeps'
    studies are the whole table's, so a sweep's parameters go with no other span."""
    span = check_span(FIRST_YEAR if first is None else first, LAST_YEAR if last is None else last)
    if sweep and span != (FIRST_YEAR, LAST_YEAR):
        raise InvalidInput("--sweep uses the sweeps of the whole table: not with --first/--last")
    return span


def backtest_key(plan, provenance: dict, log_models: bool) -> str:
    """The reuse key of one model's backtest (``foedus.models.reuse``): the table's build key
    and staleness profile, the model, its hyperparameters (given, or swept per fold; else
    tuned), the seed, the folds and the label delay, and whether its fold models are logged."""
    from foedus.models.reuse import reuse_key

    return reuse_key("backtest", build_key=provenance["build_key"], label_spec=plan.label_spec, model=plan.model,
                     params=dict(plan.params), fold_params={k: dict(v) for k, v in plan.fold_params.items()},
                     sweep=plan.sweep, seed=plan.seed, folds=[f.name for f in plan.folds], label_delay=plan.horizon,
                     profile=(provenance.get("vintage") or {}).get("profile"), log_models=log_models)


def run_backtests(requests: Sequence[BacktestRequest], *, seed: int | None = None, paths: Paths | None = None,
                  on_model=None, jobs: int | None = None, scheduler: str | None = None, ex=None,
                  force: bool = False, finals: dict[int, str] | None = None, on_final=None,
                  keep_forecasts: bool = True) -> list[list]:
    """Every request's backtests, all (label spec, table, model, fold) tasks fanned out at once
    through one executor (``foedus.models.executor``: ``jobs`` processes here, default one per
    core, 1 for serial; or the Dask cluster at ``scheduler`` / ``DASK_SCHEDULER_ADDRESS``; or
    ``ex``, one already open). The tracking store and the cluster are checked first, then each
    table is built if needed, then the tasks run; only this process logs to MLflow, each
    model's backtest as soon as its folds are done (in request and model order when serial).
    Returns each request's ``BacktestResult`` list, in model order; ``on_model(result)`` is
    called as each is logged.

    A logged backtest whose inputs are identical to an earlier finished one's (``backtest_key``)
    is not computed again: that run is read back (its ``reused`` says which), unless ``force``.

    ``finals``: {request index: model name} whose final model (every labelled year, tuned as
    ``train`` tunes it) is fitted in the same fan-out when that request's backtest of the model
    is computed (a reused backtest's final model is reused too); ``on_final(index, FinalFit)`` is
    called as each is fitted, for ``train(fitted=...)``.

    ``keep_forecasts=False``: each logged result is kept ``released()`` once ``on_model`` has
    seen it (its forecasts are in its run): a job of many backtests holds no gigabytes of them."""
    from foedus.features.build import ensure_built
    from foedus.models.backtest import BacktestPlan, FinalTask, TableRef, load_table
    from foedus.models.backtest import run_backtests as fan_out
    from foedus.models.executor import executor
    from foedus.models.experiment import log_backtest
    from foedus.models.folds import label_delay
    from foedus.models.reuse import find_backtest, load_backtest
    from foedus.models.seed import DEFAULT_SEED
    from foedus.models.tracking import experiment_id
    from foedus.sweeps import swept_fold_params

    paths = paths or Paths.discover()
    seed = DEFAULT_SEED if seed is None else seed
    configure_tracking(paths)
    with (nullcontext(ex) if ex is not None else executor(jobs, scheduler)) as ex:
        state_names = _state_names(paths)
        plans, owners = [], []  # each plan's request, its table's provenance and the invocation
        for i, request in enumerate(requests):
            path, provenance = ensure_built(request.spec, for_year=request.for_year, first=request.first,
                                            last=request.last, paths=paths)
            table = TableRef.of(path, provenance)
            invocation = hashlib.sha256(f"{request}{seed}{time.time()}".encode()).hexdigest()[:12]
            delay = label_delay(request.spec, provenance)
            fold_params, studies = (swept_fold_params(request.spec, request.folds, provenance, paths)
                                    if request.sweep else ({}, None))
            for name in request.models:
                plans.append(BacktestPlan(table, name, request.folds, delay, seed, dict(request.params),
                                          names=state_names, label_spec=str(request.spec), fold_params=fold_params,
                                          sweep=studies))
                owners.append((i, provenance, invocation))
        done: dict[int, object] = {}
        keys = [backtest_key(plan, owners[k][1], requests[owners[k][0]].log_models) for k, plan in enumerate(plans)]
        for k, plan in enumerate(plans):
            request = requests[owners[k][0]]
            if request.log and not force:
                found = find_backtest(experiment_id(request.spec, paths.root, request.for_year is not None), keys[k],
                                      len(plan.folds), request.log_models)
                if found is not None:
                    done[k] = load_backtest(found)
                    if on_model is not None:
                        on_model(done[k])
        todo = [k for k in range(len(plans)) if k not in done]
        final_tasks = [(i, FinalTask(plans[k].table, name, plans[k].horizon, seed))
                       for i, name in (finals or {}).items()
                       for k in todo if owners[k][0] == i and plans[k].model == name]
        for j, result in fan_out([plans[k] for k in todo], ex, [t for _, t in final_tasks],
                                 lambda j, fit: on_final(final_tasks[j][0], fit)):  # each model when its folds are done
            k = todo[j]
            plan, (i, provenance, invocation) = plans[k], owners[k]
            request = requests[i]
            if request.log:
                result.run_id = log_backtest(result, load_table(plan.table), request.spec, provenance=provenance,
                                             root=paths.root, invocation=invocation, log_models=request.log_models,
                                             reuse_key=keys[k])
            if on_model is not None:
                on_model(result)
            done[k] = result if keep_forecasts or result.run_id is None else result.released()
            # what logging allocated (forecast frames, figures, files) goes back to the system
            release_free_memory(cycles=True)
    results: list[list] = [[] for _ in requests]
    for k in range(len(plans)):  # in request and model order, however they finished
        results[owners[k][0]].append(done[k])
    return results


def backtest(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, models: str | Sequence[str] | None = None,
             folds: str | Sequence | None = None, *, seed: int | None = None, for_year: int | None = None,
             paths: Paths | None = None, log_models: bool = True, on_model=None, jobs: int | None = None,
             scheduler: str | None = None, sweep: bool = False, force: bool = False,
             params: Mapping | None = None, first: int | None = None, last: int | None = None) -> list:
    """Out-of-time backtest of each model (default: every model of ``foedus.models.catalogue``),
    tracked in MLflow (one parent run per model).

    ``folds`` is a list of ``Fold`` or text like ``"1946-1969,1970-1989"`` (default: the five
    blocks of ``foedus.models.folds.DEFAULT_FOLDS``). Each model's backtest is computed first
    (one pure task per model and fold, ``foedus.models.backtest``, no MLflow), then logged.
    Returns one ``BacktestResult`` per model, with its ``run_id``; ``on_model(result)`` is
    called as each finishes (the CLI prints progress with it).

    ``jobs``: worker processes on this machine (default: one per core; 1 runs serially in this
    process); ``scheduler``: a Dask scheduler's address instead (default
    ``DASK_SCHEDULER_ADDRESS``). The numbers are the same whatever runs the tasks.

    ``for_year``: backtest the present-day model for that target year instead
    (``foedus.features.staleness``): its step-shifted table, trained only on the onsets known
    at each block's vintage (``folds.label_delay``); default folds 1990-2004 and 2005-2018.

    ``sweep``: LightGBM only; each fold is fitted with the best parameters of the sweep study
    of the years before it (``sweep``, ``foedus.models.sweep``) instead of its own grid tuning,
    and the run is tagged ``hyperparameters = sweep``.

    ``params``: one model's hyperparameters (e.g. ``{"num_leaves": 15, "n_rounds": 200}`` for
    lightgbm), given to every fold instead of tuned on its training years.

    ``first``/``last``: the table's years (default all): e.g. ``first=1946`` backtests models
    of the post-war system, trained on no year before 1946; its runs are tagged ``years``.

    A model whose backtest inputs are identical to an earlier finished backtest's (table, code,
    hyperparameters, seed, folds) is read from that run, not computed (its result's ``reused``
    says which); ``force`` computes every model again.
    """
    request = backtest_request(spec, models, folds, for_year=for_year, log_models=log_models, sweep=sweep,
                               params=params, first=first, last=last)
    return run_backtests([request], seed=seed, paths=paths, on_model=on_model, jobs=jobs, scheduler=scheduler,
                         force=force)[0]


def train(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, model: str = "lightgbm", *, seed: int | None = None,
          for_year: int | None = None, paths: Paths | None = None, on_backtest=None, sweep: bool = False,
          force: bool = False, fitted=None, first: int | None = None, last: int | None = None):
    """Fit ``model`` on all labelled years, register it as ``foedus-onset-<spec>`` and move the
    ``champion`` alias only if its backtest AP beats the champion's. Returns (run id, Promotion).

    ``for_year``: the present-day model for that target year, registered as
    ``foedus-onset-<spec>-for<year>``; if that year has no backtest of ``model`` yet, it is
    backtested first (``backtest(..., for_year=...)``, whose result goes to ``on_backtest``):
    the champion rule needs its average precision.

    ``sweep``: LightGBM fitted with the best parameters of the sweep study of every labelled
    year (``foedus sweep``, on this very table) instead of its grid tuning; judged by the
    newest backtest run with ``sweep`` too.

    ``first``/``last``: fitted on the labelled years of the table of those years only (default
    all), and judged by the newest backtest on a table of the same years.

    A final model whose inputs are identical to an earlier one's (table, code, hyperparameters,
    seed, the backtest it is judged by) is not fitted again: that run and version are returned
    (the Promotion's ``reused``); ``force`` fits it again. ``fitted``: the model already fitted
    on this table (``run_backtests``'s ``finals``), logged and registered instead of a new fit."""
    from foedus.models.catalogue import model_spec
    from foedus.models.experiment import judging_backtest, latest_backtest, train_final
    from foedus.models.seed import DEFAULT_SEED
    from foedus.sweeps import swept_final_params

    paths = paths or Paths.discover()
    spec = _spec(spec)
    model_spec(model)
    if sweep and (model != "lightgbm" or for_year is not None):
        raise InvalidInput("--sweep trains lightgbm only (--model lightgbm), without --for-year")
    first, last = _span(first, last, sweep)
    configure_tracking(paths)
    if for_year is None:  # no backtest to be judged by: said before the table is built or read
        judging_backtest(spec, model, paths.root, sweep=sweep, years=(first, last))
    built = build(spec, first, last, for_year=for_year, paths=paths)  # an identical build is reused
    provenance = json.loads(built.path.with_suffix(".json").read_text())
    params, study = swept_final_params(spec, provenance, paths) if sweep else (None, None)
    if for_year is not None and latest_backtest(spec, model, paths.root, for_year, years=(first, last)) is None:
        backtest(spec, [model], seed=seed, for_year=for_year, paths=paths, on_model=on_backtest, force=force,
                 first=first, last=last)
    try:
        return train_final(built.table, spec, model, provenance=provenance, root=paths.root,
                           seed=DEFAULT_SEED if seed is None else seed, params=params, sweep=study, force=force,
                           fitted=fitted)
    finally:
        del built
        release_free_memory(cycles=True)  # the table and its copies, freed: the next train starts from less


def compare(spec: LabelSpec | str | None = None, *, last: int = 20, paths: Paths | None = None) -> pd.DataFrame:
    """The latest backtest runs: model, label spec, pooled AP, ROC-AUC, Brier (as the MLflow UI shows)."""
    from foedus.models.experiment import compare_runs
    from foedus.models.tracking import configure

    paths = paths or Paths.discover()
    configure(paths.root)
    return compare_runs(paths.root, None if spec is None else _spec(spec), last)


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
        keys, origin = build_sources(_spec(spec), first, last, paths)
    return Cited(sources=keys, references=citations_for(keys, paths), origin=origin)


def latest_skill(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, model: str = "lightgbm", *,
                 paths: Paths | None = None) -> pd.DataFrame:
    """The table of the latest ``skill_by_staleness`` run of ``model`` under ``spec``."""
    import mlflow
    from foedus.infra.errors import FoedusError
    from foedus.models.tracking import configure, experiment_id
    from mlflow.tracking import MlflowClient

    paths = paths or Paths.discover()
    spec = _spec(spec)
    configure(paths.root)
    runs = MlflowClient().search_runs(
        [experiment_id(spec, paths.root, present=True)],
        filter_string=f"tags.kind = 'skill' and tags.model = '{model}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise FoedusError(f"no skill-by-staleness run of {model} for {spec}: run `foedus staleness -l {spec} "
                          f"--model {model}` first")
    local = mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id,
                                                artifact_path="skill/skill_by_staleness.csv")
    return pd.read_csv(local, dtype={"target": str})


def skill_by_staleness(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, targets: Sequence[int] | None = None, *,
                       model: str = "lightgbm", folds: str | Sequence | None = None, seed: int | None = None,
                       paths: Paths | None = None, on_profile=None, jobs: int | None = None,
                       scheduler: str | None = None) -> pd.DataFrame:
    """Backtest ``model`` for every staleness profile on the same folds (default 1990-2004 and
    2005-2018) and return the decay table (``foedus.models.skill``): ``fresh`` first, then each
    target year in ``targets`` (default: the first year past the label data through next year).

    Each target's backtest is logged as that present-day model's backtest (what ``train
    --for-year`` is judged by); the table and its plot are logged as a ``skill`` run of the
    ``foedus-present-<spec>`` experiment. ``on_profile(row)`` is called as each finishes.
    Every profile's folds run at once (``jobs`` / ``scheduler``: see ``backtest``).
    """
    import mlflow
    from foedus.features.build import ensure_built
    from foedus.models import plots
    from foedus.models.catalogue import model_spec
    from foedus.models.executor import executor
    from foedus.models.folds import PRESENT_FOLDS, parse_folds
    from foedus.models.recovery import owner_tags
    from foedus.models.seed import DEFAULT_SEED
    from foedus.models.skill import markdown, skill_row, skill_table
    from foedus.models.tracking import environment, experiment_id, log_frame

    paths = paths or Paths.discover()
    spec = _spec(spec)
    model_spec(model)
    seed = DEFAULT_SEED if seed is None else seed
    folds = PRESENT_FOLDS if folds is None else (parse_folds(folds) if isinstance(folds, str) else tuple(folds))
    fresh = backtest_request(spec, [model], folds, log=False)
    label_key = spec.alliance_source.source_key
    configure_tracking(paths)  # an unreachable tracking server or cluster fails before any build
    with executor(jobs, scheduler) as ex:
        if targets is None:
            from foedus.features.years import NEXT_YEAR

            coverage = ensure_built(spec, paths=paths)[1]["coverage"]
            targets = range(int(coverage[label_key][1]) + 1, NEXT_YEAR + 1)
        # every profile's backtest at once: the fresh one (not logged) and each target year's
        # present-day model (logged: what `train --for-year` is judged by)
        requests = [fresh, *(backtest_request(spec, [model], folds, for_year=int(t), log_models=False)
                             for t in targets)]
        rows = []

        def each(result) -> None:
            target = requests[len(rows)].for_year
            vintage = None if target is None else ensure_built(spec, for_year=target, paths=paths)[1]["vintage"]
            rows.append(skill_row(result, vintage, label_key))
            if on_profile is not None:
                on_profile(rows[-1])

        run_backtests(requests, seed=seed, paths=paths, on_model=each, ex=ex)
    table = skill_table(rows)
    mlflow.set_experiment(experiment_id=experiment_id(spec, paths.root, present=True))
    tags = {"kind": "skill", "model": model, "label_spec": str(spec), **environment().tags(), **owner_tags()}
    with mlflow.start_run(run_name=f"{model} skill by staleness", tags=tags):
        mlflow.log_params({"model": model, "label_spec": str(spec), "seed": seed,
                           "folds": ",".join(f.name for f in folds), "targets": ",".join(table["target"])})
        for row in rows:
            mlflow.log_metrics({f"{k}_{row['target']}": float(row[k]) for k in
                                ("continuing_dyad_average_precision", "median_onset_percentile", "brier")
                                if row[k] == row[k]})
        log_frame(table, "skill/skill_by_staleness.csv")
        mlflow.log_text(markdown(table, spec), "skill/skill_by_staleness.md")
        mlflow.log_figure(plots.skill_by_staleness({str(spec): table}), "skill/skill_by_staleness.png")
    return table

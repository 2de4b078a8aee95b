"""Out-of-time backtests as pure computation: fit on the past, forecast each test block, score,
slice and explain. Nothing here touches MLflow (``foedus.models.experiment`` logs a result).

One fold is one pure step, ``run_fold``: its training and test slices, a model name, its
hyperparameters and a seed in; a ``FoldResult`` out (the fitted model, forecasts, metrics and
the threat-without-alliance lists). The slices are all it reads, so a fold can run anywhere
the two frames can be sent. ``run_backtest`` runs every fold of one model on a table in memory
and pools them into a ``BacktestResult`` (``assemble``).

``run_backtests`` does the same for many models and tables at once through an executor
(``foedus.models.executor``: this process, local worker processes or a Dask cluster): one
``FoldTask`` per (table, model, fold). A task names its table by path and SHA-256
(``TableRef``), never carries it: each process reads a table once and verifies it
(``load_table``). The results are assembled here, by the same ``assemble``.
"""

from __future__ import annotations

import hashlib
import io
import math
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from foedus.features.build import read_built_table
from foedus.features.labels import labelled
from foedus.features.universe import DYAD_YEAR
from foedus.features.years import era_of
from foedus.infra.errors import DataError, InvalidInput
from foedus.infra.memory import release_free_memory
from foedus.models import explain
from foedus.models.catalogue import make_model, model_spec, tune
from foedus.models.estimators import feature_columns
from foedus.models.folds import DEFAULT_FOLDS, Fold, split
from foedus.models.metrics import score
from foedus.models.seed import DEFAULT_SEED
from threadpoolctl import threadpool_limits

# Columns kept beside each forecast so that slices and explanations need no second look-up.
PREDICTION_KEYS = [*DYAD_YEAR, "label", "probability"]
SLICE_COLUMNS = ["shared_threat", "major_minor", "n_major", "contig_type", "new_dyad"]
SHAP_SAMPLE = 20_000  # test rows of the last fold whose contributions feed the SHAP summary


@dataclass
class FoldResult:
    fold: Fold
    model: object  # the fitted estimator
    predictions: pd.DataFrame  # PREDICTION_KEYS + SLICE_COLUMNS, one row per test dyad-year
    metrics: dict[str, float]
    train_rows: int
    train_years: tuple[int, int]
    threat_without_alliance: pd.DataFrame = field(default_factory=pd.DataFrame)  # with a fold column
    onsets_without_threat: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: dict = field(default_factory=dict)  # the hyperparameters it was fitted with (given or tuned)
    tuning: object | None = None  # foedus.models.tuning.Tuning when they were tuned on the training years
    executed_by: dict = field(default_factory=dict)  # where it ran (executor.identity): fold-run tags
    ran: tuple[float, float] = (0.0, 0.0)  # when it ran there: start and end, seconds since the epoch
    shap_sample: pd.DataFrame | None = None  # the backtest's SHAP sample, when this fold's task computed it


def slices(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """The subsets the literature cares about, as boolean masks over ``predictions``."""
    out = {
        "shared_threat": (predictions["shared_threat"] == 1).to_numpy(),
        "major_minor": (predictions["major_minor"] == 1).to_numpy(),
        "major_pair": (predictions["n_major"] == 2).to_numpy(),
        "contiguous": (predictions["contig_type"] <= 5).to_numpy(),  # land or water within 400 miles
        # pairs that were already system dyads in t-1: without the alliances new states bring along
        "continuing_dyad": (predictions["new_dyad"] == 0).to_numpy(),
    }
    eras = era_of(predictions["year"])
    for era in eras.cat.categories:
        out[f"era_{era}"] = (eras == era).to_numpy()
    return out


def slice_metrics(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    result = {}
    for name, mask in slices(predictions).items():
        if mask.any():
            part = predictions[mask]
            result[name] = score(part["label"], part["probability"], part["year"])
    return result


def fold_slices(table: pd.DataFrame, fold: Fold, horizon: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (training, test) rows of ``table`` for one fold (see ``folds.split``)."""
    train, test = split(table, fold, horizon)
    if not train.any() or not test.any():
        raise InvalidInput(f"fold {fold.name} has {train.sum()} training and {test.sum()} test dyad-years: "
                           "choose folds inside the label source's coverage")
    return table.loc[train], table.loc[test]


def chosen_params(train: pd.DataFrame, model_name: str, params: Mapping | None, *, seed: int,
                  horizon: int) -> tuple[dict, object | None]:
    """``params`` if given, else what the model's own tuning chooses on ``train`` (and the tuning)."""
    if params:
        return dict(params), None
    tuning = tune(model_name, train, seed=seed, horizon=horizon)
    return (dict(tuning.params), tuning) if tuning is not None else ({}, None)


def one_blas_thread():
    """One BLAS thread while a model is fitted and forecasts: OpenBLAS splits its sums by thread
    count, and the logits' solver (lbfgs) then stops elsewhere; one fold's forecasts were up to
    0.013 apart between 1 and 2 threads. With one thread the numbers depend neither on the
    machine's cores nor on the executor. (LightGBM, fitted ``deterministic``, and
    HistGradientBoosting gave identical forecasts on 1 and 2 threads: they keep theirs.)"""
    return threadpool_limits(limits=1, user_api="blas")


def run_fold(train: pd.DataFrame, test: pd.DataFrame, fold: Fold, model_name: str, *, seed: int = DEFAULT_SEED,
             params: Mapping | None = None, names: Mapping[int, str] | None = None, horizon: int = 1) -> FoldResult:
    """Fit ``model_name`` on ``train``, forecast ``test`` and explain the forecasts. Pure: the
    two slices, the model's name, hyperparameters (tuned on ``train`` when none are given),
    seed and horizon are all it reads."""
    y_train = train["onset"].astype(int).to_numpy()
    if y_train.sum() == 0:
        raise InvalidInput(f"fold {fold.name}: no onset in the training years")
    with one_blas_thread():
        params, tuning = chosen_params(train, model_name, params, seed=seed, horizon=horizon)
        model = make_model(model_name, seed=seed, **params).fit(train, y_train)
        probability = model.predict_proba(test)[:, 1]
        predictions = test[[*DYAD_YEAR, *SLICE_COLUMNS]].assign(
            label=test["onset"].astype(int).to_numpy(), probability=probability)
        predictions = predictions[PREDICTION_KEYS + SLICE_COLUMNS].reset_index(drop=True)
        twa, owt = explain.explain_fold(predictions.assign(fold=fold.name), test, model, names)
    years = train["year"]
    return FoldResult(fold, model, predictions, score(predictions["label"], probability, predictions["year"]),
                      len(train), (int(years.min()), int(years.max())), twa, owt, params, tuning)


def fit_fold(table: pd.DataFrame, model_name: str, fold: Fold, horizon: int = 1, seed: int = DEFAULT_SEED,
             names: Mapping[int, str] | None = None, **params) -> FoldResult:
    """``run_fold`` on the fold's slices of the whole table."""
    train, test = fold_slices(table, fold, horizon)
    return run_fold(train, test, fold, model_name, seed=seed, params=params, names=names, horizon=horizon)


def pooled(results: Sequence[FoldResult]) -> tuple[pd.DataFrame, dict[str, float]]:
    """All folds' forecasts together, and their metrics (pooled metrics punish level shifts
    between eras; report them beside the per-fold ones)."""
    predictions = pd.concat([r.predictions.assign(fold=r.fold.name) for r in results], ignore_index=True)
    return predictions, score(predictions["label"], predictions["probability"], predictions["year"])


def mean_fold_average_precision(results: Sequence[FoldResult]) -> float:
    """Mean of the folds' AP, over the folds that have one (a fold without onsets has none)."""
    values = [r.metrics["average_precision"] for r in results if not math.isnan(r.metrics["average_precision"])]
    return sum(values) / len(values) if values else float("nan")


@dataclass
class BacktestResult:
    """Everything one model's backtest computed; ``run_id`` is set once it is logged."""

    model: str
    label_spec: str
    seed: int
    params: dict
    folds: list[FoldResult]
    predictions: pd.DataFrame  # every fold's forecasts, with a fold column
    pooled: dict[str, float]
    slices: dict[str, dict[str, float]]
    threat_without_alliance: pd.DataFrame
    onsets_without_threat: pd.DataFrame
    shap_sample: pd.DataFrame | None  # contributions on a sample of the last fold's test rows
    run_id: str | None = None
    sweep: dict | None = None  # the sweep studies whose best parameters each fold used (by fold)
    reused: object | None = None  # foedus.models.reuse.Reused: read from an earlier identical run, not computed

    @property
    def mean_fold_average_precision(self) -> float:
        return mean_fold_average_precision(self.folds)

    @property
    def formation_by_era(self) -> pd.DataFrame:
        return explain.formation_by_era(self.predictions)

    @property
    def reasons(self) -> pd.DataFrame:
        return explain.reasons_summary(self.threat_without_alliance)

    def released(self) -> BacktestResult:
        """This result without its forecasts, SHAP sample and fitted fold models (its metrics,
        slices, parameters and threat lists kept), for a caller that keeps it after it is
        logged: its run holds them (``predictions/``, ``shap/``, the fold runs' models)."""
        folds = [replace(f, model=None, predictions=None, shap_sample=None) for f in self.folds]
        return replace(self, folds=folds, predictions=None, shap_sample=None)

    def report(self) -> str:
        """The threat-without-alliance report in Markdown."""
        return explain.markdown_report(self.predictions, self.threat_without_alliance, self.onsets_without_threat,
                                       title=f"Threat without alliance: {self.model}, {self.label_spec}")


def assemble(table: pd.DataFrame, model_name: str, results: Sequence[FoldResult], horizon: int = 1, *,
             seed: int = DEFAULT_SEED, params: Mapping | None = None, label_spec: str = "") -> BacktestResult:
    """One model's ``BacktestResult`` from its folds' results (in fold order) on ``table``: the
    pooled forecasts and metrics, the slices, the threat-without-alliance lists and the SHAP
    sample of the last fold."""
    predictions, pooled_metrics = pooled(results)
    shap_sample = results[-1].shap_sample
    if shap_sample is None:
        shap_sample = shap_of(table, results[-1], horizon, seed)
    return BacktestResult(
        model=model_name, label_spec=label_spec, seed=seed, params=dict(params or {}), folds=list(results),
        predictions=predictions, pooled=pooled_metrics, slices=slice_metrics(predictions),
        threat_without_alliance=pd.concat([r.threat_without_alliance for r in results], ignore_index=True),
        onsets_without_threat=pd.concat([r.onsets_without_threat for r in results], ignore_index=True),
        shap_sample=shap_sample)


def shap_of(table: pd.DataFrame, result: FoldResult, horizon: int = 1, seed: int = DEFAULT_SEED) -> pd.DataFrame | None:
    """SHAP contributions of the fold's model on ``SHAP_SAMPLE`` of its test rows (drawn with
    ``seed``), for a model that has them; else None. A backtest's summary takes the last fold's."""
    if not hasattr(result.model, "contributions"):
        return None
    _, test = fold_slices(table, result.fold, horizon)
    sample = test.sample(n=min(SHAP_SAMPLE, len(test)), random_state=seed)
    return result.model.contributions(sample, reference=test)


def run_backtest(table: pd.DataFrame, model_name: str, folds: Sequence[Fold] = DEFAULT_FOLDS, horizon: int = 1, *,
                 seed: int = DEFAULT_SEED, params: Mapping | None = None, names: Mapping[int, str] | None = None,
                 label_spec: str = "") -> BacktestResult:
    """Backtest ``model_name`` on ``folds`` of ``table``, in this process: each fold trains
    strictly on earlier years."""
    from foedus.models.executor import identity

    results = [fit_fold(table, model_name, fold, horizon, seed, names, **(params or {})) for fold in folds]
    for result in results:
        result.executed_by = identity()
    return assemble(table, model_name, results, horizon, seed=seed, params=params, label_spec=label_spec)


# --- many backtests through an executor ---------------------------------------------------


@dataclass(frozen=True)
class TableRef:
    """A built table as tasks name it: its file (the same path on every worker: a shared
    filesystem for a cluster) and the SHA-256 its sidecar records."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path, provenance: dict) -> TableRef:
        """The table at ``path`` whose sidecar is ``provenance`` (what ``ensure_built`` returns)."""
        return cls(str(Path(path).resolve()), provenance["table"]["sha256"])


# Tables this process has read, newest last. Two: the labels of ``foedus run`` are backtested
# side by side; a third (a staleness profile's) replaces the oldest. About 0.4 GB each.
KEPT_TABLES = 2
_tables: OrderedDict[TableRef, pd.DataFrame] = OrderedDict()


def remember(ref: TableRef, table: pd.DataFrame) -> None:
    """Keep ``table`` as the one ``ref`` names in this process, forgetting the oldest beyond
    ``KEPT_TABLES``."""
    _tables[ref] = table
    _tables.move_to_end(ref)
    _forget_oldest(KEPT_TABLES)


def _forget_oldest(keep: int) -> None:
    if len(_tables) > keep:
        while len(_tables) > keep:
            _tables.popitem(last=False)
        release_free_memory()


def forget_tables() -> None:
    """Forget every table this process read for its tasks (``load_table``): after a fan-out,
    for a process that goes on without them; their memory goes back to the system."""
    _tables.clear()
    release_free_memory(cycles=True)


def load_table(ref: TableRef, keep: int = KEPT_TABLES) -> pd.DataFrame:
    """The table ``ref`` names, read once per process from the very bytes whose SHA-256 was
    checked: a table rebuilt or damaged since the backtest was planned is refused, not used.
    ``keep``: how many tables this process holds after it, this one included (1: only this)."""
    if ref in _tables:
        _tables.move_to_end(ref)
        _forget_oldest(keep)
        return _tables[ref]
    _forget_oldest(keep - 1)  # before the read: never one table more than kept
    host = socket.gethostname()
    try:
        data = Path(ref.path).read_bytes()
    except OSError as exc:
        raise DataError(f"{ref.path} cannot be read on {host} ({exc.strerror}): every worker needs the table at "
                        "the same path (a shared filesystem)") from exc
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise DataError(f"{ref.path} on {host} is not the table this backtest was planned with (its SHA-256 "
                        "differs): it was rebuilt or damaged meanwhile; run the backtest again")
    table = read_built_table(io.BytesIO(data))
    remember(ref, table)
    return table


@dataclass(frozen=True)
class FoldTask:
    """One (table, model, fold) of a backtest: what ``run_fold_task`` needs, small enough to send."""

    table: TableRef
    model: str
    fold: Fold
    horizon: int = 1
    seed: int = DEFAULT_SEED
    params: Mapping = field(default_factory=dict)
    names: Mapping[int, str] | None = None
    shap: bool = False  # also the backtest's SHAP sample (its last fold): computed where the model is


def run_fold_task(task: FoldTask) -> FoldResult:
    """``fit_fold`` on the table the task names (read once per process), wherever it runs; the
    result records where that was."""
    from foedus.models.executor import identity

    started = time.time()
    table = load_table(task.table)
    result = fit_fold(table, task.model, task.fold, task.horizon, task.seed, task.names, **task.params)
    if task.shap:
        result.shap_sample = shap_of(table, result, task.horizon, task.seed)
    result.executed_by, result.ran = identity(), (started, time.time())
    release_free_memory()  # the fold's slices and fits, freed: back to the system, not kept by the heap
    return result


@dataclass(frozen=True)
class BacktestPlan:
    """One model's backtest on one built table, before it runs: ``run_backtest``'s arguments
    with the table named, not held."""

    table: TableRef
    model: str
    folds: tuple[Fold, ...] = DEFAULT_FOLDS
    horizon: int = 1
    seed: int = DEFAULT_SEED
    params: Mapping = field(default_factory=dict)
    names: Mapping[int, str] | None = None
    label_spec: str = ""
    # a fold's own parameters (by fold name, e.g. its sweep study's best), instead of ``params``
    fold_params: Mapping[str, Mapping] = field(default_factory=dict)
    sweep: dict | None = None  # the sweep studies fold_params come from (by fold name)

    def params_of(self, fold: Fold) -> dict:
        return dict(self.fold_params.get(fold.name, self.params))

    def tasks(self) -> list[FoldTask]:
        return [FoldTask(self.table, self.model, fold, self.horizon, self.seed, self.params_of(fold), self.names,
                         shap=fold == self.folds[-1]) for fold in self.folds]

    def priority(self, fold: Fold) -> int:
        """Longer tasks first: a tuned model's folds (LightGBM's tuning is most of a backtest's
        time), and within a model the later folds, which train on more years."""
        return (10_000 if model_spec(self.model).tune is not None and not self.params_of(fold) else 0) + fold.first


@dataclass(frozen=True)
class FinalTask:
    """A final model (``fit_final``) of the table ``table`` names, as a task: fitted beside the
    backtests' folds instead of after them."""

    table: TableRef
    model: str
    horizon: int = 1
    seed: int = DEFAULT_SEED
    params: Mapping | None = None

    # the longest task there is (tuned on every labelled year): started first
    priority: ClassVar[int] = 20_000


def run_final_task(task: FinalTask) -> FinalFit:
    """``fit_final`` on the table the task names, wherever it runs; the fit comes back without its
    training rows (the caller has the table: ``FinalFit.rows``)."""
    fit = fit_final(load_table(task.table), task.model, seed=task.seed, params=task.params, horizon=task.horizon)
    fit.train = None
    release_free_memory()
    return fit


def run_task(task):
    """A fold's or a final model's task (``run_fold_task``, ``run_final_task``)."""
    return run_final_task(task) if isinstance(task, FinalTask) else run_fold_task(task)


def run_backtests(plans: Sequence[BacktestPlan], ex, finals: Sequence[FinalTask] = (),
                  on_final: Callable[[int, FinalFit], None] | None = None) -> Iterator[tuple[int, BacktestResult]]:
    """Every plan's folds through the executor ``ex`` at once, across models and tables; yields
    (plan index, ``BacktestResult``) as soon as a plan's folds are all done, whichever plan
    that is (so the caller logs one while the workers compute the others; the serial executor
    runs them in plan order). Assembled here, as ``run_backtest`` assembles: the same numbers
    whatever the executor. ``finals``: final models fitted in the same fan-out, each given to
    ``on_final(index, fit)`` when done."""
    tasks = [(k, plan, task) for k, plan in enumerate(plans) for task in plan.tasks()]
    folds: list[dict[int, FoldResult]] = [{} for _ in plans]
    light = all(model_spec(m).light for m in [*(p.model for p in plans), *(f.model for f in finals)])
    # where workers compute, this process assembles (and its caller logs) one table at a time;
    # where it computes too, it keeps what its next tasks read
    keep = KEPT_TABLES if ex.runs_here(len(tasks) + len(finals), light) else 1
    outcomes = ex.imap_unordered(run_task, [task for *_, task in tasks] + list(finals),
                                 [plan.priority(task.fold) for _, plan, task in tasks]
                                 + [final.priority for final in finals], light=light)
    try:
        for i, result in outcomes:
            if i >= len(tasks):
                on_final(i - len(tasks), result)
                continue
            k, plan, _ = tasks[i]
            folds[k][i] = result
            if len(folds[k]) == len(plan.folds):
                results = [folds[k][j] for j in sorted(folds[k])]  # in fold order
                folds[k] = {}
                done = assemble(load_table(plan.table, keep=keep), plan.model, results, plan.horizon, seed=plan.seed,
                                params=plan.params, label_spec=plan.label_spec)
                done.sweep = plan.sweep
                yield k, done
    finally:
        outcomes.close()  # the tasks not done are cancelled if the caller stops or a task failed


@dataclass
class FinalFit:
    """A model fitted on every labelled year (what ``foedus train`` registers)."""

    model_name: str
    model: object
    features: list[str]  # the columns it reads
    train: pd.DataFrame | None  # the labelled rows it was fitted on (None when fitted elsewhere: ``rows``)
    seed: int
    params: dict = field(default_factory=dict)  # given or tuned on the last years, as in each fold
    tuning: object | None = None

    def rows(self, table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | slice]:
        """The labelled rows it was fitted on, as (frame, rows): its own, or ``table``'s labelled
        rows if it came back without them, as a mask rather than a copy (a table is 0.4 GB)."""
        return (self.train, slice(None)) if self.train is not None else (table, labelled(table))


def fit_final(table: pd.DataFrame, model_name: str, *, seed: int = DEFAULT_SEED,
              params: Mapping | None = None, horizon: int = 1) -> FinalFit:
    """Fit ``model_name`` on every labelled at-risk dyad-year of ``table``, tuned by the same
    protocol as each backtest fold when no ``params`` are given. Pure, like ``run_fold``."""
    train = table.loc[labelled(table)]
    with one_blas_thread():
        params, tuning = chosen_params(train, model_name, params, seed=seed, horizon=horizon)
        model = make_model(model_name, seed=seed, **params).fit(train, train["onset"].astype(int).to_numpy())
    return FinalFit(model_name, model, list(getattr(model, "features_", feature_columns(table))), train, seed,
                    params, tuning)

"""Backtests and final models, logged to MLflow.

``log_backtest`` logs one computed ``BacktestResult`` (``foedus.models.backtest``) as a parent
run with a nested run per fold: params, metrics (per fold, pooled, per slice), tags (git
commit, data digest, foedus version), the training data (``mlflow.data``), every fold's
out-of-sample forecasts as Parquet, plots, the threat-without-alliance tables and the fitted
models. It computes nothing the result does not hold. ``train_final`` fits the model on all
labelled years (``backtest.fit_final``, pure) and logs and registers it (see ``registry``).
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from foedus.features.universe import DYAD_YEAR
from foedus.features.years import FIRST_YEAR, LAST_YEAR
from foedus.infra.errors import FoedusError
from foedus.infra.faults import kill_point
from foedus.models import plots, run_view
from foedus.models.backtest import BacktestResult, fit_final, slice_metrics
from foedus.models.catalogue import make_model
from foedus.models.estimators import feature_columns
from foedus.models.folds import label_delay, split
from foedus.models.pyfunc import log_onset_model
from foedus.models.recovery import owner_tags
from foedus.models.registry import Promotion, apply, judge, registered_name, standing
from foedus.models.reuse import REUSE_TAG, find_final, reuse_key, reused
from foedus.models.seed import DEFAULT_SEED
from foedus.models.tracking import (
    EXPERIMENT_PREFIX,
    data_digest,
    environment,
    experiment_id,
    log_frame,
    log_metrics,
)
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema
from mlflow.types.utils import _infer_schema

# The figure a backtest is judged by (the champion rule, `foedus compare`'s first column): pooled
# AP on continuing dyads, pairs that were a system dyad in t-1, so that no entry of a state into
# the system carries the score.
PRIMARY = run_view.PRIMARY
# the ``hyperparameters`` tag of a backtest or final model fitted with a sweep's best parameters
SWEPT = "sweep"


def target_year(provenance: dict) -> int | None:
    """The target year of a present-day model's build (its sidecar's ``vintage``), else None."""
    vintage = provenance.get("vintage")
    return None if vintage is None else int(vintage["target"])


def _present_tags(provenance: dict) -> dict[str, str]:
    vintage = provenance.get("vintage")
    if vintage is None:
        return {}
    return {"for_year": str(vintage["target"]), "staleness_profile": vintage["profile"]}


def table_span(provenance: dict) -> tuple[int, int]:
    """The (first, last) years of a build's table (``foedus backtest --first/--last``)."""
    first, last = provenance.get("years") or (FIRST_YEAR, LAST_YEAR)
    return int(first), int(last)


def years_tag(span: tuple[int, int]) -> str:
    """A run's ``years`` tag: ``"1816-2024"`` for the whole table."""
    return "{}-{}".format(*span)


# what a run from before the ``years`` tag was on
ALL_YEARS = years_tag((FIRST_YEAR, LAST_YEAR))


def run_tags(provenance: dict, kind: str, model: str, spec) -> dict[str, str]:
    """What a run is, what reproduces it (code, data, libraries) and which process owns it."""
    code = provenance.get("code", {})
    return {**_present_tags(provenance),
        "kind": kind,
        "model": model,
        "label_spec": str(spec),
        "foedus_version": str(code.get("foedus_version")),
        "git_commit": str(code.get("git_commit")),
        "data_digest": data_digest(provenance.get("sources", {})),
        "build_key": str(provenance.get("build_key")),
        "years": years_tag(table_span(provenance)),
        **environment().tags(),
        **owner_tags(),
    }


def _log_figure(figure, path: str) -> None:
    mlflow.log_figure(figure, path)  # plots build Figures without pyplot: nothing to close


class _TrainingRows(PandasDataset):
    """A training set as MLflow logs it (name, digest, source, schema, number of rows and cells)
    without its rows: copying a fold's training rows only to log that much took up to a third
    of a gigabyte in the process that logs the folds."""

    def __init__(self, header: pd.DataFrame, rows: int, schema: Schema, source, name: str, digest: str):
        super().__init__(df=header, source=source, targets="onset", name=name, digest=digest)
        self._rows = rows
        self.__dict__["schema"] = schema  # filled in before MLflow's cached_property runs

    @property
    def profile(self) -> dict:
        return {"num_rows": self._rows, "num_elements": self._rows * self._df.shape[1]}


def _log_training_data(table: pd.DataFrame, rows, columns: list[str], name: str, build_key: str | None) -> None:
    """Log ``table``'s ``rows`` (a mask, or ``slice(None)``) and ``columns`` as the run's
    training data, ``year`` once, without copying them."""
    columns = list(dict.fromkeys(columns))  # year is a key and a feature: one column
    n = len(table) if isinstance(rows, slice) else int(np.count_nonzero(rows))
    # MLflow's own digest of a frame maps every cell through Python (measured: 8 s per fold of a
    # million rows, half of a small backtest); the build key and the rows taken identify it as well
    digest = data_digest({"build_key": str(build_key), "name": name, "rows": str(n), "columns": ",".join(columns)})
    header = table.iloc[:0][columns]
    source = mlflow.data.from_pandas(header, targets="onset", name=name, digest=digest).source  # the code's place
    mlflow.log_input(_TrainingRows(header, n, frame_schema(table, rows, columns), source, name, digest),
                     context="training")


def _first_rows(frame: pd.DataFrame, rows, n: int = 5) -> pd.DataFrame:
    """The first ``n`` of ``frame``'s ``rows`` (a mask or a slice), without copying the rest."""
    return frame.iloc[rows][:n] if isinstance(rows, slice) else frame.iloc[np.flatnonzero(rows)[:n]]


def frame_schema(frame: pd.DataFrame, rows=slice(None), columns: list[str] | None = None) -> Schema:
    """MLflow's schema of ``frame``'s ``rows`` and ``columns`` (default: all; each column's
    type, and required where it has no missing value), as MLflow infers it but vectorised and
    a column at a time: MLflow tests each cell for missing in Python (measured: 33 s on the 93
    float columns of a built table's 1.1 million rows, 7.4 s on a fifth of them, in the
    process that logs the folds)."""
    columns = list(frame.columns) if columns is None else columns
    with warnings.catch_warnings():  # its hint on integer columns is for model signatures
        warnings.simplefilter("ignore", UserWarning)
        types = _infer_schema(frame.iloc[:0][columns]).inputs  # from the dtypes alone
    complete = [not frame[c].isna().to_numpy()[rows].any() for c in columns]
    return Schema([ColSpec(type=spec.type, name=spec.name, required=bool(full))
                   for spec, full in zip(types, complete)])


def _sweep_tags(sweep: dict | None) -> dict[str, str]:
    """Tags of a run whose parameters are sweeps' best (``sweep``: the study or studies)."""
    return {} if sweep is None else {"hyperparameters": SWEPT, **{f"sweep_{k}": str(v) for k, v in sweep.items()}}


def hyperparameters(model_name: str, seed: int, params: dict) -> dict:
    """Every hyperparameter the model is fitted with: its defaults overridden by ``params``."""
    fitted = make_model(model_name, seed=seed, **params).get_params()
    return {**{k: v for k, v in fitted.items() if k != "pipeline"}, **params}


# the all-rows metrics that the headline renames (``run_view.headline``)
HEADLINE_SOURCES = ("average_precision", "roc_auc", "brier", "ece")


def _plain(params: dict) -> dict:
    """Hyperparameters as JSON values (anything else as its text)."""
    return {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v) for k, v in params.items()}


def _config(result: BacktestResult, features: list[str], spec, provenance: dict) -> dict:
    """Everything a backtest was run with, for its ``config.json`` artifact."""
    return {
        "model": result.model, "label_spec": str(spec), "horizon": spec.horizon, "seed": result.seed,
        "folds": [{"test": r.fold.name, "train_years": list(r.train_years), "train_rows": r.train_rows,
                   "tuned": r.tuning is not None,
                   "hyperparameters": _plain(hyperparameters(result.model, result.seed, r.params))}
                  for r in result.folds],
        "features": features,
        "label_delay": label_delay(spec, provenance),
        "vintage": provenance.get("vintage"),
        "build_key": provenance.get("build_key"),
        "sources": provenance.get("sources"),
        "code": provenance.get("code"),
        "environment": environment().as_dict(),
    }


def _model_name(model: str, spec, what: str) -> str:
    """A logged model's name: which model, label and fold (or ``final``)."""
    return f"{model}-{spec.name}-{what}"


def _log_tuning(tuning) -> None:
    """Every candidate's score on the inner validation blocks, and which blocks they were."""
    if tuning is not None:
        log_frame(tuning.scores, "tuning/scores.csv")
        mlflow.log_param("tuning_blocks", ",".join(b.name for b in tuning.blocks))


def log_backtest(result: BacktestResult, table: pd.DataFrame, spec, *, provenance: dict, root: Path,
                 invocation: str | None = None, log_models: bool = True, reuse_key: str | None = None) -> str:
    """Log ``result`` (computed on ``table`` under ``spec``) under the spec's experiment; returns
    the parent run's id. ``table`` supplies each fold's training data and model input example.
    ``reuse_key``: the digest of its inputs (``foedus.models.reuse``), by which an identical
    request finds it again."""
    invocation = invocation or uuid.uuid4().hex[:12]
    features = feature_columns(table)
    model_name, seed = result.model, result.seed
    target = target_year(provenance)
    mlflow.set_experiment(experiment_id=experiment_id(spec, root, target is not None))
    tags = {**run_tags(provenance, "backtest", model_name, spec), "invocation": invocation,
            **_sweep_tags(result.sweep), **({REUSE_TAG: reuse_key} if reuse_key else {})}
    title = f"{model_name} backtest" + ("" if target is None else f" for {target}")
    fold_headlines = [run_view.headline(f.metrics, slice_metrics(f.predictions)) for f in result.folds]
    description = run_view.backtest_description(result, spec, fold_headlines, target)
    with mlflow.start_run(run_name=title, tags=tags, description=description) as parent:
        mlflow.log_text(description, "summary.md")  # at the top: the compare page previews common files
        mlflow.log_params({
            "model": model_name, "label_spec": str(spec), "horizon": spec.horizon, "seed": seed,
            "folds": ",".join(r.fold.name for r in result.folds), "n_features": len(features),
            "feature_set": data_digest({"features": ",".join(features)}),
            **run_view.main_params([hyperparameters(model_name, seed, r.params) for r in result.folds]),
        })
        mlflow.log_dict(_config(result, features, spec, provenance), "config.json")
        kill_point("backtest.parent_started")
        for fold, fold_headline in zip(result.folds, fold_headlines, strict=True):
            train, _ = split(table, fold.fold, label_delay(spec, provenance))
            with mlflow.start_run(run_name=f"{model_name} {fold.fold.name}", nested=True,
                                  tags={**tags, "kind": "backtest-fold", "fold": fold.fold.name,
                                        **fold.executed_by}):  # which worker computed it (or this process)
                fold_hp = hyperparameters(model_name, seed, fold.params)
                mlflow.log_params({"model": model_name, "fold": fold.fold.name,
                                   "train_first_year": fold.train_years[0], "train_last_year": fold.train_years[1],
                                   "train_rows": fold.train_rows, "test_rows": len(fold.predictions),
                                   "tuned": fold.tuning is not None, **run_view.main_params([fold_hp])})
                mlflow.log_dict({"model": model_name, "fold": fold.fold.name, "hyperparameters": _plain(fold_hp)},
                                "config.json")
                _log_tuning(fold.tuning)
                log_metrics(fold_headline)
                log_metrics({k: v for k, v in fold.metrics.items() if k not in HEADLINE_SOURCES})
                log_metrics({"threat_without_alliance": len(fold.threat_without_alliance),
                             "onsets_without_threat": len(fold.onsets_without_threat)})
                _log_training_data(table, train, [*DYAD_YEAR, "onset", *features],
                                   f"{spec.name} train <= {fold.train_years[1]}", provenance.get("build_key"))
                log_frame(fold.predictions, "predictions/predictions.parquet")
                kill_point("backtest.fold_predictions")
                if log_models:
                    # the table's columns without rows: no input example, and no copy of the test rows
                    log_onset_model(fold.model, getattr(fold.model, "features_", features), table.iloc[:0], spec,
                                    name=_model_name(model_name, spec, fold.fold.name),
                                    description=f"{model_name} of {spec} fitted on {fold.train_years[0]}-"
                                                f"{fold.train_years[1]}; forecasts the test block {fold.fold.name} "
                                                "out of time")

        log_metrics(run_view.headline(result.pooled, result.slices))
        log_metrics({"all_rows_average_precision_mean_of_folds": result.mean_fold_average_precision,
                     "threat_without_alliance": len(result.threat_without_alliance)})
        formation = result.formation_by_era
        log_frame(result.predictions, "predictions/all_folds.parquet")
        log_frame(pd.DataFrame(result.slices).T.reset_index(names="slice"), "metrics/slices.csv")
        log_frame(pd.DataFrame({r.fold.name: r.metrics for r in result.folds}).T.reset_index(names="fold"),
                  "metrics/folds.csv")
        log_frame(result.threat_without_alliance, "threat_without_alliance/threat_without_alliance.parquet")
        log_frame(result.onsets_without_threat, "threat_without_alliance/onsets_without_threat.csv")
        log_frame(formation.reset_index(), "threat_without_alliance/formation_by_era.csv")
        log_frame(result.reasons.reset_index(), "threat_without_alliance/reasons.csv")
        mlflow.log_text(result.report(), "threat_without_alliance/report.md")
        _log_figure(plots.pr_curves(result.predictions), "plots/pr_curves.png")
        _log_figure(plots.calibration(result.predictions), "plots/calibration.png")
        _log_figure(plots.onset_rate_by_era(table), "plots/onset_rate_by_era.png")
        last = result.folds[-1].model
        if hasattr(last, "feature_importances_"):
            _log_figure(plots.feature_importance(last), "plots/feature_importance.png")
        if result.shap_sample is not None:
            _log_figure(plots.shap_summary(result.shap_sample), "plots/shap_summary.png")
        kill_point("backtest.before_end")
    return parent.info.run_id


def latest_backtest(spec, model_name: str, root: Path, for_year: int | None = None, *, sweep: bool = False,
                    years: tuple[int, int] = (FIRST_YEAR, LAST_YEAR)):
    """The newest finished backtest parent run of ``model_name`` under ``spec`` (of its
    present-day model for ``for_year`` if given) on a table of ``years``, or None. ``sweep``:
    the newest whose folds used the best parameters of their sweep studies (``hyperparameters
    = sweep``); otherwise the newest that did not (a model is judged by a backtest of the same
    parameters' origin, on the same years). A run from before the ``years`` tag was on them all."""
    span = years_tag(years)
    present = "" if for_year is None else f" and tags.for_year = '{for_year}'"
    runs = MlflowClient().search_runs(
        [experiment_id(spec, root, for_year is not None)],
        filter_string=f"tags.kind = 'backtest' and tags.model = '{model_name}' and attributes.status = 'FINISHED'"
                      + present,
        order_by=["attributes.start_time DESC"], max_results=200,
    )
    return next((run for run in runs if (run.data.tags.get("hyperparameters") == SWEPT) == sweep
                 and run.data.tags.get("years", ALL_YEARS) == span), None)


def judging_backtest(spec, model_name: str, root: Path, for_year: int | None = None, *, sweep: bool = False,
                     years: tuple[int, int] = (FIRST_YEAR, LAST_YEAR)):
    """The backtest a final model is judged by (``latest_backtest``); none is a ``FoedusError``
    naming the command that makes one."""
    run = latest_backtest(spec, model_name, root, for_year, sweep=sweep, years=years)
    if run is None:
        which, option = ("", "") if for_year is None else (f" for {for_year}", f" --for-year {for_year}")
        swept = (" with swept parameters", " --sweep") if sweep else ("", "")
        first, last = years
        span = ("", "") if years_tag(years) == ALL_YEARS else (f" on the years {first}-{last}",
                                                                f" --first {first} --last {last}")
        raise FoedusError(f"no finished backtest of {model_name}{swept[0]} for {spec}{which}{span[0]}: run "
                          f"`foedus backtest -l {spec}{option}{span[1]} --models {model_name}{swept[1]}` first (the "
                          "champion rule needs its average precision)")
    return run


def train_final(table: pd.DataFrame, spec, model_name: str, *, provenance: dict, root: Path, seed: int = DEFAULT_SEED,
                params: dict | None = None, sweep: dict | None = None, force: bool = False,
                fitted=None) -> tuple[str, Promotion]:
    """Fit ``model_name`` on every labelled year, log and register it, apply the champion rule.

    ``sweep`` (the study's name, best trial and value) when ``params`` are a sweep's best: the
    run is tagged so, and judged by the newest backtest that used sweeps too.

    On a present-day model's table (its provenance has a ``vintage``), the model is registered
    as ``foedus-onset-<spec>-for<year>`` and judged by that year's step-shifted backtest.

    A final model whose inputs are identical to an earlier finished one's (the table, model,
    hyperparameters, seed, the code, and the backtest it is judged by) is not fitted again:
    that run and version are returned, the ``Promotion`` saying where the version stands now
    (``reused``), unless ``force``.

    ``fitted``: the ``FinalFit`` of exactly this table, model, seed and parameters, computed
    elsewhere (the main job fits final models beside the backtests); else it is fitted here."""
    target = target_year(provenance)
    backtest_run = judging_backtest(spec, model_name, root, target, sweep=sweep is not None,
                                    years=table_span(provenance))
    key = reuse_key("train", build_key=provenance.get("build_key"), label_spec=str(spec), model=model_name,
                    params=params, seed=seed, sweep=sweep, label_delay=label_delay(spec, provenance),
                    profile=(provenance.get("vintage") or {}).get("profile"), backtest=backtest_run.info.run_id)
    experiment = experiment_id(spec, root, target is not None)
    if not force and (found := find_final(experiment, key)) is not None:
        tags = found.data.tags
        return found.info.run_id, standing(MlflowClient(), tags["registered_name"], tags["registered_version"],
                                           reused("final model", found))
    ap = run_view.run_metric(backtest_run, PRIMARY)
    ap = float("nan") if ap is None else ap
    if fitted is None:
        fitted = fit_final(table, model_name, seed=seed, params=params, horizon=label_delay(spec, provenance))
    frame, rows = fitted.rows(table)
    kept = frame.loc[rows, ["year", "onset"]]
    first_year, last_year = int(kept["year"].min()), int(kept["year"].max())
    mlflow.set_experiment(experiment_id=experiment)
    tags = {**run_tags(provenance, "train", model_name, spec), "backtest_run_id": backtest_run.info.run_id,
            **_sweep_tags(sweep), REUSE_TAG: key}
    title = f"{model_name} final" + ("" if target is None else f" for {target}")
    chosen = hyperparameters(model_name, seed, fitted.params)
    with mlflow.start_run(run_name=title, tags=tags) as run:
        mlflow.log_params({"model": model_name, "label_spec": str(spec), "seed": seed, "train_rows": len(kept),
                           "train_first_year": first_year, "train_last_year": last_year,
                           "tuned": fitted.tuning is not None, **run_view.main_params([chosen])})
        mlflow.log_dict({"model": model_name, "label_spec": str(spec), "seed": seed, "features": fitted.features,
                         "hyperparameters": _plain(chosen), "vintage": provenance.get("vintage"),
                         "backtest_run_id": backtest_run.info.run_id}, "config.json")
        _log_tuning(fitted.tuning)
        log_metrics({f"backtest_{PRIMARY}": ap, "train_onsets": float(kept["onset"].astype(int).sum())})
        _log_training_data(frame, rows, [*DYAD_YEAR, "onset", *feature_columns(table)], f"{spec.name} all years",
                           provenance.get("build_key"))
        info = log_onset_model(fitted.model, fitted.features, _first_rows(frame, rows), spec,
                               vintage=provenance.get("vintage"),
                               name=_model_name(model_name, spec, "final" if target is None else f"for{target}"),
                               description=f"{model_name} of {spec} fitted on every labelled year "
                                           f"({first_year}-{last_year})"
                                           + ("" if target is None else f", sources as stale as in {target}"))
        if hasattr(fitted.model, "feature_importances_"):
            _log_figure(plots.feature_importance(fitted.model), "plots/feature_importance.png")
        kill_point("train.model_logged")
        name = registered_name(spec, target)
        version = mlflow.register_model(info.model_uri, name, tags={
            "model": model_name, "backtest_run_id": backtest_run.info.run_id, **_present_tags(provenance)})
        kill_point("train.registered")
        client = MlflowClient()
        promotion = judge(client, name, version.version, ap)
        described = run_view.version_description(model_name, spec, backtest_run.info.run_id, promotion)
        client.update_registered_model(name, description=run_view.registered_model_description(spec, target))
        client.update_model_version(name, version.version, description=described)
        mlflow.set_tag("mlflow.note.content", described + f" Registered as {name} v{version.version}.")
        mlflow.set_tags({"registered_name": name, "registered_version": version.version})
        mlflow.set_tag("champion", str(promotion.promoted).lower())
    # The alias moves last, after the run has ended: killed before this, the version's champion
    # rule is left pending and the next train completes it (``recovery``); the run is never
    # marked failed with its version champion.
    kill_point("train.before_alias")
    apply(client, promotion)
    return run.info.run_id, promotion


def compare_runs(root: Path, spec=None, last: int = 20) -> pd.DataFrame:
    """The latest backtest runs, newest first: model, label spec, the table's years, pooled AP on continuing dyads
    (the primary figure), their median onset percentile, all-rows AP pooled and as the mean of
    the folds, ROC-AUC, Brier."""
    client = MlflowClient()
    if spec is not None:
        experiments = [experiment_id(spec, root)]
    else:
        experiments = [e.experiment_id for e in client.search_experiments() if e.name.startswith(EXPERIMENT_PREFIX)]
    if not experiments:
        return pd.DataFrame(columns=["model", "label_spec", "years", "continuing_dyad_average_precision",
                                     "average_precision",
                                     "mean_fold_average_precision", "median_onset_percentile", "roc_auc", "brier",
                                     "started",
                                     "run_id"])
    # a run still going, or failed (its process killed), has no result to compare
    runs = client.search_runs(experiments, filter_string="tags.kind = 'backtest' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=last)
    rows = [{
        "model": r.data.tags.get("model"),
        "label_spec": r.data.tags.get("label_spec"),
        "years": r.data.tags.get("years", ALL_YEARS),  # the table's (backtest --first/--last)
        "continuing_dyad_average_precision": run_view.run_metric(r, PRIMARY),
        "average_precision": run_view.run_metric(r, "all_rows_average_precision"),
        "median_onset_percentile": run_view.run_metric(r, "continuing_dyads_median_onset_percentile"),
        "mean_fold_average_precision": run_view.run_metric(r, "all_rows_average_precision_mean_of_folds"),
        "roc_auc": r.data.metrics.get("roc_auc"),
        "brier": r.data.metrics.get("brier"),
        "started": pd.Timestamp(r.info.start_time, unit="ms"),
        "run_id": r.info.run_id,
    } for r in runs]
    return pd.DataFrame(rows)

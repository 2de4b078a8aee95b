"""What a researcher sees of foedus's runs in the MLflow UI: a handful of headline metrics with
self-explaining names, readable parameters, run and model descriptions, the experiment's
saved view and the URLs that open it.

A backtest's parent run carries only the headline figures (every per-fold, per-slice and
per-era number is in its fold runs and its ``metrics/*.csv`` artifacts), so that the runs table
and the compare page show what a comparison needs.
"""

from __future__ import annotations

import json
from urllib.parse import quote

# Headline metrics, in the order a reader should look at them. The first is the figure a
# backtest is judged by (the champion rule, `foedus compare`): pooled AP on continuing dyads.
PRIMARY = "continuing_dyads_average_precision"
HEADLINE = (
    PRIMARY,
    "continuing_dyads_median_onset_percentile",
    "all_rows_average_precision",
    "roc_auc",
    "brier",
    "ece",
)
# runs logged before these names existed (foedus < 0.18) are still read
LEGACY = {
    PRIMARY: "slice_continuing_dyad_average_precision",
    "continuing_dyads_median_onset_percentile": "slice_continuing_dyad_median_onset_percentile",
    "all_rows_average_precision": "average_precision",
    "all_rows_average_precision_mean_of_folds": "mean_fold_average_precision",
}
# the hyperparameters worth a column; the rest is in each run's config.json
MAIN_HYPERPARAMETERS = ("num_leaves", "min_child_samples", "n_rounds", "learning_rate", "climate")

EXPERIMENT_KIND = "custom_model_development"  # opens the experiment on its training runs, not on traces
VIEW_KEY = "foedus-headline"  # the experiment's saved view of the backtests (viewStateShareKey)


def headline(pooled: dict, slices: dict) -> dict[str, float]:
    """The headline metrics of one set of forecasts: its all-rows ``score`` and its slices."""
    continuing = slices.get("continuing_dyad", {})
    return {
        PRIMARY: continuing.get("average_precision", float("nan")),
        "continuing_dyads_median_onset_percentile": continuing.get("median_onset_percentile", float("nan")),
        "all_rows_average_precision": pooled["average_precision"],
        "roc_auc": pooled["roc_auc"],
        "brier": pooled["brier"],
        "ece": pooled["ece"],
    }


def run_metric(run, name: str) -> float | None:
    """Metric ``name`` of an MLflow run, under its current or its legacy name."""
    metrics = run.data.metrics
    if name in metrics:
        return metrics[name]
    return metrics.get(LEGACY.get(name, name))


def main_params(fold_params: list[dict]) -> dict[str, str]:
    """The main hyperparameters, one value per fold joined by '/' when they differ (tuned per fold)."""
    out = {}
    for key in MAIN_HYPERPARAMETERS:
        values = [str(p[key]) for p in fold_params if key in p]
        if values:
            out[key] = values[0] if len(set(values)) == 1 else "/".join(values)
    return out


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def backtest_description(result, spec, fold_headlines: list[dict], target: int | None = None) -> str:
    """The parent run's note (Markdown): what was run, the headline and a table by fold
    (``fold_headlines``: each fold's ``headline``)."""
    head = headline(result.pooled, result.slices)
    present = "" if target is None else f", as stale as a forecast for {target} (step-shifted sources)"
    lines = [
        f"**{result.model}** backtest of `{spec}`{present}: {len(result.folds)} out-of-time test blocks, "
        "each trained only on earlier years.",
        "",
        f"Continuing-dyad AP **{_fmt(head[PRIMARY])}** (pooled over every fold's forecasts, pairs that were "
        f"a system dyad in t-1; base rate {_fmt(result.slices.get('continuing_dyad', {}).get('prevalence'))}), "
        f"median onset percentile {_fmt(head['continuing_dyads_median_onset_percentile'], 1)}, all-rows AP "
        f"{_fmt(head['all_rows_average_precision'])}, ROC-AUC {_fmt(head['roc_auc'], 3)}, Brier "
        f"{_fmt(head['brier'], 5)}, ECE {_fmt(head['ece'])}.",
        "",
        "| test block | trained on | test dyad-years | onsets | continuing-dyad AP | all-rows AP | ROC-AUC |",
        "|---|---|---|---|---|---|---|",
    ]
    for fold, fold_head in zip(result.folds, fold_headlines, strict=True):
        continuing = fold_head[PRIMARY]
        lines.append(f"| {fold.fold.name} | {fold.train_years[0]}-{fold.train_years[1]} | {len(fold.predictions):,} "
                     f"| {int(fold.metrics['onsets'])} | {_fmt(continuing)} | "
                     f"{_fmt(fold.metrics['average_precision'])} | {_fmt(fold.metrics['roc_auc'], 3)} |")
    lines += ["", "Per-fold metrics are on the fold runs; every slice and era in `metrics/slices.csv`; the full "
              "configuration in `config.json`; the threat-without-alliance report in `threat_without_alliance/`."]
    return "\n".join(lines)


def experiment_description(spec, present: bool) -> str:
    what = ("present-day models: each target year's model trained on sources as stale as that year's "
            "forecast, their backtests and skill by staleness" if present else
            "out-of-time backtests (parent run per model, a nested run per test block) and the final models")
    return (f"foedus, label `{spec}`: {what}. Compare the backtests by `{PRIMARY}` (pooled AP on continuing "
            "dyads, the champion rule); open the saved view `" + VIEW_KEY + "` for the headline columns.")


def view_state() -> str:
    """The experiment's saved runs-table view: backtests only, best continuing-dyad AP first,
    the headline columns shown."""
    columns = ["params.`model`", "params.`label_spec`", *(f"metrics.`{m}`" for m in HEADLINE)]
    return json.dumps({
        "searchFilter": "tags.kind = 'backtest'",
        "orderByKey": f"metrics.`{PRIMARY}`",
        "orderByAsc": False,
        "selectedColumns": columns,
        "runsExpanded": {},
        "runListHidden": False,
    })


def experiment_tags(spec, present: bool) -> dict[str, str]:
    return {
        "mlflow.experimentKind": EXPERIMENT_KIND,
        "mlflow.note.content": experiment_description(spec, present),
        f"mlflow.sharedViewState.{VIEW_KEY}": view_state(),
    }


def experiment_url(base: str, experiment_id: str) -> str:
    """The experiment's runs page in the saved headline view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY}"


def compare_url(base: str, run_ids: list[str], experiment_ids: list[str]) -> str:
    """MLflow's compare page for these runs."""
    runs = quote(json.dumps(list(run_ids)), safe="")
    experiments = quote(json.dumps(list(experiment_ids)), safe="")
    return f"{base.rstrip('/')}/#/compare-runs?runs={runs}&experiments={experiments}"


def version_description(model: str, spec, backtest_run_id: str, promotion) -> str:
    """A registered version's description: what it is and why it is, or is not, the champion."""
    return (f"{model} fitted on every labelled year of `{spec}`; judged by its backtest (run {backtest_run_id}): "
            f"continuing-dyad AP {promotion.average_precision:.4f}. {promotion.describe()}.")


def registered_model_description(spec, for_year: int | None) -> str:
    present = "" if for_year is None else f" for {for_year}, trained on sources as stale as that year's forecast"
    return (f"foedus final onset models of `{spec}`{present}. Each version is a final fit; the alias "
            "`champion` points at the version with the best backtest AP on continuing dyads (pairs that were a "
            "system dyad in t-1, strictly out of time); a new version takes it only by beating it.")

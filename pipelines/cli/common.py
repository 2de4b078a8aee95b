"""What the command modules share: the consoles, the options, the number format and the tables
several commands print."""

from __future__ import annotations

import sys

import typer
from foedus.features.labels import DEFAULT_LABEL_SPEC
from foedus.models.catalogue import MAIN_JOB_MODELS, MODELS
from foedus.models.seed import DEFAULT_SEED
from rich.console import Console
from rich.table import Column, Table

# Piped output (logs, CI) gets wide lines instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, soft_wrap=True)

SPEC_HELP = "Label spec source:obligation:horizon, e.g. atop:any:1, atop:defense:1, cow:any:5."
MODELS_HELP = "Comma-separated, from: " + "; ".join(f"{m.name} ({m.description})" for m in MODELS.values()) + "."
ALL_MODELS = ",".join(MODELS)
MAIN_MODELS = ",".join(MAIN_JOB_MODELS)


def spec_option(help: str = SPEC_HELP):
    return typer.Option(DEFAULT_LABEL_SPEC, "--label-spec", "-l", help=help)


def seed_option():
    return typer.Option(DEFAULT_SEED, help="Random seed (same seed and data give the same numbers).")


def jobs_option():
    return typer.Option(None, "--jobs", "-j", help="Worker processes on this machine for the (model, fold) tasks "
                        "(default: one per core, or the cluster of DASK_SCHEDULER_ADDRESS if set; 1 runs them "
                        "one after another in this process). The numbers are the same whatever runs them.")


def scheduler_option():
    return typer.Option(None, "--scheduler", help="A Dask scheduler's address, e.g. tcp://host:8786, whose workers "
                        "run the tasks (default: DASK_SCHEDULER_ADDRESS); they need foedus installed and the "
                        "table at the same path.")


def print_counts(counts) -> None:
    table = Table("era", "dyad-years", "at risk", "onsets", "onset unknown", "onset rate",
                  title="Labelled dyad-years by era")
    for row in counts.itertuples():
        rate = "-" if row.onset_rate != row.onset_rate else f"{row.onset_rate:.4f}"
        table.add_row(str(row.Index), f"{row.dyad_years:,}", f"{row.at_risk:,}", f"{row.onsets:,}",
                      f"{row.onset_unknown:,}", rate)
    out.print(table)


def print_threat_summary(summary) -> None:
    table = Table("era", "at risk", "onsets", "onset rate", "shared threat", "share", "onsets with threat",
                  "rate with threat", "threat, no alliance",
                  title="Threat without alliance: at-risk dyad-years with a known onset")
    pct = lambda x: "-" if x != x else f"{x:.4f}"  # noqa: E731
    for row in summary.itertuples():
        table.add_row(str(row.Index), f"{row.at_risk:,}", f"{row.onsets:,}", pct(row.onset_rate),
                      f"{row.shared_threat:,}", pct(row.shared_threat_share), f"{row.threat_onsets:,}",
                      pct(row.threat_onset_rate), f"{row.threat_no_alliance:,}")
    out.print(table)


def report_build(result) -> None:
    print_counts(result.counts)
    how = "reused identical build" if result.reused else "wrote"
    rows, columns = result.shape
    out.print(f"label spec {result.spec}: {how} {rows:,} dyad-years x {columns} columns to {result.path}")


def first_option(what: str):
    return typer.Option(None, "--first", help=f"First year of the table {what} (default 1816), e.g. 1946 for the "
                        "post-war system only; the fitted model never sees an earlier year.")


def last_option(what: str):
    return typer.Option(None, "--last", help=f"Last year of the table {what} (default 2024).")


FOR_YEAR_HELP = ("The present-day model for this target year (first year after the label data through next year): "
                 "every source as stale as it will be when forecasting that year.")


def fmt(x, digits=4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def print_backtest(summary) -> None:
    out.print(backtest_line(summary))


def force_option(what: str):
    return typer.Option(False, "--force", help=f"Compute every {what} again, even where an earlier finished run had "
                        "identical inputs (data, code, model, hyperparameters, seed, folds): that run is reused "
                        "otherwise.")


def backtest_line(summary) -> str:
    folds = "  ".join(f"{r.fold.name}: {fmt(r.metrics['average_precision'])}" for r in summary.folds)
    continuing = summary.slices.get("continuing_dyad", {})
    reused = "" if summary.reused is None else f"{summary.reused.describe()}: "
    return (f"{reused}[bold]{summary.model}[/bold] {summary.label_spec}  "
            f"continuing-dyad AP {fmt(continuing.get('average_precision'))}  "
            f"median onset percentile {fmt(continuing.get('median_onset_percentile'), 1)}  "
            f"all-rows AP {fmt(summary.pooled['average_precision'])}  "
            f"ROC-AUC {fmt(summary.pooled['roc_auc'], 3)}  Brier {fmt(summary.pooled['brier'], 5)}  "
            f"ECE {fmt(summary.pooled['ece'])}  | AP by fold  {folds}  | run {summary.run_id}")


def print_compare(frame) -> None:
    table = Table("model", "label spec", Column("years", no_wrap=True), "continuing-dyad AP (pooled)",
                  "median onset percentile", "all-rows AP (pooled)", "all-rows AP (mean of folds)", "ROC-AUC", "Brier",
                  "started (UTC)", "run",
                  title="Latest backtests: AP on continuing dyads first, the figure the champion rule uses")
    for row in frame.itertuples():
        table.add_row(row.model, row.label_spec, row.years, fmt(row.continuing_dyad_average_precision),
                      fmt(row.median_onset_percentile, 1), fmt(row.average_precision),
                      fmt(row.mean_fold_average_precision), fmt(row.roc_auc, 3), fmt(row.brier, 5),
                      str(row.started)[:19], row.run_id)
    out.print(table)

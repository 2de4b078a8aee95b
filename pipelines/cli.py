"""The ``foedus`` command line: each command parses, calls one function of ``foedus.jobs``, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import typer
from foedus.features.errors import FoedusError
from foedus.features.labels import DEFAULT_LABEL_SPEC
from foedus.models.catalogue import MAIN_JOB_MODELS, MODELS
from foedus.models.seed import DEFAULT_SEED
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

app = typer.Typer(
    help="foedus: forecast formal military alliances between pairs of states.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, verify and inspect the raw data.", no_args_is_help=True)
states_app = typer.Typer(help="Look up states in the COW registry.", no_args_is_help=True)
features_app = typer.Typer(help="The feature catalogue.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(states_app, name="states")
app.add_typer(features_app, name="features")

# Piped output (logs, CI) gets wide lines instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, soft_wrap=True)

SPEC_HELP = "Label spec source:obligation:horizon, e.g. atop:any:1, atop:defense:1, cow:any:5."
MODELS_HELP = "Comma-separated, from: " + "; ".join(f"{m.name} ({m.description})" for m in MODELS.values()) + "."
ALL_MODELS = ",".join(MODELS)
MAIN_MODELS = ",".join(MAIN_JOB_MODELS)


def _spec_option(help: str = SPEC_HELP):
    return typer.Option(DEFAULT_LABEL_SPEC, "--label-spec", "-l", help=help)


def _seed_option():
    return typer.Option(DEFAULT_SEED, help="Random seed (same seed and data give the same numbers).")


def _jobs_option():
    return typer.Option(None, "--jobs", "-j", help="Worker processes on this machine for the (model, fold) tasks "
                        "(default: one per core, or the cluster of DASK_SCHEDULER_ADDRESS if set; 1 runs them "
                        "one after another in this process). The numbers are the same whatever runs them.")


def _scheduler_option():
    return typer.Option(None, "--scheduler", help="A Dask scheduler's address, e.g. tcp://host:8786, whose workers "
                        "run the tasks (default: DASK_SCHEDULER_ADDRESS); they need foedus installed and the "
                        "table at the same path.")


@data_app.command("fetch")
def data_fetch(
    origin: str | None = typer.Option(None, "--from", help="Folder or http(s) URL laid out like ../shared/data."),
    force: bool = typer.Option(False, help="Fetch again even if a verified copy is present."),
) -> None:
    """Fill data/raw/ from --from, else the local mirror, else upstream; verify every checksum."""
    from foedus.jobs import fetch_data

    if origin is not None and not origin.startswith(("http://", "https://")) and not Path(origin).is_dir():
        raise FoedusError(f"--from {origin}: no such folder (give a folder or an http(s) URL)")
    done = fetch_data(origin, force=force, show_progress=out.is_terminal)
    fetched = [f for f in done if f.origin != "already present"]
    for item in fetched:
        out.print(f"fetched {item.source.path}  [dim]from {item.origin}[/dim]")
    out.print(f"[green]{len(done)} raw files verified[/green] ({len(fetched)} fetched, "
              f"{len(done) - len(fetched)} already present)")


@data_app.command("status")
def data_status_cmd() -> None:
    """Show each source: present, verified, version, years covered."""
    import pandas as pd
    from foedus.jobs import data_status

    status = data_status()
    table = Table("source", "file", "state", "version", "years")
    for row in status.itertuples():
        colour = "green" if row.verified else "red"
        years = "-" if pd.isna(row.first_year) else f"{row.first_year}-{row.last_year}"
        table.add_row(row.source, row.path, f"[{colour}]{row.state}[/{colour}]", row.version, years)
    out.print(table)
    bad = status[~status["verified"]]
    if len(bad):
        raise FoedusError(f"{len(bad)} of {len(status)} raw files are missing or fail their checksum: "
                          "run `foedus data fetch`")


@states_app.command("resolve")
def states_resolve(
    query: str = typer.Argument(..., help="COW code, COW abbreviation or country name."),
    year: int | None = typer.Option(None, help="Also check the state was a system member this year."),
) -> None:
    """Resolve a code, abbreviation or name to one COW state."""
    from foedus.features.states import resolve_state

    out.print(str(resolve_state(query, year)))


def _print_counts(counts) -> None:
    table = Table("era", "dyad-years", "at risk", "onsets", "onset unknown", "onset rate",
                  title="Labelled dyad-years by era")
    for row in counts.itertuples():
        rate = "-" if row.onset_rate != row.onset_rate else f"{row.onset_rate:.4f}"
        table.add_row(str(row.Index), f"{row.dyad_years:,}", f"{row.at_risk:,}", f"{row.onsets:,}",
                      f"{row.onset_unknown:,}", rate)
    out.print(table)


def _print_threat_summary(summary) -> None:
    table = Table("era", "at risk", "onsets", "onset rate", "shared threat", "share", "onsets with threat",
                  "rate with threat", "threat, no alliance",
                  title="Threat without alliance: at-risk dyad-years with a known onset")
    pct = lambda x: "-" if x != x else f"{x:.4f}"  # noqa: E731
    for row in summary.itertuples():
        table.add_row(str(row.Index), f"{row.at_risk:,}", f"{row.onsets:,}", pct(row.onset_rate),
                      f"{row.shared_threat:,}", pct(row.shared_threat_share), f"{row.threat_onsets:,}",
                      pct(row.threat_onset_rate), f"{row.threat_no_alliance:,}")
    out.print(table)


def _report_build(result) -> None:
    _print_counts(result.counts)
    how = "reused identical build" if result.reused else "wrote"
    rows, columns = result.shape
    out.print(f"label spec {result.spec}: {how} {rows:,} dyad-years x {columns} columns to {result.path}")


def _first_option(what: str):
    return typer.Option(None, "--first", help=f"First year of the table {what} (default 1816), e.g. 1946 for the "
                        "post-war system only; the fitted model never sees an earlier year.")


def _last_option(what: str):
    return typer.Option(None, "--last", help=f"Last year of the table {what} (default 2024).")


FOR_YEAR_HELP = ("The present-day model for this target year (first year after the label data through next year): "
                 "every source as stale as it will be when forecasting that year.")


@app.command()
def build(
    spec: str = _spec_option(),
    first: int = typer.Option(1816, help="First year (1816-2024)."),
    last: int = typer.Option(2024, help="Last year (1816-2024)."),
    labels_only: bool = typer.Option(False, "--labels-only", help="Only the universe and labels, no features."),
    force: bool = typer.Option(False, help="Rebuild even if an identical build exists."),
    for_year: int | None = typer.Option(None, "--for-year", help=FOR_YEAR_HELP),
) -> None:
    """Build the dyad-year table (features and labels) into data/processed/ and print counts by era."""
    from foedus.jobs import build as build_job

    _report_build(build_job(spec, first, last, labels_only=labels_only, force=force, for_year=for_year))


@app.command()
def describe(spec: str = _spec_option()) -> None:
    """Onset rates overall and within shared-threat dyad-years, by era (builds the table if needed)."""
    from foedus.jobs import describe as describe_job

    _print_threat_summary(describe_job(spec))


@features_app.command("list")
def features_list(
    markdown: Path | None = typer.Option(None, "--markdown", help="Write the catalogue as Markdown to this file."),
    spec: str = _spec_option(),
) -> None:
    """Print every feature: name, family, sources (with their last covered year), lag, unit, meaning."""
    from foedus.jobs import feature_catalogue

    frame, text = feature_catalogue(spec)
    if markdown is not None:
        from foedus.features.atomic import write_atomic

        write_atomic(markdown, lambda tmp: tmp.write_text(text + "\n"))
        out.print(f"wrote the catalogue of {len(frame)} features to {markdown}")
        return
    table = Table("feature", "family", "sources", "lag", "unit", "meaning", title=f"{len(frame)} features")
    for row in frame.itertuples():
        table.add_row(row.name, row.family, row.sources, str(row.lag), row.unit, row.meaning)
    out.print(table)


def _fmt(x, digits=4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _print_backtest(summary) -> None:
    out.print(_backtest_line(summary))


def _force_option(what: str):
    return typer.Option(False, "--force", help=f"Compute every {what} again, even where an earlier finished run had "
                        "identical inputs (data, code, model, hyperparameters, seed, folds): that run is reused "
                        "otherwise.")


def _backtest_line(summary) -> str:
    folds = "  ".join(f"{r.fold.name}: {_fmt(r.metrics['average_precision'])}" for r in summary.folds)
    continuing = summary.slices.get("continuing_dyad", {})
    reused = "" if summary.reused is None else f"{summary.reused.describe()}: "
    return (f"{reused}[bold]{summary.model}[/bold] {summary.label_spec}  "
            f"continuing-dyad AP {_fmt(continuing.get('average_precision'))}  "
            f"median onset percentile {_fmt(continuing.get('median_onset_percentile'), 1)}  "
            f"all-rows AP {_fmt(summary.pooled['average_precision'])}  "
            f"ROC-AUC {_fmt(summary.pooled['roc_auc'], 3)}  Brier {_fmt(summary.pooled['brier'], 5)}  "
            f"ECE {_fmt(summary.pooled['ece'])}  | AP by fold  {folds}  | run {summary.run_id}")


def _print_compare(frame) -> None:
    table = Table("model", "label spec", Column("years", no_wrap=True), "continuing-dyad AP (pooled)",
                  "median onset percentile", "all-rows AP (pooled)", "all-rows AP (mean of folds)", "ROC-AUC", "Brier",
                  "started (UTC)", "run",
                  title="Latest backtests: AP on continuing dyads first, the figure the champion rule uses")
    for row in frame.itertuples():
        table.add_row(row.model, row.label_spec, row.years, _fmt(row.continuing_dyad_average_precision),
                      _fmt(row.median_onset_percentile, 1), _fmt(row.average_precision),
                      _fmt(row.mean_fold_average_precision), _fmt(row.roc_auc, 3), _fmt(row.brier, 5),
                      str(row.started)[:19], row.run_id)
    out.print(table)


@app.command()
def backtest(
    spec: str = _spec_option(),
    models: str = typer.Option(ALL_MODELS, help=MODELS_HELP),
    folds: str | None = typer.Option(
        None, help="Test blocks, e.g. 1946-1969,1970-1989 (default: five blocks 1919-2018)."),
    seed: int = _seed_option(),
    for_year: int | None = typer.Option(None, "--for-year",
                                        help=FOR_YEAR_HELP + " Default folds: 1990-2004,2005-2018."),
    jobs: int | None = _jobs_option(),
    scheduler: str | None = _scheduler_option(),
    sweep: bool = typer.Option(False, "--sweep", help="LightGBM only: fit each fold with the best trial of the "
                               "`foedus sweep` study of the years before it, instead of its own grid tuning."),
    force: bool = _force_option("backtest"),
    first: int | None = _first_option("backtested: every fold trains from it"),
    last: int | None = _last_option("backtested: every fold lies inside it"),
) -> None:
    """Out-of-time backtest of each model, tracked in MLflow (parent run per model, nested run per fold)."""
    from foedus.jobs import backtest as backtest_job

    backtest_job(spec, models, folds, seed=seed, for_year=for_year, on_model=_print_backtest, jobs=jobs,
                 scheduler=scheduler, sweep=sweep, force=force, first=first, last=last)


@app.command()
def train(
    spec: str = _spec_option(),
    model: str = typer.Option("lightgbm", help=f"The model to fit on all labelled years, one of: {ALL_MODELS}."),
    seed: int = _seed_option(),
    for_year: int | None = typer.Option(None, "--for-year", help=FOR_YEAR_HELP + " Registered as "
                                        "foedus-onset-<spec>-for<year>; backtested first if that year has no "
                                        "backtest yet."),
    sweep: bool = typer.Option(False, "--sweep", help="LightGBM only: fit it with the best trial of the `foedus "
                               "sweep` study of every labelled year; judged by the latest `backtest --sweep`."),
    force: bool = _force_option("final model"),
    first: int | None = _first_option("fitted on; judged by a backtest on the same years"),
    last: int | None = _last_option("fitted on"),
) -> None:
    """Fit the final model on all labelled years and register it; 'champion' moves only if it beats the champion."""
    from foedus.features.years import FIRST_YEAR, LAST_YEAR
    from foedus.jobs import train as train_job

    run_id, promotion = train_job(spec, model, seed=seed, for_year=for_year, on_backtest=_print_backtest,
                                  sweep=sweep, force=force, first=first, last=last)
    what = "" if for_year is None else f" (the present-day model for {for_year})"
    span = "" if first is None and last is None else f" of {first or FIRST_YEAR}-{last or LAST_YEAR}"
    if promotion.reused is None:
        out.print(f"trained {model} on every labelled year{span}{what} (run {run_id})")
    out.print(promotion.describe(), highlight=False)


@app.command()
def sweep(
    spec: str = _spec_option(),
    trials: int = typer.Option(20, help="Trials to add to each study (a study that exists is continued)."),
    folds: str | None = typer.Option(None, help="Test blocks, e.g. 1946-1969,1990-2004: one study each, on the "
                                     "years before the block only (for `backtest --sweep`)."),
    final: bool = typer.Option(True, "--final/--no-final", help="Also the study of every labelled year (for "
                               "`train --sweep`)."),
    storage: str | None = typer.Option(None, help="Optuna storage URL (default: FOEDUS_SWEEP_STORAGE, else "
                                       "mlruns/optuna.db); a team's: postgresql+psycopg2://user@host/optuna."),
    batch: int | None = typer.Option(None, help="Trials asked at once and run side by side (default 4); the "
                                     "study depends on it, not on --jobs."),
    seed: int = _seed_option(),
    jobs: int | None = _jobs_option(),
    scheduler: str | None = _scheduler_option(),
) -> None:
    """Optuna study of LightGBM's hyperparameters, scored out of time inside the years before each test block."""
    from foedus.sweeps import sweep as sweep_job

    def shown(params: dict) -> str:
        return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())

    def progress(cut, trial) -> None:
        err.print(f"{cut.name}: trial {trial.number} continuing-dyad AP {_fmt(trial.value)} ({shown(trial.params)})",
                  highlight=False, markup=False)

    for study in sweep_job(spec, trials, folds, final=final, storage=storage, seed=seed, batch=batch, jobs=jobs,
                           scheduler=scheduler, on_trial=progress):
        best = shown(study["best_params"])
        out.print(f"{study['cut']}: best trial {study['best_trial']} of {study['trials']}, continuing-dyad AP "
                  f"{_fmt(study['best_value'])} ({best}); study '{study['study']}' in {study['storage']}, "
                  f"run {study['run_id']}", highlight=False, markup=False)


@app.command()
def staleness(
    specs: list[str] = typer.Option([DEFAULT_LABEL_SPEC], "--label-spec", "-l",
                                    help=SPEC_HELP + " Repeat for several (one table each, one plot)."),
    model: str = typer.Option("lightgbm", help=f"The model to backtest, one of: {ALL_MODELS}."),
    years: str | None = typer.Option(None, help="Target years, e.g. 2019-2027 or 2020,2026 (default: the first "
                                     "year past the label data through next year)."),
    folds: str | None = typer.Option(None, help="Test blocks (default: 1990-2004,2005-2018)."),
    seed: int = _seed_option(),
    latest: bool = typer.Option(False, "--latest", help="Show the latest logged tables instead of backtesting."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write the plot of every table (PNG)."),
    json_out: bool = typer.Option(False, "--json", help="Print the tables as JSON (by label spec)."),
    jobs: int | None = _jobs_option(),
    scheduler: str | None = _scheduler_option(),
) -> None:
    """Skill by staleness: backtest the model fresh and as stale as each target year's forecast, and compare."""
    from foedus.jobs import latest_skill, skill_by_staleness

    def progress(row: dict) -> None:
        err.print(f"{row['target']}: continuing-dyad AP {_fmt(row['continuing_dyad_average_precision'])}, "
                  f"median onset percentile {_fmt(row['median_onset_percentile'], 1)}, "
                  f"Brier {_fmt(row['brier'], 5)} ({row['profile'][:80]})", highlight=False)

    tables = {}
    for spec in specs:
        tables[spec] = (latest_skill(spec, model) if latest else
                        skill_by_staleness(spec, _target_years(years), model=model, folds=folds, seed=seed,
                                           on_profile=progress, jobs=jobs, scheduler=scheduler))
    if plot is not None:
        from foedus.features.atomic import write_atomic
        from foedus.models.plots import skill_by_staleness as skill_plot

        figure = skill_plot(tables)
        write_atomic(plot, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
        err.print(f"wrote the plot to {plot}", highlight=False)
    if json_out:
        sys.stdout.write(json.dumps({spec: table.to_dict("records") for spec, table in tables.items()}, indent=2,
                                    default=str) + "\n")
        return
    from foedus.models.skill import brier_skill

    for spec, table in tables.items():
        shown = Table("target", "label source stale", "sources stale", "median / max staleness",
                      "continuing-dyad AP", "median onset percentile", "Brier", "Brier skill", "onset rate",
                      title=f"Skill by staleness, {spec}, {model} (continuing dyads, folds 1990-2018)")
        for row, skill in zip(table.itertuples(), brier_skill(table)):
            shown.add_row(row.target, str(row.label_staleness), str(row.stale_sources),
                          f"{row.median_staleness:g} / {row.max_staleness}",
                          _fmt(row.continuing_dyad_average_precision), _fmt(row.median_onset_percentile, 1),
                          _fmt(row.brier, 5), f"{skill:+.3f}", _fmt(row.onset_rate))
        out.print(shown)


def _target_years(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from foedus.features.errors import InvalidInput

    years: list[int] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        if not 1 <= len(bounds) <= 2 or not all(b.strip().isdigit() for b in bounds):
            raise InvalidInput(f"--years {text}: give years like 2019-2027 or 2020,2026")
        first, last = int(bounds[0]), int(bounds[-1])
        years += list(range(first, last + 1))
    return years


@app.command()
def compare(
    spec: str | None = typer.Option(None, "--label-spec", "-l", help="Only this label spec (default: all)."),
    last: int = typer.Option(20, help="How many runs."),
) -> None:
    """Print the latest backtest runs: model, label, pooled AP, ROC-AUC, Brier."""
    from foedus.jobs import compare as compare_job

    _print_compare(compare_job(spec, last=last))


@app.command()
def run(
    specs: list[str] | None = typer.Option(
        None, "--label-spec", "-l",
        help=SPEC_HELP + " Repeat for several labels (default: ATOP any and ATOP defense)."),
    models: str = typer.Option(MAIN_MODELS, help=MODELS_HELP),
    folds: str | None = typer.Option(None, help="Test blocks (default: five blocks 1919-2018)."),
    final_model: str = typer.Option("lightgbm", help="The model to train on all years and register."),
    present: bool = typer.Option(True, help="Also backtest and train the first label's present-day model for this "
                                 "year and rank this year's likeliest new alliances."),
    report: bool = typer.Option(True, help="Write the HTML report of the final model's backtest."),
    jobs: int | None = _jobs_option(),
    scheduler: str | None = _scheduler_option(),
    force: bool = _force_option("backtest and final model"),
) -> None:
    """The main job end to end: fetch and verify, build, backtest every model, train, compare (each label),
    this year's present-day model and top pairs, the report."""
    from foedus.cli_scoring import print_rank
    from foedus.features.years import NEXT_YEAR
    from foedus.main_job import MAIN_LABELS
    from foedus.main_job import run as run_job
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=out, transient=False, disable=not out.is_terminal)
    task = progress.add_task("main job", total=None)

    def on_step(name: str, done: int, total: int) -> None:
        progress.update(task, description=name, completed=done, total=total)
        if not out.is_terminal:  # logs get one line per step instead of a bar
            out.print(f"[{done + 1}/{total}] {name}", markup=False, highlight=False)

    with progress:
        result = run_job(specs or MAIN_LABELS, models=models, folds=folds, final_model=final_model,
                         show_progress=out.is_terminal, on_model=lambda r: progress.console.print(_backtest_line(r)),
                         on_step=on_step,
                         present_year=NEXT_YEAR - 1 if present else None, write_report=report, jobs=jobs,
                         scheduler=scheduler, force=force)
        progress.update(task, description="done", completed=len(result.steps))
    out.print("[green]raw data verified[/green]")
    for label in result.labels:
        out.rule(str(label.spec))
        _report_build(label.build)
        _print_threat_summary(label.threat_summary)
        _print_compare(label.compare)
        out.print(f"final {final_model}: run {label.train_run}; {label.promotion.describe()}")
    if result.present_train is not None:
        run_id, promotion = result.present_train
        out.rule(f"{result.present_year}")
        out.print(f"present-day {final_model} for {result.present_year}: run {run_id}; {promotion.describe()}")
        print_rank(result.top, result.present_spec)
    _print_summary(result)


def _print_summary(result) -> None:
    """What the main job wrote where, how long it took, and what to open next."""
    from foedus.features.config import Paths
    from foedus.models.registry import registered_name
    from foedus.models.tracking import tracking_uri

    paths = Paths.discover()
    table = Table("what", "where", title=f"Main job done in {_duration(result.seconds)}")
    table.add_row("raw data (verified)", str(paths.raw))
    for label in result.labels:
        table.add_row(f"dyad-year table, {label.spec}", str(label.build.path))
        made = "trained now" if label.promotion.reused is None else f"reused, run {label.promotion.reused.run_id}"
        table.add_row(f"champion, {label.spec}", f"models:/{registered_name(label.spec)}@champion "
                                                 f"(v{label.promotion.version} {made})")
    if result.present_train is not None:
        name = registered_name(result.present_spec, result.present_year)
        table.add_row(f"present-day model, {result.present_year}", f"models:/{name}@champion")
    table.add_row("MLflow store", tracking_uri(paths.root))
    if result.report is not None:
        table.add_row("report", str(result.report.html))
    table.add_row("open the UI", "foedus ui  (or .venv/bin/foedus ui)")
    out.print(table)
    slow = sorted(result.steps, key=lambda s: -s[1])[:3]
    out.print("longest steps: " + "; ".join(f"{name} {_duration(sec)}" for name, sec in slow), highlight=False)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _print_links(links) -> None:
    for name, url in links.experiments.items():
        out.print(f"  {name}: {url}", markup=False, highlight=False)
    if links.compare:
        out.print(f"  compare the latest backtest's {len(links.compared_runs)} models: {links.compare}",
                  markup=False, highlight=False)
    else:
        out.print("  no backtest yet: run `foedus run` or `foedus backtest` first", markup=False)


@app.command()
def ui(port: int | None = typer.Option(None, help="Port on 127.0.0.1 (default: a free one).")) -> None:
    """Start the MLflow UI on the project's store and print where to look; Ctrl-C stops it. With a
    tracking server in MLFLOW_TRACKING_URI, print where to look on that server (it is the UI)."""
    from foedus.features.config import Paths
    from foedus.models.tracking import tracking_uri
    from foedus.ui import start_server, stop_server, ui_links

    if port is not None and not 0 < port < 65536:
        raise FoedusError(f"--port {port}: give a TCP port between 1 and 65535")
    uri = tracking_uri(Paths.discover().root)
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        links = ui_links(base)  # meets the server first: unreachable, one line
        out.print(f"MLflow UI of the tracking server {base} (MLFLOW_TRACKING_URI)", markup=False, highlight=False)
        _print_links(links)
        return
    process, base = start_server(port=port)
    try:
        links = ui_links(base)
        out.print(f"MLflow UI on {base} (process {process.pid}); Ctrl-C stops it", markup=False, highlight=False)
        _print_links(links)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process)


@app.command()
def cite(
    spec: str = _spec_option(),
    fmt: str = typer.Option("bibtex", "--format", help="bibtex, text (one APA-like line per reference) or both."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (atomically), not stdout."),
    all_sources: bool = typer.Option(False, "--all", help="Cite every source in the manifest, not only a build's."),
) -> None:
    """Print the references to cite for exactly the sources a build used (its sidecar, else the spec), as ps_cite()."""
    from foedus.features.errors import InvalidInput
    from foedus.jobs import cite as cite_job

    if output is not None and output.is_dir():
        raise InvalidInput(f"--output {output} is a folder: give a file name, e.g. {output / 'references.bib'}")
    cited = cite_job(spec, all_sources=all_sources)
    text = cited.render(fmt)
    summary = f"{len(cited.references)} references for the {len(cited.sources)} sources of {cited.origin}"
    if output is not None:
        from foedus.features.atomic import write_atomic

        write_atomic(output, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
        out.print(f"wrote {summary} to {output}", markup=False, highlight=False)
        return
    sys.stdout.write(text + "\n")  # raw: BibTeX braces and brackets are not rich markup
    err.print(summary, markup=False, highlight=False)


# score, rank, threats, report and server live in their own modules and register themselves on ``app``
from foedus import cli_report, cli_scoring, cli_server  # noqa: E402,F401


class _OneLineWarnings(logging.Handler):
    """foedus's warnings (a damaged cache deleted, a build rebuilt or waiting for another) as
    one line each on stderr, beside the errors."""

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(self.format(record).split())
        err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def _route_warnings() -> None:
    logger = logging.getLogger("foedus")
    if not any(isinstance(h, _OneLineWarnings) for h in logger.handlers):
        handler = _OneLineWarnings(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False  # not a second time through Python's last-resort handler


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    _route_warnings()
    try:
        app()
    except FoedusError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: say so plainly; FOEDUS_DEBUG=1 shows the traceback
        if os.environ.get("FOEDUS_DEBUG"):
            raise
        err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))} "
                  "(a bug in foedus; rerun with FOEDUS_DEBUG=1 for the traceback and report it)", highlight=False)
        sys.exit(1)

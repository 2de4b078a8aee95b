"""The experiment commands: backtest, train, sweep, staleness, compare and the main job (run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from foedus.cli.common import (
    ALL_MODELS,
    FOR_YEAR_HELP,
    MAIN_MODELS,
    MODELS_HELP,
    SPEC_HELP,
    backtest_line,
    err,
    first_option,
    fmt,
    force_option,
    jobs_option,
    last_option,
    out,
    print_backtest,
    print_compare,
    print_threat_summary,
    report_build,
    scheduler_option,
    seed_option,
    spec_option,
)
from foedus.features.labels import DEFAULT_LABEL_SPEC
from rich.table import Table


def backtest(
    spec: str = spec_option(),
    models: str = typer.Option(ALL_MODELS, help=MODELS_HELP),
    folds: str | None = typer.Option(
        None, help="Test blocks, e.g. 1946-1969,1970-1989 (default: five blocks 1919-2018)."),
    seed: int = seed_option(),
    for_year: int | None = typer.Option(None, "--for-year",
                                        help=FOR_YEAR_HELP + " Default folds: 1990-2004,2005-2018."),
    jobs: int | None = jobs_option(),
    scheduler: str | None = scheduler_option(),
    sweep: bool = typer.Option(False, "--sweep", help="LightGBM only: fit each fold with the best trial of the "
                               "`foedus sweep` study of the years before it, instead of its own grid tuning."),
    force: bool = force_option("backtest"),
    first: int | None = first_option("backtested: every fold trains from it"),
    last: int | None = last_option("backtested: every fold lies inside it"),
) -> None:
    """Out-of-time backtest of each model, tracked in MLflow (parent run per model, nested run per fold)."""
    from foedus.jobs import backtest as backtest_job

    backtest_job(spec, models, folds, seed=seed, for_year=for_year, on_model=print_backtest, jobs=jobs,
                 scheduler=scheduler, sweep=sweep, force=force, first=first, last=last)


def train(
    spec: str = spec_option(),
    model: str = typer.Option("lightgbm", help=f"The model to fit on all labelled years, one of: {ALL_MODELS}."),
    seed: int = seed_option(),
    for_year: int | None = typer.Option(None, "--for-year", help=FOR_YEAR_HELP + " Registered as "
                                        "foedus-onset-<spec>-for<year>; backtested first if that year has no "
                                        "backtest yet."),
    sweep: bool = typer.Option(False, "--sweep", help="LightGBM only: fit it with the best trial of the `foedus "
                               "sweep` study of every labelled year; judged by the latest `backtest --sweep`."),
    force: bool = force_option("final model"),
    first: int | None = first_option("fitted on; judged by a backtest on the same years"),
    last: int | None = last_option("fitted on"),
) -> None:
    """Fit the final model on all labelled years and register it; 'champion' moves only if it beats the champion."""
    from foedus.features.years import FIRST_YEAR, LAST_YEAR
    from foedus.jobs import train as train_job

    run_id, promotion = train_job(spec, model, seed=seed, for_year=for_year, on_backtest=print_backtest,
                                  sweep=sweep, force=force, first=first, last=last)
    what = "" if for_year is None else f" (the present-day model for {for_year})"
    span = "" if first is None and last is None else f" of {first or FIRST_YEAR}-{last or LAST_YEAR}"
    if promotion.reused is None:
        out.print(f"trained {model} on every labelled year{span}{what} (run {run_id})")
    out.print(promotion.describe(), highlight=False)


def sweep(
    spec: str = spec_option(),
    trials: int = typer.Option(20, help="Trials to add to each study (a study that exists is continued)."),
    folds: str | None = typer.Option(None, help="Test blocks, e.g. 1946-1969,1990-2004: one study each, on the "
                                     "years before the block only (for `backtest --sweep`)."),
    final: bool = typer.Option(True, "--final/--no-final", help="Also the study of every labelled year (for "
                               "`train --sweep`)."),
    storage: str | None = typer.Option(None, help="Optuna storage URL (default: FOEDUS_SWEEP_STORAGE, else "
                                       "mlruns/optuna.db); a team's: postgresql+psycopg2://user@host/optuna."),
    batch: int | None = typer.Option(None, help="Trials asked at once and run side by side (default 4); the "
                                     "study depends on it, not on --jobs."),
    seed: int = seed_option(),
    jobs: int | None = jobs_option(),
    scheduler: str | None = scheduler_option(),
) -> None:
    """Optuna study of LightGBM's hyperparameters, scored out of time inside the years before each test block."""
    from foedus.sweeps import sweep as sweep_job

    def shown(params: dict) -> str:
        return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())

    def progress(cut, trial) -> None:
        err.print(f"{cut.name}: trial {trial.number} continuing-dyad AP {fmt(trial.value)} ({shown(trial.params)})",
                  highlight=False, markup=False)

    for study in sweep_job(spec, trials, folds, final=final, storage=storage, seed=seed, batch=batch, jobs=jobs,
                           scheduler=scheduler, on_trial=progress):
        best = shown(study["best_params"])
        out.print(f"{study['cut']}: best trial {study['best_trial']} of {study['trials']}, continuing-dyad AP "
                  f"{fmt(study['best_value'])} ({best}); study '{study['study']}' in {study['storage']}, "
                  f"run {study['run_id']}", highlight=False, markup=False)


def staleness(
    specs: list[str] = typer.Option([DEFAULT_LABEL_SPEC], "--label-spec", "-l",
                                    help=SPEC_HELP + " Repeat for several (one table each, one plot)."),
    model: str = typer.Option("lightgbm", help=f"The model to backtest, one of: {ALL_MODELS}."),
    years: str | None = typer.Option(None, help="Target years, e.g. 2019-2027 or 2020,2026 (default: the first "
                                     "year past the label data through next year)."),
    folds: str | None = typer.Option(None, help="Test blocks (default: 1990-2004,2005-2018)."),
    seed: int = seed_option(),
    latest: bool = typer.Option(False, "--latest", help="Show the latest logged tables instead of backtesting."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write the plot of every table (PNG)."),
    json_out: bool = typer.Option(False, "--json", help="Print the tables as JSON (by label spec)."),
    jobs: int | None = jobs_option(),
    scheduler: str | None = scheduler_option(),
) -> None:
    """Skill by staleness: backtest the model fresh and as stale as each target year's forecast, and compare."""
    from foedus.jobs import latest_skill, skill_by_staleness

    def progress(row: dict) -> None:
        err.print(f"{row['target']}: continuing-dyad AP {fmt(row['continuing_dyad_average_precision'])}, "
                  f"median onset percentile {fmt(row['median_onset_percentile'], 1)}, "
                  f"Brier {fmt(row['brier'], 5)} ({row['profile'][:80]})", highlight=False)

    tables = {}
    for spec in specs:
        tables[spec] = (latest_skill(spec, model) if latest else
                        skill_by_staleness(spec, _target_years(years), model=model, folds=folds, seed=seed,
                                           on_profile=progress, jobs=jobs, scheduler=scheduler))
    if plot is not None:
        from foedus.infra.atomic import write_atomic
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
                          fmt(row.continuing_dyad_average_precision), fmt(row.median_onset_percentile, 1),
                          fmt(row.brier, 5), f"{skill:+.3f}", fmt(row.onset_rate))
        out.print(shown)


def _target_years(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from foedus.infra.errors import InvalidInput

    years: list[int] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        if not 1 <= len(bounds) <= 2 or not all(b.strip().isdigit() for b in bounds):
            raise InvalidInput(f"--years {text}: give years like 2019-2027 or 2020,2026")
        first, last = int(bounds[0]), int(bounds[-1])
        years += list(range(first, last + 1))
    return years


def compare(
    spec: str | None = typer.Option(None, "--label-spec", "-l", help="Only this label spec (default: all)."),
    last: int = typer.Option(20, help="How many runs."),
) -> None:
    """Print the latest backtest runs: model, label, pooled AP, ROC-AUC, Brier."""
    from foedus.jobs import compare as compare_job

    print_compare(compare_job(spec, last=last))


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
    jobs: int | None = jobs_option(),
    scheduler: str | None = scheduler_option(),
    force: bool = force_option("backtest and final model"),
) -> None:
    """The main job end to end: fetch and verify, build, backtest every model, train, compare (each label),
    this year's present-day model and top pairs, the report."""
    from foedus.cli.scoring import print_rank
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
                         show_progress=out.is_terminal, on_model=lambda r: progress.console.print(backtest_line(r)),
                         on_step=on_step,
                         present_year=NEXT_YEAR - 1 if present else None, write_report=report, jobs=jobs,
                         scheduler=scheduler, force=force)
        progress.update(task, description="done", completed=len(result.steps))
    out.print("[green]raw data verified[/green]")
    for label in result.labels:
        out.rule(str(label.spec))
        report_build(label.build)
        print_threat_summary(label.threat_summary)
        print_compare(label.compare)
        out.print(f"final {final_model}: run {label.train_run}; {label.promotion.describe()}")
    if result.present_train is not None:
        run_id, promotion = result.present_train
        out.rule(f"{result.present_year}")
        out.print(f"present-day {final_model} for {result.present_year}: run {run_id}; {promotion.describe()}")
        print_rank(result.top, result.present_spec)
    _print_summary(result)


def _print_summary(result) -> None:
    """What the main job wrote where, how long it took, and what to open next."""
    from foedus.infra.config import Paths
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

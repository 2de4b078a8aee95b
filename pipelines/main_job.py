"""The main job (``foedus run``, ``make run``), end to end: fetch and verify the raw data; for
each label (ATOP any and ATOP defense by default) build, backtest every model out of time,
train and register the champion, compare; train this year's present-day model for the first
label and rank the likeliest new alliances of this year; write the HTML report. Each step is a
function of ``foedus.jobs`` / ``foedus.scoring`` / ``foedus.report``; this module only
sequences them and reports progress.

The backtests of every label (and of the present-day model, when it has none yet) run as one
fan-out of (label, model, fold) tasks through one executor (``foedus.models.executor``), so
the labels are built first, then backtested together, then trained."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from foedus.features.build import BuildResult
from foedus.features.labels import LabelSpec
from foedus.features.labels import as_label_spec as _spec
from foedus.features.summary import threat_onset_summary
from foedus.features.years import NEXT_YEAR
from foedus.infra.config import Paths
from foedus.jobs import backtest_request, build, compare, fetch_data, run_backtests, train
from foedus.store import configure_tracking

MAIN_LABELS = ("atop:any:1", "atop:defense:1")
TOP_PAIRS = 10


@dataclass(frozen=True)
class LabelRun:
    """One label's part of the main job."""

    spec: LabelSpec
    build: BuildResult  # released: its table is on disk (build.path), not held
    threat_summary: pd.DataFrame  # foedus.features.summary.threat_onset_summary of the table
    backtests: list  # BacktestResult per model, each with its run_id, released (its forecasts are in its run)
    train_run: str  # the final model's run id
    promotion: object  # foedus.models.registry.Promotion: did the champion alias move?
    compare: pd.DataFrame


@dataclass
class RunResult:
    """What the main job did and wrote."""

    labels: list[LabelRun]
    present_year: int | None = None  # the year the present-day model was trained for
    present_spec: LabelSpec | None = None
    present_train: tuple | None = None  # its (run id, Promotion)
    top: pd.DataFrame | None = None  # the likeliest new alliances of present_year (foedus.scoring.rank)
    report: object | None = None  # foedus.report.ReportResult
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)  # (step, seconds) in order


def plan(specs: Sequence[LabelSpec], n_models: int, present_year: int | None, report: bool,
         present_backtest: bool = False) -> list[str]:
    """The steps of the main job, in order (what the progress bar counts and ``run`` walks through).
    The backtests of every label (and of the present-day model, ``present_backtest``) run side by
    side and each model is logged as soon as its folds are done: a step per model, in the order
    they finish (the line printed as each finishes names it)."""
    steps = ["fetch and verify the raw data"] + [f"{spec}: build" for spec in specs]
    n_backtests = len(specs) * n_models + int(present_backtest)
    steps += [f"backtests: model {i + 1} of {n_backtests} to finish" for i in range(n_backtests)]
    steps += [f"{spec}: train the final model" for spec in specs]
    if present_year is not None:
        steps += [f"{specs[0]}: present-day model for {present_year}", f"{specs[0]}: rank {present_year}"]
    if report:
        steps.append("write the report")
    return steps


def _build_and_summarise(spec: LabelSpec, paths: Paths):
    """The build of ``spec`` without its table (the backtests and train read the table where
    they need it; a local holding it would keep 0.4 GB through the backtests) and its summary."""
    built = build(spec, paths=paths)
    return built.released(), threat_onset_summary(built.table)


def run(specs: Sequence[LabelSpec | str] | LabelSpec | str = MAIN_LABELS, *,
        models: str | Sequence[str] | None = None, folds: str | Sequence | None = None,
        final_model: str = "lightgbm", paths: Paths | None = None, show_progress: bool = True,
        on_model: Callable | None = None, on_step: Callable[[str, int, int], None] | None = None,
        present_year: int | None = NEXT_YEAR - 1, top: int = TOP_PAIRS, write_report: bool = True,
        jobs: int | None = None, scheduler: str | None = None, force: bool = False) -> RunResult:
    """Run the main job. ``specs``: one label spec or several (default ATOP any and ATOP defense).
    ``models``: default every model of the catalogue but those kept out of the main job
    (``MAIN_JOB_MODELS``). ``present_year`` (default this year; None skips it): the first label's present-day model is
    backtested and trained for it and its ``top`` likeliest new alliances ranked. ``on_step(step,
    done, total)`` is called as each step starts (the CLI's progress bar), ``on_model(result)``
    as each backtest finishes. ``jobs`` / ``scheduler``: what runs the backtests' tasks
    (``foedus.jobs.backtest``). Backtests and final models whose inputs are identical to earlier
    finished runs' are taken from those runs (``foedus.models.reuse``); ``force`` computes them
    again. The report is written anew each time."""
    from foedus.models.backtest import forget_tables
    from foedus.models.catalogue import MAIN_JOB_MODELS, model_names, model_spec
    from foedus.models.executor import executor

    started = time.monotonic()
    paths = paths or Paths.discover()
    specs = [_spec(s) for s in ([specs] if isinstance(specs, str | LabelSpec) else specs)]
    model_spec(final_model)  # a typo fails now, not after the backtests
    names = model_names(MAIN_JOB_MODELS if models is None else models)
    configure_tracking(paths)  # an unreachable tracking server fails now, before any work
    # the present-day model's backtest, fanned out with the rest (taken from the store if unchanged):
    # its final model is judged by it
    present_backtest = present_year is not None
    steps = plan(specs, len(names), present_year, write_report, present_backtest)
    upcoming = iter(steps)
    timings: list[tuple[str, float]] = []
    current: list = [None, started]  # the running step and when it started

    def step() -> None:
        """Close the running step (its time) and start the next one of ``steps``, if any."""
        now = time.monotonic()
        if current[0] is not None:
            timings.append((current[0], now - current[1]))
        current[:] = [next(upcoming, None), now]
        if current[0] is not None and on_step is not None:
            on_step(current[0], len(timings), len(steps))

    with executor(jobs, scheduler) as ex:  # an unreachable cluster fails now too
        step()
        fetch_data(paths=paths, show_progress=show_progress)
        builds, summaries = [], []
        for spec in specs:
            step()  # build
            built, summary = _build_and_summarise(spec, paths)
            builds.append(built)
            summaries.append(summary)
        requests = [backtest_request(spec, names, folds) for spec in specs]
        if present_backtest:
            requests.append(backtest_request(specs[0], [final_model], for_year=present_year))
        done = [0]  # backtests finished

        def each(result) -> None:
            done[0] += 1
            if on_model is not None:
                on_model(result)
            if done[0] < len(specs) * len(names) + int(present_backtest):
                step()  # the next model's backtest

        step()  # the first model's backtest
        # the final models are fitted beside the backtests (where their backtests are computed)
        finals = {i: final_model for i in range(len(requests)) if final_model in requests[i].models}
        fitted: dict = {}  # request index -> FinalFit, for the backtests computed now
        # each backtest kept without its forecasts once logged (they are in its run), and the
        # tables the logging read forgotten: train reads its own, one at a time
        backtests = run_backtests(requests, paths=paths, on_model=each, ex=ex, force=force, finals=finals,
                                  on_final=fitted.__setitem__, keep_forecasts=False)
        forget_tables()
    labels = []
    for i, (spec, built, results) in enumerate(zip(specs, builds, backtests)):
        step()  # train
        run_id, promotion = train(spec, final_model, paths=paths, force=force, fitted=fitted.get(i))
        labels.append(LabelRun(spec, built, summaries[i], results, run_id, promotion,
                               compare(spec, last=len(results), paths=paths)))
    result = RunResult(labels)
    if present_year is not None:
        from foedus.scoring import rank

        step()  # the present-day model
        result.present_year, result.present_spec = present_year, specs[0]
        result.present_train = train(specs[0], final_model, for_year=present_year, paths=paths, on_backtest=on_model,
                                     force=force, fitted=fitted.get(len(specs)))
        step()  # rank
        result.top = rank(present_year, specs[0], top=top, paths=paths)
    if write_report:
        from foedus.report import report

        step()  # the report
        result.report = report(labels[0].backtests[names.index(final_model)].run_id
                               if final_model in names else None, paths=paths)
    step()  # past the last step: its time is recorded
    result.steps = timings
    result.seconds = time.monotonic() - started
    return result

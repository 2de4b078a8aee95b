"""``foedus report``: parse, call ``foedus.report.report``, say where the report went."""

from __future__ import annotations

from pathlib import Path

import typer
from foedus.cli.common import out


def report(
    run: str | None = typer.Option(None, "--run", help="The backtest's run id (default: the newest finished lightgbm "
                                   "backtest of the default label spec, else the newest backtest of any model)."),
    output: Path | None = typer.Option(None, "--output", help="The folder for report.html and its PNG figures "
                                       "(default: reports/<run id>/ in the project)."),
    log: bool = typer.Option(True, "--log/--no-log", help="Also log the report to the run under report/, so that "
                             "it opens from the MLflow UI."),
) -> None:
    """Write a backtest's self-contained HTML report (figures embedded) and its figures as PNG files."""
    from foedus.report import report as report_job

    result = report_job(run, output, log_to_run=log)
    out.print(f"wrote the report of run {result.run_id} to {result.html} ({len(result.pngs)} figures beside it "
              "as PNG)", markup=False, highlight=False)
    if result.logged:
        out.print(f"logged to run {result.run_id} under report/ (open report/report.html among its artifacts in "
                  "the MLflow UI)", markup=False, highlight=False)
    else:
        out.print("not logged to the run (--no-log)", markup=False, highlight=False)

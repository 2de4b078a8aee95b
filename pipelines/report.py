"""``foedus report``: one backtest as a self-contained HTML page, for reading outside MLflow.

``report`` gathers what a backtest logged (``foedus.models.experiment.log_backtest``): its
headline metrics, the latest backtest of every model for comparison, its figures, per-fold
metrics, the threat-without-alliance tables, the skill-by-staleness table of its label spec
and this year's likeliest new alliances; ``foedus.models.report`` renders them. The page and
its figures (as PNG files) go to ``<project>/reports/<run id>/`` and are logged to the run
under ``report/``, so that the MLflow UI opens the report from the run's artifacts.

Every section is present only where its data exist; where one is absent, the page says why and
what to run. Looking runs up never writes to the tracking store (no experiment is created or
retagged): only the report itself is logged, and only with ``log_to_run``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from foedus.features.labels import DEFAULT_LABEL_SPEC, as_label_spec
from foedus.infra.config import Paths
from foedus.infra.errors import InvalidInput
from foedus.models.report import Paragraph, render_html
from foedus.report_sections import (
    Artifacts,
    accuracy,
    chosen_run,
    comparison,
    explanations,
    formation,
    header_blocks,
    next_pairs,
    skill,
    threats,
)


@dataclass(frozen=True)
class ReportResult:
    """What ``report`` wrote: the page, the figures beside it, the run, and whether it was logged."""

    run_id: str
    html: Path
    pngs: tuple[Path, ...]
    logged: bool  # logged to the run under ``report/``


# --- the job ---------------------------------------------------------------------------------

def _write(folder: Path, html: str, figures: dict[str, bytes]) -> tuple[Path, tuple[Path, ...]]:
    from foedus.infra.atomic import write_atomic

    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"--output {folder} is a file: give a folder for report.html and its figures")
    pngs = tuple(write_atomic(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
                 for name, png in figures.items())
    page = write_atomic(folder / "report.html", lambda tmp: tmp.write_text(html, encoding="utf-8"))
    return page, pngs


def reports_dir(paths: Paths) -> Path:
    """Where reports go: ``FOEDUS_REPORTS_DIR`` if set, else ``<project>/reports``."""
    return Path(os.environ.get("FOEDUS_REPORTS_DIR") or paths.root / "reports")


def report(run_id: str | None = None, output: Path | None = None, *, paths: Paths | None = None,
           log_to_run: bool = True) -> ReportResult:
    """Write the HTML report of a backtest (``run_id``, default the newest lightgbm backtest of
    the default label spec) and its figures into ``output`` (default
    ``<project>/reports/<run id>/``); with ``log_to_run``, log them to the run under ``report/``."""
    from foedus.models.tracking import configure
    from mlflow.tracking import MlflowClient

    paths = paths or Paths.discover()
    uri = configure(paths.root)
    client = MlflowClient()
    run = chosen_run(client, run_id, uri)
    run_id = run.info.run_id
    spec = as_label_spec(run.data.tags.get("label_spec") or run.data.params.get("label_spec") or DEFAULT_LABEL_SPEC)
    model = run.data.tags.get("model", "lightgbm")
    folder = Path(output) if output is not None else reports_dir(paths) / run_id
    figures: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(Path(tmp))
        slices = artifacts.csv(run_id, "metrics/slices.csv")
        sections = [
            comparison(paths.root, run, spec),
            accuracy(client, run, artifacts, figures),
            explanations(run, artifacts, figures),
            formation(run, artifacts, figures),
            threats(run, artifacts, paths),
            skill(client, spec, model, artifacts, figures),
            next_pairs(client, spec, paths),
        ]
        intro = [*header_blocks(run, spec, slices),
                 Paragraph(f"Written {datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M UTC')} by `foedus report` from "
                           f"the tracking store {uri}.")]
        html = render_html(f"foedus backtest: {model}, {spec}", sections, intro)
    page, pngs = _write(folder, html, figures)
    if log_to_run:
        # file by file, not the folder: an --output folder may hold other files
        for path in (*pngs, page):
            client.log_artifact(run_id, str(path), "report")
    return ReportResult(run_id=run_id, html=page, pngs=pngs, logged=log_to_run)

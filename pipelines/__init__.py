"""foedus: forecast the formation of formal military alliances between pairs of states.

The notebook API (each CLI command is a thin layer over one of these):

- ``foedus.fetch_data()``: fill ``data/raw/`` with verified raw files (``foedus data fetch``).
- ``foedus.data_status()``: each source's presence, checksum, version and years (``foedus data status``).
- ``foedus.load_source(key)``: one source as a typed table.
- ``foedus.resolve_state(query, year=None)``: a COW code, abbreviation or name to one state.
- ``foedus.labelled_universe(spec)``: the dyad-year universe with ``at_risk`` and ``onset``.
- ``foedus.build(spec)``: the same, written to ``data/processed/`` (``foedus build``).
- ``foedus.describe(spec)``: onset rates overall and among shared-threat dyad-years, by era.
- ``foedus.backtest(spec, models)``: out-of-time backtests (computed, then logged to MLflow; ``foedus backtest``).
- ``foedus.train(spec, model)``: the final model, registered with the champion rule (``foedus train``).
- ``foedus.sweep(spec, trials, folds)``: Optuna studies of LightGBM's hyperparameters, each on the years before a
  test block or on every labelled year; ``backtest(..., sweep=True)`` and ``train(..., sweep=True)`` use their best
  trials (``foedus sweep``).
- ``foedus.compare(spec)``: the latest backtest runs (``foedus compare``).
- ``foedus.run(specs)``: the main job end to end for one or several labels (``foedus run``); returns a ``RunResult``.
- ``foedus.LabelSpec``: which alliances count as an onset.
- ``foedus.score(a, b, year)``: one pair's probability, percentile and reasons (``foedus score``).
- ``foedus.score_batch(pairs)``: a table of pairs, scored column-wise; ``foedus.score_csv(input, output)`` streams
  a CSV of any length through it in chunks (``foedus score --input --output``).
- ``foedus.rank(year)``: the likeliest new alliances of a year (``foedus rank``).
- ``foedus.threats(year)``: pairs sharing a threat without an alliance, and what holds them back (``foedus threats``).
- ``foedus.report(run_id)``: the self-contained HTML report of a backtest, logged to its run (``foedus report``).
- ``foedus.start_server()`` / ``foedus.ui_links(base)`` / ``foedus.stop_server(process)``: the MLflow UI on the
  project's store and the links to open (``foedus ui``).
- ``foedus.cite(spec)``: BibTeX or text references for the sources a build used (``foedus cite``).

Names are imported lazily, so ``import foedus.features`` never loads the CLI or models.
"""

from importlib import import_module

from foedus.infra.memory import avoid_huge_page_stalls
from foedus.infra.version import VERSION as __version__  # noqa: F401

# before numpy is imported, so that every foedus process and its workers allocate without stalls
avoid_huge_page_stalls()

_API = {
    "fetch_data": "foedus.jobs",
    "data_status": "foedus.jobs",
    "labelled_universe": "foedus.jobs",
    "build": "foedus.jobs",
    "run": "foedus.main_job",
    "describe": "foedus.jobs",
    "backtest": "foedus.jobs",
    "train": "foedus.jobs",
    "compare": "foedus.jobs",
    "sweep": "foedus.sweeps",
    "BuildResult": "foedus.jobs",
    "RunResult": "foedus.main_job",
    "cite": "foedus.jobs",
    "report": "foedus.report",
    "start_server": "foedus.ui",
    "ui_links": "foedus.ui",
    "stop_server": "foedus.ui",
    "score": "foedus.scoring",
    "score_batch": "foedus.models.pairs",
    "score_csv": "foedus.batch",
    "rank": "foedus.scoring",
    "threats": "foedus.scoring",
    "load_source": "foedus.features.readers",
    "resolve_state": "foedus.features.states",
    "LabelSpec": "foedus.features.labels",
    "FoedusError": "foedus.infra.errors",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'foedus' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(_API))

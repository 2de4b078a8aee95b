"""The sweep job (``foedus sweep``) and the look-ups that let backtest and train use its best
parameters, as plain functions for notebooks. The computation is ``foedus.models.sweep``; the
MLflow runs ``foedus.models.sweep_tracking``.

Storage: an Optuna RDB URL, ``--storage`` or ``FOEDUS_SWEEP_STORAGE``; by default the SQLite
file ``optuna.db`` beside the project's MLflow database in ``mlruns/`` (its own file: Optuna and
MLflow each keep an Alembic version table, which one database cannot hold twice). A team points
every member at one PostgreSQL database, ``postgresql+psycopg2://user@host:5432/optuna``
(the password from ``PGPASSWORD`` or ``~/.pgpass``, never in the repository).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec
from foedus.features.labels import as_label_spec as _spec
from foedus.infra.config import Paths
from foedus.infra.errors import InvalidInput

STORAGE_VARIABLE = "FOEDUS_SWEEP_STORAGE"
DEFAULT_TRIALS = 20


def sweep_storage(paths: Paths, storage: str | None = None) -> str:
    """``storage``, else ``FOEDUS_SWEEP_STORAGE``, else ``optuna.db`` beside the local MLflow
    store's database (the project's ``mlruns/``; there too when tracking goes to a server)."""
    from foedus.models.tracking import is_local, tracking_uri

    storage = storage or os.environ.get(STORAGE_VARIABLE)
    if storage:
        return _with_pg_password(storage)
    uri = tracking_uri(paths.root)
    folder = Path(uri.removeprefix("sqlite:///")).parent if is_local(uri) else Path(paths.root) / "mlruns"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / 'optuna.db').resolve()}"


def _with_pg_password(storage: str) -> str:
    """A PostgreSQL URL without a password gets ``PGPASSWORD`` (libpq reads it too, but
    SQLAlchemy's URL is what psycopg2 is given)."""
    password = os.environ.get("PGPASSWORD")
    if not storage.startswith("postgresql") or not password or "@" not in storage:
        return storage
    scheme, rest = storage.split("://", 1)
    user, host = rest.split("@", 1)
    if ":" in user:
        return storage
    from urllib.parse import quote

    return f"{scheme}://{user}:{quote(password, safe='')}@{host}"


def _cuts(spec: LabelSpec, folds, final: bool, delay: int):
    from foedus.models.folds import parse_folds
    from foedus.models.sweep import Cut

    folds = () if folds is None else (parse_folds(folds) if isinstance(folds, str) else tuple(folds))
    cuts = [Cut.of(fold, delay) for fold in folds] + ([Cut.of(None, delay)] if final else [])
    if not cuts:
        raise InvalidInput("nothing to sweep: give --folds, or leave --final on (the study of every labelled year)")
    return cuts


def sweep(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, trials: int = DEFAULT_TRIALS, folds: str | Sequence | None = None,
          *, final: bool = True, storage: str | None = None, seed: int | None = None, batch: int | None = None,
          paths: Paths | None = None, jobs: int | None = None, scheduler: str | None = None,
          on_trial: Callable | None = None) -> list[dict]:
    """Optuna studies of LightGBM's hyperparameters on ``spec``'s table, ``trials`` more trials
    each: one study per test block of ``folds`` (``"1946-1969,1990-2004"``; it sees only the
    years before the block: what ``backtest(..., sweep=True)`` then uses for that fold) and,
    with ``final``, one of every labelled year (what ``train(..., sweep=True)`` uses). Each
    trial is scored on the validation blocks inside the study's years (``foedus.models.sweep``),
    its fits run on the executor (``jobs`` / ``scheduler``, as in ``backtest``) and it is logged
    as a nested MLflow run under the study's run. A study is continued if it exists.

    Returns one summary per study: its name, cut, run id, best value, trial and parameters.
    ``on_trial(cut, trial)`` is called after each trial (the CLI prints progress with it)."""
    from foedus.features.build import ensure_built
    from foedus.models.backtest import TableRef, load_table
    from foedus.models.executor import executor
    from foedus.models.folds import label_delay
    from foedus.models.seed import DEFAULT_SEED
    from foedus.models.sweep import (
        BATCH,
        model_params,
        open_storage,
        open_study,
        run_study,
        storage_url,
        study_name,
    )
    from foedus.models.sweep_tracking import log_study
    from foedus.store import configure_tracking

    if trials < 1:
        raise InvalidInput(f"--trials {trials}: give at least 1")
    batch = BATCH if batch is None else batch
    if batch < 1:
        raise InvalidInput(f"--batch {batch}: give at least 1")
    paths = paths or Paths.discover()
    spec = _spec(spec)
    seed = DEFAULT_SEED if seed is None else seed
    cuts = _cuts(spec, folds, final, label_delay(spec))  # a fresh table: the horizon
    storage = sweep_storage(paths, storage)
    configure_tracking(paths)
    studies = open_storage(storage)  # an unreachable storage fails now, before the build
    path, provenance = ensure_built(spec, paths=paths)
    table = TableRef.of(path, provenance)
    frame = load_table(table)
    summaries = []
    with executor(jobs, scheduler) as ex:
        for cut in cuts:
            blocks = cut.blocks(frame)
            study = open_study(study_name(str(spec), cut, provenance["build_key"]), studies, seed)
            report = (lambda trial, cut=cut: on_trial(cut, trial)) if on_trial is not None else None
            run_id = log_study(run_study(study, table, cut, blocks, trials, ex, seed=seed, batch=batch,
                                         on_trial=report),
                               study, spec, cut, blocks, provenance=provenance, root=paths.root, storage=storage,
                               seed=seed, batch=batch, n_trials=trials)
            best = study.best_trial
            summaries.append({"study": study.study_name, "cut": cut.name, "run_id": run_id,
                              "best_value": float(best.value), "best_trial": best.number,
                              "best_params": model_params(best.params), "trials": len(study.trials),
                              "storage": storage_url(storage)})
    return summaries


def _best(spec: LabelSpec, fold, provenance: dict, storage: str) -> tuple[str, dict, float, int]:
    """(study name, parameters, value, trial number) of the best trial of the study of the years
    before ``fold`` (every labelled year for None) on the table ``provenance`` describes; a
    one-line error names a missing study."""
    from foedus.models.folds import label_delay
    from foedus.models.sweep import Cut, best_params, study_name

    name = study_name(str(spec), Cut.of(fold, label_delay(spec, provenance)), provenance["build_key"])
    return (name, *best_params(name, storage))


def swept_fold_params(spec: LabelSpec, folds, provenance: dict, paths: Paths,
                      storage: str | None = None) -> tuple[dict, dict]:
    """({fold name: parameters}, {fold name: study}) from the sweep study of the years before
    each fold, on the table ``provenance`` describes."""
    storage = sweep_storage(paths, storage)
    params, studies = {}, {}
    for fold in folds:
        studies[fold.name], params[fold.name], _, _ = _best(spec, fold, provenance, storage)
    return params, studies


def swept_final_params(spec: LabelSpec, provenance: dict, paths: Paths,
                       storage: str | None = None) -> tuple[dict, dict]:
    """(parameters, what the train run is tagged with) of the best trial of the study of every
    labelled year on the table ``provenance`` describes."""
    name, params, value, number = _best(spec, None, provenance, sweep_storage(paths, storage))
    return params, {"study": name, "trial": number, "value": f"{value:.6f}"}

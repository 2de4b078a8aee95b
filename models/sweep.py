"""Hyperparameter sweeps of LightGBM: an Optuna study per cut, under the time-aware protocol.

A cut is the years a study may see: for a backtest's test block starting in year F, the
labelled rows whose onset window ends before F (``year + delay - 1 < F``, the rule of
``folds.split``); for the final model, every labelled year. Inside them, as in
``foedus.models.tuning``, the last ``INNER_BLOCKS`` blocks of ``BLOCK_YEARS`` years are
validation blocks: a trial's parameters are fitted on the years before each block and forecast
it, and the trial's value is the headline's figure, average precision on continuing dyads,
pooled over the blocks. A test block, and any year after it, is never read: the sweep of the
block starting in F gives the same trials whatever the table holds from F on (a test proves it
by scrambling those years).

Trials are asked of the study in batches of ``batch`` (Optuna's ask-and-tell), and each
(trial, block) fit is one pure task (``trial_block``) for the executor; the study, the
storage and MLflow are touched only by the caller. The sampler is TPE with a fixed seed; the
batch size, not the executor, decides which trials are asked, so serial and parallel sweeps
give the same study.

A study is named by the label spec, the cut and the table's build key
(``study_name``): a rebuilt table (other features, other data) starts a new study, and a
study's best parameters are only ever used on the table they were found on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from foedus.features.labels import labelled
from foedus.infra.errors import FoedusError, InvalidInput
from foedus.models.backtest import TableRef, load_table, one_blas_thread
from foedus.models.estimators import CLIMATE, LightGBMOnset, continuing
from foedus.models.folds import Fold, split
from foedus.models.metrics import average_precision_of
from foedus.models.seed import DEFAULT_SEED
from foedus.models.tuning import BLOCK_YEARS, INNER_BLOCKS, inner_blocks

MODEL = "lightgbm"  # the model a sweep tunes
BATCH = 4  # trials asked at once: they run side by side on the executor
DIRECTION = "maximize"


def suggest(trial) -> dict:
    """A trial's LightGBM parameters (``LightGBMOnset``'s names), from the search space: tree
    size and leaf weight, learning rate and rounds, row and column sampling, L2, and whether
    last year's alliance climate sets the year's level."""
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 20, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "n_rounds": trial.suggest_int("n_rounds", 50, 600, step=50),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 0.01, 100.0, log=True),
        "climate": CLIMATE if trial.suggest_categorical("climate_level", [True, False]) else None,
    }


def model_params(optuna_params: Mapping) -> dict:
    """``LightGBMOnset`` keyword arguments from a trial's stored parameters."""
    params = {k: v for k, v in optuna_params.items() if k != "climate_level"}
    params["climate"] = CLIMATE if optuna_params.get("climate_level", True) else None
    return params


@dataclass(frozen=True)
class Cut:
    """The years a study may see: labelled rows with ``year + delay - 1 < before`` (every
    labelled row when ``before`` is None: the final model's study)."""

    before: int | None
    delay: int = 1

    @property
    def name(self) -> str:
        return "all labelled years" if self.before is None else f"before {self.before}"

    @classmethod
    def of(cls, fold: Fold | None, delay: int = 1) -> Cut:
        return cls(None if fold is None else fold.first, delay)

    def rows(self, table) -> np.ndarray:
        rows = labelled(table)
        if self.before is not None:
            rows &= table["year"].to_numpy() + self.delay - 1 < self.before
        return rows

    def blocks(self, table) -> tuple[Fold, ...]:
        years = table.loc[self.rows(table), "year"].to_numpy()
        if years.size == 0:
            raise InvalidInput(f"no labelled year {self.name}: choose a later test block for the sweep")
        blocks = inner_blocks(years, self.delay, INNER_BLOCKS, BLOCK_YEARS)
        if not blocks:
            raise InvalidInput(f"the labelled years {self.name} ({years.min()}-{years.max()}) leave no "
                               f"{BLOCK_YEARS}-year validation block with training years before it")
        return blocks


def study_name(label_spec: str, cut: Cut, build_key: str) -> str:
    return f"foedus {MODEL} {label_spec} {cut.name} table {str(build_key)[:12]}"


@dataclass(frozen=True)
class BlockTask:
    """One trial's fit on one validation block: what ``trial_block`` needs, small enough to send."""

    table: TableRef
    cut: Cut
    block: Fold
    params: Mapping
    seed: int = DEFAULT_SEED
    trial: int = -1


@dataclass
class BlockForecast:
    trial: int
    block: Fold
    observed: np.ndarray  # onsets of the block's continuing dyads
    forecast: np.ndarray  # their probabilities
    fit_years: tuple[int, int]  # the years it was fitted on
    scored_years: tuple[int, int]  # the years it forecast


def trial_block(task: BlockTask) -> BlockForecast:
    """Fit the trial's parameters on the cut's years before the block and forecast the block's
    continuing dyads. Pure: reads only the rows the cut allows."""
    table = load_table(task.table)
    seen = table.loc[task.cut.rows(table)]
    fit_rows, in_block = split(seen, task.block, task.cut.delay)
    scored = in_block & continuing(seen)
    fit_on, forecast = seen.loc[fit_rows], seen.loc[scored]
    y = fit_on["onset"].astype(int).to_numpy()
    with one_blas_thread():
        model = LightGBMOnset(**task.params, seed=task.seed).fit(fit_on, y)
        probability = model.predict_proba(forecast)[:, 1]
    return BlockForecast(task.trial, task.block, forecast["onset"].astype(int).to_numpy(), probability,
                         (int(fit_on["year"].min()), int(fit_on["year"].max())),
                         (int(forecast["year"].min()), int(forecast["year"].max())))


@dataclass
class TrialResult:
    """A finished trial: its number, parameters, value and each block's average precision."""

    number: int
    params: dict  # LightGBMOnset's keyword arguments
    value: float  # pooled average precision on the blocks' continuing dyads
    blocks: list[BlockForecast] = field(default_factory=list)

    @property
    def block_ap(self) -> dict[str, float]:
        return {b.block.name: average_precision_of(b.observed, b.forecast) for b in self.blocks}

    @property
    def onsets(self) -> int:
        return int(sum(b.observed.sum() for b in self.blocks))


def storage_url(storage: str) -> str:
    """``storage`` with any password hidden: what may be printed and logged."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", storage)


def open_storage(storage: str | None):
    """Optuna's storage at the RDB URL ``storage`` (None: in memory), connected and with its
    tables; one line naming the URL, never its password, when it cannot be."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is None:
        return None
    try:
        return optuna.storages.RDBStorage(storage)
    except Exception as exc:  # sqlalchemy's errors: unreachable server, bad URL, unwritable file
        reason = (str(exc).splitlines() or [""])[0][:200].replace(storage, storage_url(storage))
        raise FoedusError(f"the sweep storage {storage_url(storage)} cannot be opened ({type(exc).__name__}: "
                          f"{reason}): check the URL (--storage or FOEDUS_SWEEP_STORAGE), or that its database "
                          "server runs") from exc


def open_study(name: str, storage, seed: int = DEFAULT_SEED):
    """The study ``name`` in ``storage`` (an RDB URL or ``open_storage``'s), created if new,
    with a seeded TPE sampler."""
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction=DIRECTION,
                               load_if_exists=True)


def run_study(study, table: TableRef, cut: Cut, blocks: tuple[Fold, ...], n_trials: int, ex, *,
              seed: int = DEFAULT_SEED, batch: int = BATCH,
              on_trial: Callable[[TrialResult], None] | None = None) -> Iterator[TrialResult]:
    """Run ``n_trials`` more trials of ``study``, ``batch`` at a time, each (trial, block) a task
    on the executor ``ex``; yields each trial as it is told to the study (``on_trial`` too). A
    trial whose task fails is told FAIL and the error raised."""
    import optuna

    done = 0
    while done < n_trials:
        trials = [study.ask() for _ in range(min(batch, n_trials - done))]
        params = [suggest(trial) for trial in trials]
        tasks = [BlockTask(table, cut, block, p, seed, trial.number) for trial, p in zip(trials, params)
                 for block in blocks]
        try:
            forecasts = ex.map(trial_block, tasks)
        except BaseException:
            for trial in trials:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        for k, (trial, p) in enumerate(zip(trials, params)):
            parts = forecasts[k * len(blocks):(k + 1) * len(blocks)]
            observed = np.concatenate([b.observed for b in parts])
            value = average_precision_of(observed, np.concatenate([b.forecast for b in parts]))
            if math.isnan(value):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise InvalidInput(f"the validation blocks {cut.name} hold no onset on continuing dyads: "
                                   "a sweep there cannot score a trial; choose a later test block")
            study.tell(trial, value)
            result = TrialResult(trial.number, p, value, parts)
            if on_trial is not None:
                on_trial(result)
            yield result
        done += len(trials)


def best_params(name: str, storage: str) -> tuple[dict, float, int]:
    """(LightGBMOnset parameters, value, trial number) of the best finished trial of study
    ``name``; a one-line error when there is no such study or it has no finished trial."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError as exc:
        raise FoedusError(f"no sweep study '{name}' in {storage_url(storage)}: run `foedus sweep` for it first "
                          "(a rebuilt table starts new studies)") from exc
    try:
        best = study.best_trial
    except ValueError as exc:
        raise FoedusError(f"sweep study '{name}' has no finished trial: run `foedus sweep` again") from exc
    return model_params(best.params), float(best.value), best.number

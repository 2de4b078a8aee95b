"""The model catalogue: every onset model foedus can fit, declared once.

Each entry has a name (what users type), a one-line description (CLI help, docs) and a
factory that makes a fresh, unfitted scikit-learn estimator. ``make_model``, the jobs and
the CLI all read this table, so adding a model is one entry here. The factories import the
estimators lazily: listing the models (``foedus backtest --help``) loads no LightGBM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from foedus.infra.errors import InvalidInput
from foedus.models.seed import DEFAULT_SEED


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    factory: Callable[..., object]  # (seed, **hyperparameters) -> unfitted estimator
    tunable: bool = False  # takes hyperparameters from the caller
    # (train, seed=, horizon=) -> foedus.models.tuning.Tuning: chooses the hyperparameters on
    # the training years when the caller gives none
    tune: Callable[..., object] | None = None
    # a fold fits in seconds even on every year (measured 1.4-2.6 s on 687,106 rows): a backtest
    # of such models alone runs in this process, as a worker's start would cost more (about 5 s
    # of CPU and the table's memory per worker)
    light: bool = False
    # backtested by the main job (``foedus run``) unless the user names the models
    in_main_job: bool = True


def _lightgbm(seed: int, **params):
    from foedus.models.estimators import LightGBMOnset

    return LightGBMOnset(seed=seed, **params)


def _tune_lightgbm(train, *, seed: int, horizon: int):
    from foedus.models.tuning import tune_lightgbm

    return tune_lightgbm(train, seed=seed, horizon=horizon)


def _logit_literature(seed: int):
    from foedus.models.estimators import LITERATURE, logit

    return logit(LITERATURE + ["era"], era_dummies=True)


def _logit_threat(seed: int):
    from foedus.models.estimators import THREAT, logit

    return logit(THREAT, era_dummies=False)


def _hist_gradient_boosting(seed: int):
    from foedus.models.estimators import hist_gradient_boosting

    return hist_gradient_boosting(seed)


def _base_rate(seed: int):
    from foedus.models.estimators import BaseRate

    return BaseRate()


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("lightgbm",
              "LightGBM ranking the pairs within each year, each year's level forecast from last year's "
              "alliance climate; tree size, rounds and level tuned on earlier years; the main model",
              _lightgbm, tunable=True, tune=_tune_lightgbm),
    ModelSpec("logit-literature", "logistic regression on the literature's classic predictors, era dummies",
              _logit_literature, light=True),
    ModelSpec("logit-threat", "logistic regression on the shared-threat family alone", _logit_threat,
              light=True),
    # not in the main job: its backtests on every row were over a fifth of a cold `foedus run`'s
    # CPU (372 of 1,651 s) for a second ensemble at half LightGBM's AP; `foedus backtest` runs it
    ModelSpec("hist-gradient-boosting", "scikit-learn's histogram gradient boosting, a second ensemble",
              _hist_gradient_boosting, in_main_job=False),
    ModelSpec("base-rate", "the training onset rate for every pair: the floor", _base_rate, light=True),
)}


# what ``foedus run`` backtests by default
MAIN_JOB_MODELS = tuple(name for name, spec in MODELS.items() if spec.in_main_job)


def model_spec(name: str) -> ModelSpec:
    """The catalogue entry of ``name``; an unknown name is an ``InvalidInput`` listing the choices."""
    if name not in MODELS:
        raise InvalidInput(f"unknown model {name or '(none)'}: choose from {', '.join(MODELS)}")
    return MODELS[name]


def model_names(models: str | Sequence[str]) -> list[str]:
    """``"lightgbm,base-rate"`` or a list of names -> the names, each checked against the catalogue."""
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    if not names:
        raise InvalidInput(f"no model given: choose from {', '.join(MODELS)}")
    for name in names:
        model_spec(name)
    return names


def tune(name: str, train, *, seed: int = DEFAULT_SEED, horizon: int = 1):
    """The model's own tuning on ``train`` (a ``Tuning``), or None for a model without one."""
    spec = model_spec(name)
    return spec.tune(train, seed=seed, horizon=horizon) if spec.tune else None


def make_model(name: str, seed: int = DEFAULT_SEED, **params):
    """A fresh, unfitted model by name; ``params`` override a tunable model's defaults."""
    spec = model_spec(name)
    if params and not spec.tunable:
        raise InvalidInput(f"model {name} takes no hyperparameters")
    return spec.factory(seed, **params)

"""Out-of-time backtests: fit on the past, forecast each test block, score, slice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from foedus.features.errors import InvalidInput
from foedus.features.years import era_of
from foedus.models.estimators import make_model
from foedus.models.folds import DEFAULT_FOLDS, Fold, split
from foedus.models.metrics import score

# Columns kept beside each forecast so that slices and explanations need no second look-up.
PREDICTION_KEYS = ["ccode1", "ccode2", "year", "label", "probability"]
SLICE_COLUMNS = ["shared_threat", "major_minor", "n_major", "contig_type", "new_dyad"]


@dataclass
class FoldResult:
    fold: Fold
    model: object  # the fitted estimator
    predictions: pd.DataFrame  # PREDICTION_KEYS + SLICE_COLUMNS, one row per test dyad-year
    metrics: dict[str, float]
    train_rows: int
    train_years: tuple[int, int]
    extra: dict = field(default_factory=dict)


def slices(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """The subsets the literature cares about, as boolean masks over ``predictions``."""
    out = {
        "shared_threat": (predictions["shared_threat"] == 1).to_numpy(),
        "major_minor": (predictions["major_minor"] == 1).to_numpy(),
        "major_pair": (predictions["n_major"] == 2).to_numpy(),
        "contiguous": (predictions["contig_type"] <= 5).to_numpy(),  # land or water within 400 miles
        # pairs that were already system dyads in t-1: without the alliances new states bring along
        "continuing_dyad": (predictions["new_dyad"] == 0).to_numpy(),
    }
    eras = era_of(predictions["year"])
    for era in eras.cat.categories:
        out[f"era_{era}"] = (eras == era).to_numpy()
    return out


def slice_metrics(predictions: pd.DataFrame) -> dict[str, dict[str, float]]:
    result = {}
    for name, mask in slices(predictions).items():
        if mask.any():
            part = predictions[mask]
            result[name] = score(part["label"], part["probability"], part["year"])
    return result


def fit_fold(table: pd.DataFrame, model_name: str, fold: Fold, horizon: int = 1, seed: int = 7,
             **params) -> FoldResult:
    """Fit ``model_name`` on the years before ``fold`` and forecast the fold's test years."""
    train, test = split(table, fold, horizon)
    if not train.any() or not test.any():
        raise InvalidInput(f"fold {fold.name} has {train.sum()} training and {test.sum()} test dyad-years: "
                           "choose folds inside the label source's coverage")
    X_train, X_test = table.loc[train], table.loc[test]
    y_train = X_train["onset"].astype(int).to_numpy()
    if y_train.sum() == 0:
        raise InvalidInput(f"fold {fold.name}: no onset in the training years")
    model = make_model(model_name, seed=seed, **params).fit(X_train, y_train)
    probability = model.predict_proba(X_test)[:, 1]
    predictions = X_test[["ccode1", "ccode2", "year", *SLICE_COLUMNS]].assign(
        label=X_test["onset"].astype(int).to_numpy(), probability=probability)
    predictions = predictions[PREDICTION_KEYS + SLICE_COLUMNS].reset_index(drop=True)
    years = X_train["year"]
    return FoldResult(fold, model, predictions, score(predictions["label"], probability, predictions["year"]),
                      int(train.sum()), (int(years.min()), int(years.max())))


def backtest(table: pd.DataFrame, model_name: str, folds: Sequence[Fold] = DEFAULT_FOLDS, horizon: int = 1,
             seed: int = 7, **params) -> list[FoldResult]:
    """One ``FoldResult`` per fold; each fold trains strictly on earlier years."""
    return [fit_fold(table, model_name, fold, horizon, seed, **params) for fold in folds]


def pooled(results: Sequence[FoldResult]) -> tuple[pd.DataFrame, dict[str, float]]:
    """All folds' forecasts together, and their metrics (pooled metrics punish level shifts
    between eras; report them beside the per-fold ones)."""
    predictions = pd.concat([r.predictions.assign(fold=r.fold.name) for r in results], ignore_index=True)
    return predictions, score(predictions["label"], predictions["probability"], predictions["year"])

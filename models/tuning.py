"""Time-aware tuning of LightGBM: tree size, number of trees and whether last year's alliance
climate sets the level, chosen on the past only.

Given the training years of one fold (or every labelled year, for the final model), the last
``INNER_BLOCKS`` blocks of ``BLOCK_YEARS`` years each become a validation block in turn: the
candidate is fitted on the years before the block (respecting the horizon, as the outer
folds do) and forecasts it. Several blocks, because one block may hold a treaty burst (1945,
the 1990s) and reward whatever fits that burst. The score is the headline's: average
precision on continuing dyads, pooled over the blocks. Each of ``GRID``'s tree sizes is
fitted once per block with the most rounds and read at every count of ``ROUNDS``, with and
without the climate (``CLIMATES``). Ties go to the earlier candidate (smaller trees, fewer
rounds, with the climate). The search is small on purpose: 3 sizes x 3 round counts x 2
levels from 9 fits per fold, fixed seed. Each block's data is sampled and binned once for the
three tree sizes (``LightGBMOnset.tree_data``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.models.estimators import CLIMATE, NEGATIVE_RATE, LightGBMOnset, continuing
from foedus.models.folds import Fold, split
from foedus.models.metrics import average_precision_of
from foedus.models.seed import DEFAULT_SEED

GRID = (
    {"num_leaves": 7, "min_child_samples": 500},
    {"num_leaves": 15, "min_child_samples": 200},
    {"num_leaves": 31, "min_child_samples": 100},
)
ROUNDS = (50, 100, 200)
# whether last year's alliance climate sets the level (``LightGBMOnset``): it helps where bursts
# of the label's type carry over to the next year, and costs no extra fit to check
CLIMATES = (CLIMATE, None)
INNER_BLOCKS = 3
BLOCK_YEARS = 10


@dataclass(frozen=True)
class Tuning:
    """The chosen hyperparameters and every candidate's score."""

    params: dict  # num_leaves, min_child_samples, n_rounds: what the model is then fitted with
    scores: pd.DataFrame  # one row per candidate: its parameters, average_precision, onsets
    blocks: tuple[Fold, ...]  # the validation blocks


def inner_blocks(years: np.ndarray, horizon: int = 1, n: int = INNER_BLOCKS,
                 width: int = BLOCK_YEARS) -> tuple[Fold, ...]:
    """The last ``n`` blocks of ``width`` years of ``years`` that leave training years before them."""
    first, last = int(np.min(years)), int(np.max(years))
    blocks = [Fold(last - width * (k + 1) + 1, last - width * k) for k in reversed(range(n))]
    return tuple(b for b in blocks if b.first - horizon >= first)


def tune_lightgbm(train: pd.DataFrame, *, seed: int = DEFAULT_SEED, horizon: int = 1,
                  negative_rate: float = NEGATIVE_RATE, n_blocks: int = INNER_BLOCKS,
                  rounds: tuple[int, ...] | None = None, learning_rate: float | None = None) -> Tuning:
    """Choose LightGBM's tree size and rounds on the last ``n_blocks`` validation blocks inside
    ``train`` (labelled rows); every candidate, and the chosen parameters, with ``negative_rate``.
    ``rounds`` (default ``ROUNDS``) and ``learning_rate`` (default the estimator's) are for
    measuring other settings (``benchmarks/lightgbm_levers.py``); a learning rate given is
    among the chosen parameters."""
    rounds = ROUNDS if rounds is None else tuple(rounds)
    rate = {} if learning_rate is None else {"learning_rate": learning_rate}
    years = train["year"].to_numpy()
    y = train["onset"].astype(int).to_numpy()
    scored_rows = continuing(train)
    blocks = inner_blocks(years, horizon, n_blocks)
    forecasts = {(i, r, c): [] for i in range(len(GRID)) for r in rounds for c in CLIMATES}
    truth = []
    for block in blocks:
        fit_rows, in_block = split(train, block, horizon)  # the outer folds' rule, inside the training years
        scored = in_block & scored_rows
        if not y[fit_rows].any() or not scored.any():
            continue
        truth.append(y[scored])
        fit_on, forecast = train[fit_rows], train[scored]
        data = LightGBMOnset(seed=seed, negative_rate=negative_rate).tree_data(fit_on, y[fit_rows])  # binned once
        for i, size in enumerate(GRID):
            model = LightGBMOnset(**size, **rate, n_rounds=max(rounds), seed=seed, negative_rate=negative_rate)
            model.fit(fit_on, y[fit_rows], tree_data=data)
            for r, score in model.tree_scores(forecast, rounds).items():
                for c in CLIMATES:
                    forecasts[i, r, c].append(model.proba_of_scores(forecast, score, climate=c is not None))
    observed = np.concatenate(truth) if truth else np.array([], dtype=int)
    rows = []
    for (i, r, c), parts in forecasts.items():
        ap = average_precision_of(observed, np.concatenate(parts)) if observed.any() else float("nan")
        rows.append({**GRID[i], "n_rounds": r, "climate": c, "average_precision": ap})
    scores = pd.DataFrame(rows).assign(onsets=int(observed.sum()))
    if scores["average_precision"].notna().any():
        best = scores.loc[scores["average_precision"].idxmax()]  # first of equals: smaller, fewer
        params = {**{k: int(best[k]) for k in ("num_leaves", "min_child_samples", "n_rounds")},
                  "climate": best["climate"] if isinstance(best["climate"], str) else None,
                  "negative_rate": negative_rate, **rate}
    else:  # no onset on continuing dyads in any block: the estimator's defaults
        params = {"negative_rate": negative_rate, **rate}
    return Tuning(params, scores, blocks)

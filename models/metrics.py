"""Rare-event metrics for out-of-time onset forecasts.

Average precision (the area under the precision-recall curve) is the headline: with about
0.3-1% positives, ROC-AUC flatters and accuracy is meaningless. Brier score, log loss and
expected calibration error judge the probabilities themselves. Precision and recall among
the top k dyads of each test year answer the analyst's question: of the k pairs flagged each
year, how many signed?
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_K = (50, 200)
ECE_BINS = 10


def reliability_bins(y, p, bins: int = ECE_BINS) -> pd.DataFrame:
    """Equal-count bins of the forecasts p: size ``n``, ``observed`` onset rate, mean ``predicted``.

    Equal-count, because with rare events nearly all probabilities fall in the lowest
    equal-width bin and a reliability curve or calibration error would say nothing.
    """
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    chunks = [c for c in np.array_split(order, min(bins, len(p))) if len(c)]
    return pd.DataFrame({"n": [float(len(c)) for c in chunks], "observed": [y[c].mean() for c in chunks],
                         "predicted": [p[c].mean() for c in chunks]})


def expected_calibration_error(y, p, bins: int = ECE_BINS) -> float:
    """Mean |observed rate - mean probability| over equal-count bins of p, weighted by bin size."""
    if len(y) == 0:
        return float("nan")
    table = reliability_bins(y, p, bins)
    return sum(n * abs(o - q) for n, o, q in zip(table["n"], table["observed"], table["predicted"])) / len(y)


def year_ranks(p, years) -> np.ndarray:
    """Each forecast's rank within its year, 0 for the highest; ties are broken by order in the
    data (stable), so results are reproducible."""
    p, years = np.asarray(p, dtype=float), np.asarray(years)
    order = np.lexsort((-p, years))  # by year, then highest first; stable
    by_year = years[order]
    starts = np.r_[0, np.flatnonzero(by_year[1:] != by_year[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return rank


def top_k(y, p, years, k: int, ranks: np.ndarray | None = None) -> tuple[float, float]:
    """(precision, recall) among the k highest-probability dyads of each year, pooled over years.

    Precision: onsets among the flagged / dyads flagged; recall: onsets flagged / all onsets.
    Ties are broken by order in the data (stable), so results are reproducible. ``ranks``:
    ``year_ranks(p, years)``, if already computed.
    """
    y = np.asarray(y, dtype=float)
    flagged = (year_ranks(p, years) if ranks is None else ranks) < k
    onsets, hits = y.sum(), y[flagged].sum()
    precision = hits / flagged.sum() if flagged.any() else float("nan")
    recall = hits / onsets if onsets else float("nan")
    return float(precision), float(recall)


def _curve_counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (true positives) and non-onsets (false positives) at or above each distinct
    forecast, highest first: the points of the precision-recall and ROC curves, as
    scikit-learn's ``_binary_clf_curve`` makes them (one sort for both metrics)."""
    order = np.argsort(p, kind="stable")[::-1]
    ranked = p[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the last row of each distinct value
    tps = np.cumsum(y[order], dtype=np.float64)[ends]
    return tps, ends + 1 - tps


def average_precision(tps: np.ndarray, fps: np.ndarray) -> float:
    """Average precision from ``_curve_counts``: the sum of precision at each threshold times
    the recall it adds (scikit-learn's ``average_precision_score``, no interpolation)."""
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * (tps / (tps + fps))))


def average_precision_of(y, p) -> float:
    """Average precision of forecasts ``p`` for outcomes ``y`` (NaN without both onsets and
    non-onsets): ``average_precision`` on one sort."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    return average_precision(*_curve_counts(y, p)) if 0 < y.sum() < len(y) else float("nan")


def roc_auc(tps: np.ndarray, fps: np.ndarray) -> float:
    """Area under the ROC curve from ``_curve_counts`` (trapezoids, ties as scikit-learn counts them)."""
    return float(np.trapezoid(np.r_[0.0, tps] / tps[-1], np.r_[0.0, fps] / fps[-1]))


def year_percentiles(p, years) -> np.ndarray:
    """Each forecast's percentile among its year's: 100 = ranked first, 100/n = ranked last of
    n; tied forecasts share their average rank."""
    by_year = pd.Series(np.asarray(p, dtype=float)).groupby(np.asarray(years))
    rank = by_year.rank(ascending=False, method="average").to_numpy()
    n = by_year.transform("size").to_numpy()
    return 100 * (n - rank + 1) / n


def onset_percentiles(y, p, years) -> np.ndarray:
    """Each onset's percentile among its year's dyad-years by forecast (``year_percentiles``).
    The analyst's question: how high did the model put the pairs that did sign?"""
    return year_percentiles(p, years)[np.asarray(y, dtype=int) == 1]


def score(y, p, years) -> dict[str, float]:
    """Every metric of one set of forecasts (a fold, a slice, or all folds pooled)."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    n, onsets = len(y), int(y.sum())
    both = 0 < onsets < n
    prevalence = onsets / n if n else float("nan")
    # vectorised here, not scikit-learn's functions: a backtest scores dozens of slices of up
    # to a million rows, and their input checks and separate sorts were most of the time
    # (tests/models/test_folds_metrics.py checks they agree)
    curve = _curve_counts(y, p) if both else None
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    out = {
        "n": float(n),
        "onsets": float(onsets),
        "prevalence": prevalence,
        "average_precision": average_precision(*curve) if both else float("nan"),
        "roc_auc": roc_auc(*curve) if both else float("nan"),
        "brier": float(np.mean((y - p) ** 2)) if n else float("nan"),
        "log_loss": float(-np.mean(np.where(y == 1, np.log(clipped), np.log1p(-clipped)))) if n else float("nan"),
        "ece": expected_calibration_error(y, p),
        "mean_probability": float(p.mean()) if n else float("nan"),
    }
    out["ap_lift"] = out["average_precision"] / prevalence if onsets else float("nan")
    percentile = onset_percentiles(y, p, years)
    out["median_onset_percentile"] = float(np.median(percentile)) if onsets else float("nan")
    out["onsets_in_top_decile"] = float(np.mean(percentile >= 90)) if onsets else float("nan")
    out["onsets_in_top_percent"] = float(np.mean(percentile >= 99)) if onsets else float("nan")
    ranks = year_ranks(p, years)
    for k in TOP_K:
        precision, recall = top_k(y, p, years, k, ranks)
        out[f"precision_top{k}"], out[f"recall_top{k}"] = precision, recall
        out[f"lift_top{k}"] = precision / prevalence if onsets else float("nan")
    return {key: float(value) for key, value in out.items()}

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
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

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


def top_k(y, p, years, k: int) -> tuple[float, float]:
    """(precision, recall) among the k highest-probability dyads of each year, pooled over years.

    Precision: onsets among the flagged / dyads flagged; recall: onsets flagged / all onsets.
    Ties are broken by order in the data (stable), so results are reproducible.
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float),
                          "year": np.asarray(years)})
    frame["rank"] = frame.sort_values(["year", "p"], ascending=[True, False], kind="stable") \
        .groupby("year").cumcount().reindex(frame.index)
    flagged = frame[frame["rank"] < k]
    onsets = frame["y"].sum()
    precision = flagged["y"].sum() / len(flagged) if len(flagged) else float("nan")
    recall = flagged["y"].sum() / onsets if onsets else float("nan")
    return float(precision), float(recall)


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
    out = {
        "n": float(n),
        "onsets": float(onsets),
        "prevalence": prevalence,
        "average_precision": average_precision_score(y, p) if both else float("nan"),
        "roc_auc": roc_auc_score(y, p) if both else float("nan"),
        "brier": brier_score_loss(y, p, labels=[0, 1]) if n else float("nan"),
        "log_loss": log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]) if n else float("nan"),
        "ece": expected_calibration_error(y, p),
        "mean_probability": float(p.mean()) if n else float("nan"),
    }
    out["ap_lift"] = out["average_precision"] / prevalence if onsets else float("nan")
    percentile = onset_percentiles(y, p, years)
    out["median_onset_percentile"] = float(np.median(percentile)) if onsets else float("nan")
    out["onsets_in_top_decile"] = float(np.mean(percentile >= 90)) if onsets else float("nan")
    out["onsets_in_top_percent"] = float(np.mean(percentile >= 99)) if onsets else float("nan")
    for k in TOP_K:
        precision, recall = top_k(y, p, years, k)
        out[f"precision_top{k}"], out[f"recall_top{k}"] = precision, recall
        out[f"lift_top{k}"] = precision / prevalence if onsets else float("nan")
    return {key: float(value) for key, value in out.items()}

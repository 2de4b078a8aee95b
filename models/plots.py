"""Figures of a backtest: precision-recall, calibration, importance, SHAP, onset rates by era.

Each function returns a matplotlib ``Figure`` made without pyplot: nothing is shown, no
global list of open figures grows (nothing to close), and the user's backend is left alone;
saving to PNG uses Agg, so the figures work headless, in ``mlflow.log_figure`` and in notebooks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.summary import threat_onset_summary
from foedus.infra.errors import InvalidInput
from foedus.models.explain import readable
from foedus.models.metrics import reliability_bins
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve


def _folds(predictions: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return list(predictions.groupby("fold", sort=False)) if "fold" in predictions else []


def pr_curves(predictions: pd.DataFrame) -> Figure:
    """Precision-recall curve of each fold (column ``fold``, if present) and of all forecasts
    pooled, average precision in the legend. Precision is on a log scale: with onsets this rare,
    the useful range is between the prevalence (a random ranking) and a few tenths."""
    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.add_subplot()
    for name, part in [*_folds(predictions), ("pooled", predictions)]:
        y, p = part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
        if not 0 < y.sum() < len(y):
            continue  # no curve without both onsets and non-onsets
        precision, recall, _ = precision_recall_curve(y, p)
        pooled = name == "pooled"
        ax.step(recall, precision, where="post", color="black" if pooled else None, lw=2 if pooled else 1,
                label=f"{name}: AP {average_precision_score(y, p):.3f} (prevalence {y.mean():.4f})")
    prevalence = predictions["label"].mean()
    ax.axhline(prevalence, color="grey", ls=":", lw=1, label="pooled prevalence (random ranking)")
    ax.set_yscale("log")
    ax.set(xlim=(0, 1), ylim=(prevalence / 3, 1.05), xlabel="recall (share of onsets found)",
           ylabel="precision (log scale)", title="Precision-recall by test block, all at-risk dyad-years")
    # below the axes: inside, it covered the curves of the busiest blocks
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    return fig


def _reliability(y: np.ndarray, p: np.ndarray, bins: int) -> pd.DataFrame:
    # the bins the calibration error is computed on, plus a Wilson 95% interval: a bin of a
    # few thousand dyad-years holds only a handful of onsets
    table = reliability_bins(y, p, bins)
    n, rate, z = table["n"].to_numpy(), table["observed"].to_numpy(), 1.96
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return table.assign(low=centre - half, high=centre + half)


def calibration(predictions: pd.DataFrame, bins: int = 20) -> Figure:
    """Reliability diagram on log-log axes: observed onset rate against mean forecast in
    ``bins`` equal-count bins, pooled (with 95% Wilson intervals) and per fold. Bins without
    an onset are drawn as open triangles on the bottom edge."""
    fig = Figure(figsize=(6.5, 6), layout="constrained")
    ax = fig.add_subplot()
    curves = [(name, _reliability(part["label"].to_numpy(dtype=float), part["probability"].to_numpy(dtype=float),
                                  bins)) for name, part in [*_folds(predictions), ("pooled", predictions)]]
    positive = np.concatenate([np.r_[c["predicted"], c["observed"]] for _, c in curves])
    positive = positive[positive > 0]
    lo, hi = (positive.min() / 2, min(1.0, positive.max() * 2)) if len(positive) else (1e-5, 1.0)
    ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, c in curves:
        pooled = name == "pooled"
        seen = c["observed"] > 0
        line = ax.plot(c["predicted"], c["observed"].where(seen), marker="o", ms=4 if pooled else 3,
                       color="black" if pooled else None, lw=2 if pooled else 1, alpha=1 if pooled else 0.7,
                       label=name)[0]
        if pooled:
            ax.errorbar(c["predicted"][seen], c["observed"][seen],
                        yerr=[(c["observed"] - c["low"])[seen], (c["high"] - c["observed"])[seen]],
                        fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        if (~seen).any():
            ax.plot(c["predicted"][~seen], np.full((~seen).sum(), lo), "v", mfc="none", color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="mean forecast probability (equal-count bins, log)",
           ylabel="observed onset rate (log)", title="Calibration")
    ax.legend(fontsize=8)
    return fig


def _bars(values: pd.Series, xlabel: str, title: str) -> Figure:
    values = values.iloc[::-1]  # largest on top
    fig = Figure(figsize=(8, 1.2 + 0.28 * len(values)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh([f"{readable(f)}" for f in values.index], values.to_numpy(), color="tab:blue")
    ax.set(xlabel=xlabel)
    fig.suptitle(title)  # centred on the figure: long feature names push the axes right
    ax.tick_params(axis="y", labelsize=8)
    return fig


def feature_importance(model, top: int = 25) -> Figure:
    """The ``top`` features by gain (``feature_importances_``), as shares of the total gain."""
    gain = getattr(model, "feature_importances_", None)
    if gain is None:
        raise InvalidInput(f"{type(model).__name__} has no gain importance: use a LightGBM model")
    if not isinstance(gain, pd.Series):
        gain = pd.Series(np.asarray(gain, dtype=float), index=getattr(model, "features_", None))
    share = (gain / gain.sum()).sort_values(ascending=False, kind="stable").head(top)
    return _bars(share, "share of total gain", f"Feature importance (gain), top {len(share)}")


def shap_summary(contributions: pd.DataFrame, top: int = 25) -> Figure:
    """The ``top`` features by mean absolute SHAP value (log-odds) over the rows given."""
    mean_abs = contributions.drop(columns="bias", errors="ignore").abs().mean()
    mean_abs = mean_abs.sort_values(ascending=False, kind="stable").head(top)
    return _bars(mean_abs, "mean |SHAP| (log-odds)",
                 f"Mean |SHAP| over {len(contributions):,} test dyad-years, top {len(mean_abs)}")


def onset_rate_by_era(table: pd.DataFrame) -> Figure:
    """Onset rate among at-risk dyad-years with a known onset, by era and overall: all pairs
    beside pairs sharing a threat (``shared_threat == 1``). Threat theories predict the second
    bar far above the first; the gap is what the data say."""
    summary = threat_onset_summary(table)
    x = np.arange(len(summary))
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.38
    for offset, column, count, label in ((-width / 2, "onset_rate", "at_risk", "all at-risk dyad-years"),
                                         (width / 2, "threat_onset_rate", "shared_threat", "sharing a threat")):
        bars = ax.bar(x + offset, 100 * summary[column].fillna(0).to_numpy(), width, label=label)
        ax.bar_label(bars, labels=[f"{100 * r:.2f}%\nn={n:,}" if not np.isnan(r) else "" for r, n in
                                   zip(summary[column], summary[count])], fontsize=7)
    ax.set_xticks(x, summary.index)
    ax.margins(y=0.2)
    ax.set(ylabel="onsets per at-risk dyad-year (%)", xlabel="era",
           title="Alliance onset rate: threat without alliance")
    ax.legend(fontsize=8)
    return fig


def skill_by_staleness(tables: dict[str, pd.DataFrame]) -> Figure:
    """Continuing-dyad AP, median onset percentile and Brier of each staleness profile (one line
    per label spec, ``foedus.models.skill``); the ordinary model (every source read at t-1 where
    it covers it) as a dashed line of the same colour. Ticks name the target year and the label
    source's staleness."""
    from foedus.models.skill import brier_skill

    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = (("continuing_dyad_average_precision", "average precision (continuing dyads)"),
              ("median_onset_percentile", "median percentile of onsets (100 = ranked first)"),
              ("brier_skill", "Brier skill vs the onset rate (0 = no better)"))
    tables = {spec: table.assign(brier_skill=brier_skill(table)) for spec, table in tables.items()}
    every = pd.concat([t[t["target"] != "fresh"] for t in tables.values()]).drop_duplicates("target")
    ticks = every.assign(year=every["target"].astype(int)).sort_values("year")
    for (column, title), ax in zip(panels, axes):
        for i, (spec, table) in enumerate(tables.items()):
            colour = f"C{i}"
            fresh = table[table["target"] == "fresh"]
            stale = table[table["target"] != "fresh"]
            ax.plot(stale["target"].astype(int), stale[column], marker="o", color=colour,
                    label=f"{spec}, present-day model")
            if not fresh.empty:
                ax.axhline(float(fresh[column].iloc[0]), color=colour, ls="--", lw=1,
                           label=f"{spec}, ordinary model (t-1)")
        if column == "brier_skill":
            ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(ticks["year"],
                      [f"{t}\n+{d}" for t, d in zip(ticks["target"], ticks["label_staleness"])], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("target year and label-source staleness (years)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Skill by staleness: backtests 1990-2018 of models trained on data as stale as a "
                 "present-day forecast's")
    return fig

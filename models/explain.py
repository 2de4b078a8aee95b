"""Threat without alliance: which pairs shared a threat and did not ally, and what held them back.

Threat-based theories say common enemies make allies, yet most pairs that share a threat never
sign a treaty. For each test fold this module lists the at-risk dyad-years with
``shared_threat == 1`` and no onset, each with the three features that pushed the model's
probability down the most, and the opposite puzzle: onsets without a shared threat, with the
three features that pushed it up. The pushes are LightGBM's SHAP values in log-odds
(``LightGBMOnset.contributions``); a model without ``contributions`` gives the lists without
reasons.

A reason reads "regime difference (extended UDS) 1.53 (-0.41)": the feature in words, its value
for that dyad-year, and its contribution to the log-odds. A contribution is relative to the
model's average forecast (the ``bias`` column), not a causal effect.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
from foedus.features.families import declared
from foedus.features.universe import DYAD_YEAR
from foedus.features.years import count_by_era, sum_by_era
from foedus.infra.errors import InvalidInput
from foedus.models.estimators import LEVEL

KEYS = list(DYAD_YEAR)

def readable(feature: str) -> str:
    """The feature in words: its declared label (``Family.feature(..., label=...)``), else its
    name with spaces."""
    found = declared(feature)
    return found.label if found is not None else feature.replace("_", " ")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "missing"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def _strongest(shap: np.ndarray, n: int, direction: str) -> tuple[np.ndarray, np.ndarray]:
    """Column positions of each row's ``n`` strongest pushes, and whether each slot holds one."""
    key = shap if direction == "down" else -shap
    # A zero (a feature no tree split on) or a push the other way explains nothing here.
    key = np.where(key < 0, key, np.inf)
    rows = np.arange(len(key))
    picks = np.zeros((len(key), n), dtype=np.intp)
    found = np.zeros((len(key), n), dtype=bool)
    for rank in range(n):  # n passes over the matrix, never a loop over rows
        best = key.argmin(axis=1)  # the first of equal minima: ties go to the feature listed first
        found[:, rank] = np.isfinite(key[rows, best])
        picks[:, rank] = best
        key[rows, best] = np.inf
    return picks, found


def top_pushes(contributions: pd.DataFrame, values: pd.DataFrame, n: int = 3,
               direction: str = "down") -> pd.DataFrame:
    """For each row, the ``n`` features whose contributions pushed the probability most
    ``"down"`` (most negative) or ``"up"`` (most positive).

    ``contributions``: SHAP values, one column per feature (a ``bias`` column is ignored);
    ``values``: the same rows' feature values, aligned by position. Returns, indexed like
    ``contributions``, ``reason_1..n`` (text), ``reason_feature_1..n``, ``reason_value_1..n``
    and ``reason_shap_1..n``. Only pushes in the asked direction count: a row with fewer
    than ``n`` of them has missing slots. Equal contributions go to the feature listed first.
    """
    if direction not in ("down", "up"):
        raise InvalidInput(f"direction must be 'down' or 'up', not {direction!r}")
    if len(values) != len(contributions):
        raise InvalidInput(f"{len(contributions)} rows of contributions but {len(values)} of values")
    features = [c for c in contributions.columns if c != "bias"]
    missing = [f for f in features if f not in values.columns]
    if not features or missing:
        raise InvalidInput(f"values lack the features {', '.join(missing)}" if missing else "no feature columns")

    shap = contributions[features].to_numpy(dtype=float)
    picks, found = _strongest(shap, n, direction)
    rows = np.arange(len(shap))
    names = np.array([*features, None], dtype=object)  # the last entry fills empty slots
    words = np.array([*(readable(f) for f in features), None], dtype=object)
    numeric: dict[int, np.ndarray] = {}
    text, feature, value, push = {}, {}, {}, {}
    for k in range(1, n + 1):
        ok, pick = found[:, k - 1], picks[:, k - 1]
        value[k] = np.full(len(shap), np.nan)
        for c in np.unique(pick[ok]):  # one pass per feature that appears, not per row
            if c not in numeric:
                numeric[c] = pd.to_numeric(values[features[c]], errors="coerce").to_numpy(float, na_value=np.nan)
            hit = ok & (pick == c)
            value[k][hit] = numeric[c][hit]
        slot = np.where(ok, pick, len(features))
        feature[k] = names[slot]
        push[k] = np.where(ok, shap[rows, pick], np.nan)
        text[k] = [f"{w} {_format_value(v)} ({s:+.2f})" if w is not None else None
                   for w, v, s in zip(words[slot].tolist(), value[k].tolist(), push[k].tolist())]
    columns = {f"{kind}_{k}": part[k] for kind, part in
               (("reason", text), ("reason_feature", feature), ("reason_value", value), ("reason_shap", push))
               for k in range(1, n + 1)}
    return pd.DataFrame(columns, index=contributions.index)


def _check_aligned(predictions: pd.DataFrame, X_test: pd.DataFrame) -> None:
    if len(predictions) != len(X_test):
        raise InvalidInput(f"{len(predictions)} forecasts but {len(X_test)} feature rows: pass the fold's test rows")
    for key in KEYS:
        if key not in X_test or not np.array_equal(predictions[key].to_numpy(), X_test[key].to_numpy()):
            raise InvalidInput(f"forecasts and feature rows differ in {key}: X_test must hold the test rows "
                               "in the order of the forecasts (as fit_fold makes them)")


def _name_map(names) -> Mapping[int, str] | None:
    if names is not None and hasattr(names, "states"):  # a StateRegistry
        return names.names()
    return names


def pair_level(contributions: pd.DataFrame) -> pd.DataFrame:
    """The contributions of pair-level features only.

    Year-wide features (declared ``level="year"``: system size, era, the ``covered_<source>``
    flags; the key ``year``; LightGBM's ``year_level``) take one value for every pair of a
    year: they move all pairs of that year alike, so they cannot say why this pair stayed apart
    when another formed an alliance. They stay in the SHAP summary plot, not among a pair's reasons.
    """
    drop = [c for c in contributions.columns
            if c in ("year", LEVEL) or getattr(declared(c), "level", "pair") == "year"]
    return contributions.drop(columns=drop)


def _explained(predictions, X_test, model, mask, direction, names, n, ascending, constants=None) -> pd.DataFrame:
    _check_aligned(predictions, X_test)
    mask = np.asarray(mask, dtype=bool)
    front = [c for c in ("fold",) if c in predictions]
    out = predictions.loc[mask, [*front, *KEYS, "probability"]]
    names = _name_map(names)
    if names is not None:
        out.insert(len(front) + 2, "name1", out["ccode1"].map(names))
        out.insert(len(front) + 3, "name2", out["ccode2"].map(names))
    if hasattr(model, "contributions") and mask.any():
        rows = X_test.loc[mask]
        shap = model.contributions(rows, reference=X_test, constants=constants)
        reasons = top_pushes(pair_level(shap), rows, n, direction)
        out = pd.concat([out, reasons.set_axis(out.index)], axis=1)
    return out.sort_values("probability", ascending=ascending, kind="stable")


def threat_without_alliance(predictions: pd.DataFrame, X_test: pd.DataFrame, model, names=None,
                            n: int = 3, constants: pd.Series | None = None) -> pd.DataFrame:
    """The fold's at-risk dyad-years that shared a threat (``shared_threat == 1``) and did not
    ally (``label == 0``), lowest probability first, with the ``n`` features that pushed the
    probability down most (see ``top_pushes``).

    ``X_test``: the test rows of the feature table in the order of ``predictions`` (as
    ``fit_fold`` makes them: ``table.loc[split(table, fold)[1]]``); checked by length and keys.
    ``names``: ccode -> state name (a dict or a ``StateRegistry``) adds ``name1``, ``name2``.
    The index is that of ``predictions``. A model without ``contributions`` (the logits, the
    base rate) gives no reason columns. ``constants``: the model's ``year_constants(X_test)``,
    if already computed.
    """
    mask = (predictions["shared_threat"] == 1).fillna(False) & (predictions["label"] == 0)
    return _explained(predictions, X_test, model, mask, "down", names, n, ascending=True, constants=constants)


def onsets_without_threat(predictions: pd.DataFrame, X_test: pd.DataFrame, model, names=None,
                          n: int = 3, constants: pd.Series | None = None) -> pd.DataFrame:
    """Onsets (``label == 1``) of pairs with no shared threat (``shared_threat == 0``), highest
    probability first, with the ``n`` features that pushed the probability up most. As
    ``threat_without_alliance`` otherwise (a missing ``shared_threat`` counts as neither)."""
    mask = (predictions["shared_threat"] == 0).fillna(False) & (predictions["label"] == 1)
    return _explained(predictions, X_test, model, mask, "up", names, n, ascending=False, constants=constants)


def explain_fold(predictions: pd.DataFrame, X_test: pd.DataFrame, model, names=None,
                 n: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both lists for one fold's forecasts: (threat without alliance, onsets without threat).

    ``predictions`` may carry a ``fold`` column; it then comes first in both lists. The
    model's year constants (``year_constants``) are computed once for both."""
    constants = model.year_constants(X_test) if hasattr(model, "year_constants") else None
    return (threat_without_alliance(predictions, X_test, model, names, n, constants),
            onsets_without_threat(predictions, X_test, model, names, n, constants))


def formation_by_era(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per era and overall, among the forecast (at-risk, labelled) dyad-years: how many shared
    a threat, how many of those formed an alliance and the share that did (with the model's
    mean forecast for them), and the same for pairs with no shared threat. Dyad-years whose
    threat is unknown count only in ``dyad_years`` and ``threat_unknown``."""
    threat = (predictions["shared_threat"] == 1).to_numpy()
    none = (predictions["shared_threat"] == 0).to_numpy()
    onset = predictions["label"].to_numpy() == 1
    years = predictions["year"].to_numpy()
    out = count_by_era(years, {
        "dyad_years": np.ones(len(predictions), dtype=bool), "shared_threat": threat, "threat_onsets": threat & onset,
        "no_threat": none, "no_threat_onsets": none & onset, "threat_unknown": predictions["shared_threat"].isna(),
    }, every_era=False)
    threat_probability = sum_by_era(years, {"p": np.where(threat, predictions["probability"], 0.0)}, every_era=False)
    shared = out["shared_threat"].replace(0, np.nan)
    out["threat_formation_rate"] = out["threat_onsets"] / shared
    out["threat_mean_probability"] = threat_probability["p"] / shared
    out["no_threat_formation_rate"] = out["no_threat_onsets"] / out["no_threat"].replace(0, np.nan)
    return out[["dyad_years", "shared_threat", "threat_onsets", "threat_formation_rate", "threat_mean_probability",
                "no_threat", "no_threat_onsets", "no_threat_formation_rate", "threat_unknown"]]


def reasons_summary(explained: pd.DataFrame) -> pd.DataFrame:
    """Per feature, over a list from ``threat_without_alliance`` (or ``onsets_without_threat``):
    ``count`` of cases where it is among the top pushes, their ``share`` of all cases,
    ``first`` (times it is the top push) and ``mean_shap`` (its mean contribution there),
    most frequent first."""
    slots = sorted(int(m.group(1)) for c in explained.columns if (m := re.fullmatch(r"reason_feature_(\d+)", c)))
    columns = ["reason", "count", "share", "first", "mean_shap"]
    if not slots or explained.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="feature"))
    long = pd.concat([
        pd.DataFrame({"feature": explained[f"reason_feature_{k}"].to_numpy(dtype=object),
                      "shap": explained[f"reason_shap_{k}"].to_numpy(dtype=float), "rank": k})
        for k in slots
    ], ignore_index=True)
    long = long[long["feature"].notna()]
    g = long.groupby("feature")
    out = pd.DataFrame({
        "count": g.size(),
        "first": long[long["rank"] == 1].groupby("feature").size(),
        "mean_shap": g["shap"].mean(),
    })
    out["first"] = out["first"].fillna(0).astype(int)
    out["share"] = out["count"] / len(explained)
    out["reason"] = [readable(f) for f in out.index]
    out.index.name = "feature"
    out = out.reset_index().sort_values(["count", "feature"], ascending=[False, True], kind="stable")
    return out.set_index("feature")[columns]


# Markdown. `DataFrame.to_markdown` needs tabulate, which foedus does not depend on.

def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(x) -> str:
        return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _percent(x: float) -> str:
    return "" if np.isnan(x) else f"{100 * x:.3g}%"


def _pairs(explained: pd.DataFrame) -> list[str]:
    if "name1" in explained:
        return [f"{a} ({c}) - {b} ({d})" for a, c, b, d in
                zip(explained["name1"], explained["ccode1"], explained["name2"], explained["ccode2"])]
    return [f"{c} - {d}" for c, d in zip(explained["ccode1"], explained["ccode2"])]


def _case_table(explained: pd.DataFrame, top: int) -> str:
    part = explained.head(top)
    table = pd.DataFrame({"year": part["year"].astype(int).to_numpy(), "pair": _pairs(part),
                          "probability": [_percent(p) for p in part["probability"]]})
    if "fold" in part:
        table.insert(0, "fold", part["fold"].to_numpy())
    for c in sorted(c for c in part.columns if re.fullmatch(r"reason_\d+", c)):
        table[c.replace("_", " ")] = part[c].to_numpy()
    return _markdown_table(table)


def markdown_report(predictions: pd.DataFrame, threat: pd.DataFrame, onsets: pd.DataFrame, top: int = 20,
                    title: str = "Threat without alliance") -> str:
    """A Markdown summary of one backtest: ``predictions`` (all folds' forecasts) and the two
    lists of every fold (``BacktestResult``): formation by era, what most often held shared-threat pairs
    back, the ``top`` least likely shared-threat non-formations and the ``top`` most likely
    onsets without a shared threat."""
    era = formation_by_era(predictions)
    era_table = pd.DataFrame({
        "era": era.index,
        "dyad-years": era["dyad_years"].to_numpy(),
        "shared threat": era["shared_threat"].to_numpy(),
        "onsets among them": era["threat_onsets"].to_numpy(),
        "formed an alliance": [_percent(x) for x in era["threat_formation_rate"]],
        "mean forecast": [_percent(x) for x in era["threat_mean_probability"]],
        "no shared threat": era["no_threat"].to_numpy(),
        "onsets without threat": era["no_threat_onsets"].to_numpy(),
        "formed (no threat)": [_percent(x) for x in era["no_threat_formation_rate"]],
    })
    has_reasons = "reason_1" in threat
    lines = [
        f"# {title}", "",
        (f"{len(threat):,} at-risk dyad-years shared a threat and formed no alliance; "
         f"{len(onsets):,} onsets came without a shared threat. Reasons are the features that pushed the "
         "model's probability down (or up) the most: value, then SHAP contribution in log-odds."), "",
        "## Alliance formation among shared-threat dyad-years, by era", "", _markdown_table(era_table), "",
        "## What held shared-threat pairs back", "",
    ]
    if has_reasons:
        summary = reasons_summary(threat).head(top).reset_index()
        lines += ["How often each feature is among the top three downward pushes.", "", _markdown_table(pd.DataFrame({
            "reason": summary["reason"], "feature": [f"`{f}`" for f in summary["feature"]],
            "cases": summary["count"], "share of cases": [_percent(x) for x in summary["share"]],
            "as first reason": summary["first"], "mean SHAP": [f"{x:+.2f}" for x in summary["mean_shap"]],
        })), ""]
    else:
        lines += ["The model gives no SHAP contributions: no reasons.", ""]
    lines += [f"## The {top} least likely shared-threat pairs that did not ally", "",
              _case_table(threat.sort_values("probability", kind="stable"), top), "",
              f"## The {top} most likely onsets without a shared threat", "",
              _case_table(onsets.sort_values("probability", ascending=False, kind="stable"), top), ""]
    return "\n".join(lines)

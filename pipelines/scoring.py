"""Scoring candidate dyads, as plain functions for notebooks: ``score`` (one pair, with its
reasons), ``score_batch`` (a table of pairs, from ``foedus.models.pairs``, where the served
model scores its pairs too), ``rank`` (the likeliest new alliances of a year)
and ``threats`` (pairs that share a threat and are not allied). The CLI's ``foedus score``,
``foedus rank`` and ``foedus threats`` print what these return.

Every function scores with the registered champion of the label spec unless ``model_uri``
names another model of the tracking store, on the built table of the current data (built
first if needed). Years up to the first after the alliance data end (2019 for ATOP) use the
ordinary champion; later years, through next year, use the present-day model trained for that
year (``foedus train --for-year``, ``foedus.features.staleness``), and the output states the
data vintage: each source's last year and staleness. ``supplements`` (a CSV of treaties signed
after the alliance data end, ``foedus.features.supplements``) mark more pairs already allied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.alliances import alliance_state
from foedus.features.families.geography import region_of
from foedus.features.families.threat import common_foe_years, common_rivals_of
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec
from foedus.features.readers import GML, SYSTEM, TD, TSS, load_source
from foedus.features.staleness import staleness_of
from foedus.features.table import load_sources
from foedus.infra.config import Paths
from foedus.infra.errors import InvalidInput
from foedus.models.pairs import YearContext, score_batch, vintage_summary, year_context

__all__ = ["score", "score_batch", "rank", "threats", "year_context"]

REGIONS = {"americas": 0, "europe": 1, "africa": 2, "middle east": 3, "asia": 4}


def _pair(context: YearContext, a, b) -> tuple:
    states = [context.registry.resolve(q, context.system_year) for q in (a, b)]
    if states[0].ccode == states[1].ccode:
        raise InvalidInput(f"{states[0].name} twice: give two different states")
    low, high = sorted(s.ccode for s in states)
    row = context.rows[(context.rows["ccode1"] == low) & (context.rows["ccode2"] == high)]
    if row.empty:
        raise InvalidInput(f"{states[0]} and {states[1]} are not a dyad of {context.year}")
    return states, row.index[0]


def alliance_types(spec: LabelSpec, a: int, b: int, year: int, paths: Paths) -> list[str]:
    """The obligation types (``any``, ``defense``, ...) under which the label source records
    the pair allied in ``year``."""
    source = spec.alliance_source
    directed = load_source(source.source_key, paths)
    pair = directed[directed["ccode1"].isin([a, b]) & directed["ccode2"].isin([a, b]) & (directed["year"] == year)]
    state = alliance_state(pair, source)
    if state.empty:
        return []
    return [t for t in source.obligations if bool(state[t].iloc[0])]


def threat_detail(context: YearContext, a: int, b: int, row: pd.Series, paths: Paths) -> dict:
    """Shared-threat status with the common foes (GML MIDs, 10 years, with the dispute years)
    and common rivals (Thompson-Dreyer, TSS) named; a list is None where its source does not
    cover t-1 (for a present-day forecast, t-1 less the source's staleness: what the model read)."""
    sources = load_sources([GML, TD, TSS, SYSTEM], paths)
    status = row.get("shared_threat", np.nan)
    out = {"status": None if pd.isna(status) else int(status), "common_foes": None, "common_rivals": None}
    stale = staleness_of(context.vintage)
    year = context.year - stale.get(GML, 0)
    first, last = sources.coverage[GML]
    if first <= year - 1 <= last:
        foes = common_foe_years(sources, a, b, year)
        out["common_foes"] = [{"ccode": int(f.ccode), "name": context.name(f.ccode), "years_a": f.years_a,
                               "years_b": f.years_b} for f in foes.itertuples()]
    rivals: dict[int, list[str]] = {}
    known = False
    for key, label in ((TD, "Thompson-Dreyer"), (TSS, "Thompson-Sakuwa-Suzuki")):
        year = context.year - stale.get(key, 0)
        first, last = sources.coverage[key]
        if first <= year - 1 <= last:
            known = True
            for code in common_rivals_of(sources, a, b, year, key):
                rivals.setdefault(code, []).append(label)
    if known:
        out["common_rivals"] = [{"ccode": c, "name": context.name(c), "sources": s} for c, s in sorted(rivals.items())]
    return out


def missing_sources(row: pd.Series) -> list[str]:
    """The sources that do not cover t-1 (their ``covered_<source>`` flag is not 1)."""
    return [c[len("covered_"):] for c in row.index if c.startswith("covered_") and row[c] != 1]


def out_of_time(context: YearContext, a: int, b: int, paths: Paths) -> dict | None:
    """The latest backtest's out-of-time forecast for the pair-year, if a test block held it."""
    import mlflow
    from foedus.models.experiment import latest_backtest
    from foedus.models.metrics import year_percentiles

    if context.vintage is not None:
        return None  # no backtest holds a year past the label data
    run = latest_backtest(context.spec, context.model.model, paths.root)
    if run is None:
        return None
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="predictions/all_folds.parquet")
    low, high = sorted((a, b))
    forecasts = pd.read_parquet(local, filters=[("year", "==", context.year)])
    hit = forecasts[(forecasts["ccode1"] == low) & (forecasts["ccode2"] == high)]
    if hit.empty:
        return None
    percentile = year_percentiles(forecasts["probability"], forecasts["year"])[forecasts.index.get_loc(hit.index[0])]
    return {"probability": float(hit["probability"].iloc[0]), "percentile": float(percentile),
            "fold": str(hit["fold"].iloc[0]), "run_id": run.info.run_id, "onset": int(hit["label"].iloc[0])}


def score(a, b, year: int | None = None, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, model_uri: str | None = None,
          n_factors: int = 5, paths: Paths | None = None, context: YearContext | None = None, supplements=None):
    """How likely is a treaty between ``a`` and ``b`` in ``year``, and why (``PairScore``).

    ``a``, ``b``: COW codes, abbreviations or names. ``year`` defaults to the last scorable
    year. Pass ``context`` (``year_context``) to score many pairs of one year.

    >>> foedus.score("India", "Australia", 2019).to_dict()   # doctest: +SKIP
    """
    from foedus.models.scoring import PairScore, contributions, factors

    paths = paths or Paths.discover()
    context = context or year_context(spec, year, model_uri=model_uri, paths=paths, supplements=supplements)
    states, index = _pair(context, a, b)
    row = context.rows.loc[index]
    low, high = int(row["ccode1"]), int(row["ccode2"])
    record = context.record_year
    allied = alliance_types(context.spec, low, high, record, paths)
    pair_treaties = _pair_treaties(context, low, high)
    for treaty in pair_treaties:
        allied += [t for t in ([treaty["obligation"], "any"]) if t not in allied]
    obligations = context.spec.alliance_source.obligations
    at_risk = bool(row["at_risk"])
    probability = percentile = None
    pushes: list[dict] = []
    notes = []
    if at_risk:
        forecast = context.forecasts.loc[index]
        probability, percentile = float(forecast["probability"]), float(forecast["percentile"])
        shap = contributions(context.model, context.rows.loc[[index]], context.rows)
        if shap is not None:
            pushes = factors(shap.iloc[0], row, n_factors)
    elif pair_treaties:
        signed = "; ".join(f"{t['obligation']} {t['year']} ({t['source']})" for t in pair_treaties)
        notes.append(f"already allied by a treaty from the supplement file {context.supplements.path}: {signed}")
    else:
        notes.append(f"already allied ({', '.join(allied)}) in {record}: no {context.spec.obligation} "
                     "onset is possible (at_risk_under lists the obligations still open)")
    if context.vintage is not None:
        notes.append(f"present-day forecast: the alliance record ends in {record}; a pair allied since is at "
                     "risk here unless --supplement records its treaty")
    in_sample = None if context.model.train_last_year is None else context.year <= context.model.train_last_year
    if in_sample:
        notes.append(f"the model was trained on years up to {context.model.train_last_year}: this score is in-sample")
    source = context.spec.alliance_source.name
    return PairScore(
        state_a={"ccode": states[0].ccode, "name": states[0].name},
        state_b={"ccode": states[1].ccode, "name": states[1].name},
        year=context.year, label=str(context.spec), probability=probability, percentile=percentile,
        at_risk_dyads=len(context.forecasts), already_allied=not at_risk, allied_under=allied,
        at_risk_under=[f"{source}:{t}:{context.spec.horizon}" for t in obligations if t not in allied],
        shared_threat=threat_detail(context, low, high, row, paths), factors=pushes,
        missing_sources=missing_sources(row), model=context.model.describe(), data=context.data,
        in_sample=in_sample, out_of_time=out_of_time(context, low, high, paths) if at_risk else None, notes=notes,
        record_year=record, missing_features=missing_features(row, context.model.features),
        supplements=pair_treaties,
        vintage=None if context.vintage is None else vintage_summary(context.vintage),
    )


def _pair_treaties(context: YearContext, low: int, high: int) -> list[dict]:
    """The supplement treaties that made this pair already allied in the context's year."""
    if context.supplemented is None or context.supplemented.empty:
        return []
    used = context.supplemented
    return context.supplements.describe(used[(used["ccode1"] == low) & (used["ccode2"] == high)])


def missing_features(row: pd.Series, features: list[str]) -> list[str]:
    """The model's features that have no value for this pair-year."""
    return [f for f in features if f in row.index and f != "year" and pd.isna(row[f])]


def _provenance(frame: pd.DataFrame, context: YearContext) -> pd.DataFrame:
    """Say which model and data produced the numbers (``frame.attrs``: model, data, at_risk_dyads)."""
    frame.attrs.update(model=context.model.describe(), data=context.data, at_risk_dyads=len(context.forecasts),
                       year=context.year)
    return frame


def _named(context: YearContext, frame: pd.DataFrame) -> pd.DataFrame:
    names = context.registry.names()
    return frame.assign(name1=frame["ccode1"].map(names), name2=frame["ccode2"].map(names))


def rank(year: int | None = None, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, top: int = 20,
         with_state=None, region: str | None = None, model_uri: str | None = None,
         paths: Paths | None = None, context: YearContext | None = None, supplements=None) -> pd.DataFrame:
    """The ``top`` likeliest new alliances of ``year`` among its at-risk dyads: ccode1, ccode2,
    names, probability, percentile and a one-line reason (the strongest push up). ``with_state``
    keeps pairs containing that state; ``region`` (americas, europe, africa, middle east, asia)
    keeps pairs with both states in it."""
    from foedus.models.scoring import one_line_reasons

    if top < 1:
        raise InvalidInput(f"--top {top}: give at least 1")
    if region is not None and region.lower() not in REGIONS:
        raise InvalidInput(f"--region {region}: choose from {', '.join(REGIONS)}")
    context = context or year_context(spec, year, model_uri=model_uri, paths=paths, supplements=supplements)
    chosen = context.forecasts
    if with_state is not None:
        code = context.registry.resolve(with_state, context.system_year).ccode
        chosen = chosen[(chosen["ccode1"] == code) | (chosen["ccode2"] == code)]
    if region is not None:
        r = REGIONS[region.lower()]
        chosen = chosen[(region_of(chosen["ccode1"]) == r) & (region_of(chosen["ccode2"]) == r)]
    chosen = chosen.sort_values("probability", ascending=False, kind="stable").head(top)
    reasons = one_line_reasons(context.model, context.rows.loc[chosen.index], context.rows, "up")
    out = _named(context, chosen).assign(reason=reasons)
    out = out[["ccode1", "name1", "ccode2", "name2", "year", "probability", "percentile", "reason"]]
    return _provenance(out.reset_index(drop=True), context)


def threats(year: int | None = None, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, top: int = 20,
            model_uri: str | None = None, paths: Paths | None = None,
            context: YearContext | None = None, supplements=None) -> pd.DataFrame:
    """At-risk pairs of ``year`` that share a threat (``shared_threat == 1``), most threatened
    first (common foes and common rivals counted together, then the common foes' capabilities),
    with the model's probability and the three features that held each back most."""
    from foedus.models.explain import top_pushes
    from foedus.models.scoring import contributions

    if top < 1:
        raise InvalidInput(f"--top {top}: give at least 1")
    context = context or year_context(spec, year, model_uri=model_uri, paths=paths, supplements=supplements)
    rows = context.rows.loc[context.forecasts.index]
    shared = rows[rows["shared_threat"] == 1]
    counts = shared[["common_foes_10y", "common_rivals_td", "common_rivals_tss"]].fillna(0)
    intensity = counts["common_foes_10y"] + counts[["common_rivals_td", "common_rivals_tss"]].max(axis=1)
    order = pd.DataFrame({"intensity": intensity, "power": shared["common_foe_cinc_10y"].fillna(0)})
    chosen = order.sort_values(["intensity", "power"], ascending=False, kind="stable").head(top).index
    out = _named(context, context.forecasts.loc[chosen]).assign(
        common_foes=rows.loc[chosen, "common_foes_10y"], common_rivals=counts.loc[chosen].iloc[:, 1:].max(axis=1),
        intensity=order.loc[chosen, "intensity"])
    shap = contributions(context.model, rows.loc[chosen], context.rows)
    if shap is not None and len(chosen):
        held = top_pushes(shap, rows.loc[chosen], 3, "down")
        out["held_back_by"] = held[["reason_1", "reason_2", "reason_3"]].apply(
            lambda r: "; ".join(x for x in r if isinstance(x, str)), axis=1)
    else:
        out["held_back_by"] = ""
    columns = ["ccode1", "name1", "ccode2", "name2", "year", "common_foes", "common_rivals", "probability",
               "percentile", "held_back_by"]
    return _provenance(out[columns].reset_index(drop=True), context)

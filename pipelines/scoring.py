"""Scoring candidate dyads, as plain functions for notebooks: ``score`` (one pair, with its
reasons), ``score_batch`` (a table of pairs), ``rank`` (the likeliest new alliances of a year)
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

from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.features.alliances import alliance_state
from foedus.features.build import ensure_built, read_year
from foedus.features.config import Paths
from foedus.features.errors import InvalidInput
from foedus.features.families.geography import region_of
from foedus.features.families.threat import common_foe_years, common_rivals_of
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec, as_label_spec
from foedus.features.readers import GML, SYSTEM, TD, TSS, load_source, source_years
from foedus.features.staleness import staleness_of
from foedus.features.states import StateRegistry, load_registry
from foedus.features.supplements import Supplements, read_supplements
from foedus.features.table import load_sources
from foedus.features.years import FIRST_YEAR, LAST_YEAR, NEXT_YEAR, whole_year

REGIONS = {"americas": 0, "europe": 1, "africa": 2, "middle east": 3, "asia": 4}


@dataclass
class YearContext:
    """What scoring one year needs: the model, the year's rows and forecasts, names, provenance."""

    spec: LabelSpec
    year: int
    model: object  # foedus.models.scoring.ScoringModel
    rows: pd.DataFrame  # every row of the year in the built table
    forecasts: pd.DataFrame  # every at-risk dyad: probability, percentile (index of rows)
    provenance: dict
    registry: StateRegistry
    supplements: Supplements | None = None
    supplemented: pd.DataFrame | None = None  # the treaties that made pairs of this year already allied

    @property
    def vintage(self) -> dict | None:
        """A present-day forecast's data vintage (the build sidecar's), else None."""
        return self.provenance.get("vintage")

    @property
    def system_year(self) -> int:
        """The state system's year the pairs come from (its last year, carried forward, past it)."""
        return min(self.year, LAST_YEAR)

    @property
    def record_year(self) -> int:
        """The last year of the alliance record the at-risk set is read from: t-1, less the
        label source's staleness for a present-day forecast."""
        return self.year - 1 - staleness_of(self.vintage).get(self.spec.alliance_source.source_key, 0)

    @property
    def data(self) -> dict:
        out = {"digest": self.provenance.get("build_key"), "label_spec": str(self.spec),
               "sources": len(self.provenance.get("sources", {})), "record_year": self.record_year}
        if self.vintage is not None:
            out["vintage"] = vintage_summary(self.vintage)
        if self.supplements is not None:
            out["supplements"] = {"file": str(self.supplements.path), "treaties": len(self.supplements.treaties),
                                  "used": self.supplements.describe(self.supplemented)}
        return out

    def name(self, ccode: int) -> str:
        return self.registry.states[int(ccode)].name


def vintage_summary(vintage: dict) -> dict:
    """The data vintage of a present-day forecast as the output states it."""
    return {"target": vintage["target"], "sources": vintage["sources"], "profile": vintage["profile"],
            "carried_forward": vintage["carried_forward"],
            "system_note": (f"the state system ends in {LAST_YEAR}: its pairs are carried forward to "
                            f"{vintage['target']}") if vintage["carried_forward"] else None}


def last_scorable_year(label_last: int) -> int:
    """The first year after the alliance source ends: its at-risk set is known, its onsets are
    not. The last year the ordinary champion scores; later years use present-day models."""
    return label_last + 1


def label_last_year(spec: LabelSpec, paths: Paths) -> int:
    key = spec.alliance_source.source_key
    return int(source_years(key, load_source(key, paths))[1])


def check_scored_year(year, spec: LabelSpec, label_last: int) -> int:
    """``year`` as int if foedus scores it: 1816 through next year (``NEXT_YEAR``)."""
    value = whole_year(year, "year", FIRST_YEAR, NEXT_YEAR)
    if not FIRST_YEAR <= value <= NEXT_YEAR:
        raise InvalidInput(f"year {value} is outside what foedus scores for {spec} ({FIRST_YEAR}-{NEXT_YEAR}: "
                           f"{spec.alliance_source.source_key} ends in {label_last}, later years are forecast by "
                           "present-day models through next year)")
    return value


def apply_supplements(rows: pd.DataFrame, supplements: Supplements, spec: LabelSpec,
                      year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` (one year of a built table) with the pairs an analyst's treaty signed before
    ``year`` made allied taken out of the at-risk set; and those treaties."""
    treaties = supplements.allied_before(year, spec.obligation)
    keys = pd.MultiIndex.from_frame(treaties[["ccode1", "ccode2"]])
    hit = pd.MultiIndex.from_frame(rows[["ccode1", "ccode2"]]).isin(keys)
    hit &= rows["at_risk"].fillna(False).to_numpy(dtype=bool)
    used = treaties[pd.MultiIndex.from_frame(treaties[["ccode1", "ccode2"]]).isin(
        pd.MultiIndex.from_frame(rows.loc[hit, ["ccode1", "ccode2"]]))]
    if not hit.any():
        return rows, used
    rows = rows.copy()
    rows.loc[hit, "at_risk"] = False
    return rows, used


def load_supplements(path, spec: LabelSpec, registry: StateRegistry, paths: Paths) -> Supplements:
    """Read and validate an analyst's treaty file for ``spec``'s label source."""
    source = spec.alliance_source
    directed = load_source(source.source_key, paths)
    return read_supplements(path, source, registry, alliance_state(directed, source),
                            int(source_years(source.source_key, directed)[1]))


def year_context(spec: LabelSpec | str = DEFAULT_LABEL_SPEC, year: int | None = None, *, model_uri: str | None = None,
                 paths: Paths | None = None, model=None, supplements=None) -> YearContext:
    """Load the model (or take ``model``, a ``ScoringModel``) and score every at-risk dyad of
    ``year`` (default: the last year the ordinary champion scores, the first past the label
    data). A later year uses the present-day model for that year and its step-shifted table
    (so does that first year when ``model_uri`` names its present-day model). ``supplements``:
    a path to an analyst's treaty CSV (or ``Supplements``)."""
    from foedus.models.scoring import check_build, check_vintage, load_scoring_model, year_forecasts
    from foedus.models.tracking import configure

    paths = paths or Paths.discover()
    spec = as_label_spec(spec)
    label_last = label_last_year(spec, paths)
    last = last_scorable_year(label_last)
    year = last if year is None else check_scored_year(year, spec, label_last)
    for_year = year if year > last else None
    if model is None:
        configure(paths.root)
        model = load_scoring_model(spec, model_uri, for_year)  # before the build: a missing model fails fast
    if for_year is None and model.for_year == year:
        for_year = year  # the first year past the label data, asked of its present-day model by URI
    registry = load_registry(paths)
    if supplements is not None and not isinstance(supplements, Supplements):
        supplements = load_supplements(supplements, spec, registry, paths)
    path, provenance = ensure_built(spec, for_year=for_year, paths=paths)
    check_vintage(model, provenance.get("vintage"), year, spec)
    rows = read_year(path, year)
    check_build(model, rows, spec)
    used = None
    if supplements is not None:
        rows, used = apply_supplements(rows, supplements, spec, year)
    return YearContext(spec, year, model, rows, year_forecasts(model, rows), provenance, registry, supplements, used)


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
    names = {code: state.name for code, state in context.registry.states.items()}
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


BATCH_COLUMNS = ("state_a", "state_b", "year")


def score_batch(pairs: pd.DataFrame, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, model_uri: str | None = None,
                paths: Paths | None = None, model=None, supplements=None) -> pd.DataFrame:
    """Score every row of ``pairs`` (columns ``state_a``, ``state_b``, ``year``). A row that
    cannot be scored stays in the output with its reason in ``error`` and no score; the rest
    are scored as ``score`` scores them (same probability and percentile). ``model``: a
    ``ScoringModel`` to use instead of loading one (the served pyfunc passes itself)."""
    from foedus.features.errors import FoedusError

    missing = [c for c in BATCH_COLUMNS if c not in pairs.columns]
    if missing:
        raise InvalidInput(f"the pairs lack the column(s) {', '.join(missing)}: give a header state_a,state_b,year")
    paths = paths or Paths.discover()
    spec = as_label_spec(spec)
    if supplements is not None and not isinstance(supplements, Supplements):
        supplements = load_supplements(supplements, spec, load_registry(paths), paths)  # once, not per year
    out = pairs[list(BATCH_COLUMNS)].copy()
    for column in ("ccode_a", "name_a", "ccode_b", "name_b", "probability", "percentile", "already_allied",
                   "error"):
        out[column] = None
    years = pd.to_numeric(out["year"], errors="coerce")
    whole = years.notna() & (years == years.round())
    out.loc[~whole, "error"] = [f"year {y!r} is not a whole number" for y in out.loc[~whole, "year"]]
    for year in sorted(years[whole].astype(int).unique()):
        here = whole & (years == year)
        try:
            context = year_context(spec, int(year), model_uri=model_uri, paths=paths, model=model,
                                   supplements=supplements)
        except FoedusError as error:
            out.loc[here, "error"] = str(error)
            continue
        for i in out.index[here]:
            try:
                states, index = _pair(context, out.at[i, "state_a"], out.at[i, "state_b"])
            except FoedusError as error:
                out.at[i, "error"] = str(error)
                continue
            out.loc[i, ["ccode_a", "name_a", "ccode_b", "name_b"]] = [states[0].ccode, states[0].name,
                                                                      states[1].ccode, states[1].name]
            allied = index not in context.forecasts.index
            out.at[i, "already_allied"] = allied
            if not allied:
                out.at[i, "probability"] = float(context.forecasts.at[index, "probability"])
                out.at[i, "percentile"] = float(context.forecasts.at[index, "percentile"])
    return out

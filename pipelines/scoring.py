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
from foedus.features.errors import FoedusError, InvalidInput
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
                 paths: Paths | None = None, model=None, supplements=None,
                 registry: StateRegistry | None = None) -> YearContext:
    """Load the model (or take ``model``, a ``ScoringModel``) and score every at-risk dyad of
    ``year`` (default: the last year the ordinary champion scores, the first past the label
    data). A later year uses the present-day model for that year and its step-shifted table
    (so does that first year when ``model_uri`` names its present-day model). ``supplements``:
    a path to an analyst's treaty CSV (or ``Supplements``). ``registry``: the state registry,
    if already loaded."""
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
    registry = registry or load_registry(paths)
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
SCORE_COLUMNS = ("ccode_a", "name_a", "ccode_b", "name_b", "probability", "percentile", "already_allied", "error")
# A pair of COW codes (each under 1000) as one integer key: ccode1 * PAIR_KEY + ccode2.
PAIR_KEY = 1000
# Distinct state strings whose resolution a BatchScorer remembers at most (each about 200 bytes).
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class YearPairs:
    """One year's dyads as batch scoring looks them up: keyed by ``ccode1 * PAIR_KEY +
    ccode2``, with the forecast of the at-risk ones (NaN where the pair is already allied)."""

    year: int
    system_year: int
    keys: pd.Index
    probability: np.ndarray
    percentile: np.ndarray
    allied: np.ndarray

    @classmethod
    def of(cls, context: YearContext) -> YearPairs:
        rows = context.rows[["ccode1", "ccode2"]]
        rows = rows[~rows.duplicated()]  # the first row of a pair, as ``_pair`` takes it
        forecasts = context.forecasts.reindex(rows.index)
        keys = rows["ccode1"].to_numpy(dtype="int64") * PAIR_KEY + rows["ccode2"].to_numpy(dtype="int64")
        return cls(context.year, context.system_year, pd.Index(keys),
                   forecasts["probability"].to_numpy(dtype="float64"),
                   forecasts["percentile"].to_numpy(dtype="float64"), ~rows.index.isin(context.forecasts.index))


def _each_distinct(values, describe) -> np.ndarray:
    """``describe(value)`` for every element of ``values``, computed once per distinct value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return np.array([describe(u) for u in uniques] or [None], dtype=object)[codes]


class _Found:
    """What batch scoring found for each of ``n`` rows, filled year by year."""

    def __init__(self, n: int):
        self.error = np.full(n, None, dtype=object)
        self.found = np.zeros(n, dtype=bool)
        self.ccode_a, self.ccode_b = np.full(n, -1, dtype="int64"), np.full(n, -1, dtype="int64")
        self.probability, self.percentile = np.full(n, np.nan), np.full(n, np.nan)
        self.allied = np.zeros(n, dtype=bool)

    def frame(self, index: pd.Index, names: np.ndarray) -> pd.DataFrame:
        """``SCORE_COLUMNS`` as object columns, None where empty: the Python values (int, str,
        float, bool) that scoring row by row gave."""
        found, scored = self.found, self.found & ~self.allied
        a, b = np.where(found, self.ccode_a, 0), np.where(found, self.ccode_b, 0)
        columns = {"ccode_a": a.astype(object), "name_a": names[a], "ccode_b": b.astype(object), "name_b": names[b],
                   "probability": self.probability.astype(object), "percentile": self.percentile.astype(object),
                   "already_allied": self.allied.astype(object)}
        out = pd.DataFrame({c: np.where(scored if c in ("probability", "percentile") else found, v, None)
                            for c, v in columns.items()}, index=index, dtype=object)
        out["error"] = pd.Series(self.error, index=index, dtype=object)
        return out


class BatchScorer:
    """Scores tables of pairs (columns ``state_a``, ``state_b``, ``year``) exactly as ``score``
    scores one pair, and keeps what it loaded for the next table: the model (once), each year's
    forecasts (once per year, however many rows or tables ask for it) and each distinct state
    string (resolved once). Whole columns at a time: no step runs once per row.

    ``score_batch`` scores one table with it; ``foedus.batch.score_csv`` a CSV chunk by chunk."""

    def __init__(self, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, model_uri: str | None = None,
                 paths: Paths | None = None, model=None, supplements=None):
        self.paths = paths or Paths.discover()
        self.spec = as_label_spec(spec)
        self.model_uri, self.model = model_uri, model
        if supplements is not None and not isinstance(supplements, Supplements):
            supplements = load_supplements(supplements, self.spec, load_registry(self.paths), self.paths)
        self.supplements = supplements
        self._registry: StateRegistry | None = None
        self._label_last: int | None = None
        self._models: dict = {}  # for_year (None: the ordinary champion) -> ScoringModel or FoedusError
        self._years: dict[int, YearPairs | str] = {}  # a year's pairs, or why it cannot be scored
        self._states: dict = {}  # what a user typed -> State, or why it names none
        self._members: dict[tuple[int, int], str | None] = {}  # (ccode, year) -> None if a member, else why not
        self._spells: dict[int, list[tuple[int, int]]] = {}  # ccode -> membership spells (first, last year)

    @property
    def registry(self) -> StateRegistry:
        if self._registry is None:
            self._registry = load_registry(self.paths)
        return self._registry

    def score(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """The columns ``SCORE_COLUMNS`` for every row of ``pairs`` (same index, same order)."""
        missing = [c for c in BATCH_COLUMNS if c not in pairs.columns]
        if missing:
            raise InvalidInput(f"the pairs lack the column(s) {', '.join(missing)}: give a header state_a,state_b,year")
        found = _Found(len(pairs))
        raw = pairs["year"].to_numpy(dtype=object)
        years = pd.to_numeric(pairs["year"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(years) & (years == np.round(years))
        found.error[~whole] = _each_distinct(raw[~whole], lambda y: f"year {y!r} is not a whole number")
        states_a, states_b = pairs["state_a"].to_numpy(dtype=object), pairs["state_b"].to_numpy(dtype=object)
        rows = np.flatnonzero(whole)
        for year, at in pd.Series(years[whole]).groupby(years[whole], sort=True).indices.items():
            at = rows[at]
            entry = self._year(int(year))
            if isinstance(entry, str):
                found.error[at] = entry
            else:
                self._score_year(entry, states_a[at], states_b[at], at, found)
        return found.frame(pairs.index, self._names())

    def _score_year(self, entry: YearPairs, states_a: np.ndarray, states_b: np.ndarray, at: np.ndarray,
                    found: _Found) -> None:
        """Score rows ``at`` of one year: each check in the order ``_pair`` makes it, the first
        that fails giving the row's error."""
        a, why_a = self._resolve(states_a, entry.system_year)
        b, why_b = self._resolve(states_b, entry.system_year)
        why = np.where(pd.isna(why_a), why_b, why_a)
        ok = pd.isna(why)
        same = ok & (a == b)
        why[same] = _each_distinct(a[same], lambda c: f"{self.registry[c].name} twice: give two different states")
        ok &= ~same
        index = np.where(ok, entry.keys.get_indexer(np.minimum(a, b) * PAIR_KEY + np.maximum(a, b)), -1)
        no_dyad = ok & (index < 0)
        why[no_dyad] = _each_distinct(a[no_dyad] * PAIR_KEY + b[no_dyad], lambda k: (
            f"{self.registry[k // PAIR_KEY]} and {self.registry[k % PAIR_KEY]} are not a dyad of {entry.year}"))
        found.error[at] = why
        hit = index >= 0
        at, index = at[hit], index[hit]
        found.found[at] = True
        found.ccode_a[at], found.ccode_b[at] = a[hit], b[hit]
        found.probability[at], found.percentile[at] = entry.probability[index], entry.percentile[index]
        found.allied[at] = entry.allied[index]

    def _names(self) -> np.ndarray:
        names = np.full(PAIR_KEY, None, dtype=object)
        if self._registry is not None:
            for code, state in self._registry.states.items():
                names[code] = state.name
        return names

    def _resolve(self, queries: np.ndarray, year: int) -> tuple[np.ndarray, np.ndarray]:
        """The COW code each query names (-1 if none) and why it names none in ``year`` (None if
        it does): ``StateRegistry.resolve(query, year)``, once per distinct query and year."""
        codes, uniques = pd.factorize(queries, use_na_sentinel=False)
        found = np.full(len(uniques), -1, dtype="int64")
        why = np.full(len(uniques), None, dtype=object)
        for i, query in enumerate(uniques):
            state = self._state(query)
            if isinstance(state, str):
                why[i] = state
                continue
            why[i] = self._not_member(state, year)
            found[i] = -1 if why[i] is not None else state.ccode
        return found[codes], why[codes]

    def _not_member(self, state, year: int) -> str | None:
        """Why ``state`` was not a member of the system in ``year`` (as ``resolve`` says it), or None."""
        if (state.ccode, year) not in self._members:
            if state.ccode not in self._spells:
                self._spells[state.ccode] = state.member_years()  # slow to compute: once per state
            self._members[state.ccode, year] = None
            if not any(first <= year <= last for first, last in self._spells[state.ccode]):
                try:
                    self.registry.resolve(state.ccode, year)  # raises, saying why
                except FoedusError as error:
                    self._members[state.ccode, year] = str(error)
        return self._members[state.ccode, year]

    def _state(self, query):
        if isinstance(query, np.generic):
            query = query.item()  # a COW code from an integer column: 2, not np.int64(2)
        try:
            key = (type(query), query)
            hash(key)
        except TypeError:
            key = None
        if key is None or key not in self._states:
            try:
                state = self.registry.resolve(query)
            except FoedusError as error:
                state = str(error)
            if key is None:
                return state
            if len(self._states) >= MAX_REMEMBERED:
                self._states.clear()  # a file of ever new names must not fill memory with their errors
            self._states[key] = state
        return self._states[key]

    def _year(self, year: int) -> YearPairs | str:
        if year not in self._years:
            try:
                if self._label_last is None:
                    self._label_last = label_last_year(self.spec, self.paths)
                # before any model loads, as year_context does; not remembered, so that a file of
                # ever new years outside the range does not fill memory with their errors
                check_scored_year(year, self.spec, self._label_last)
            except FoedusError as error:
                return str(error)
            try:
                self._years[year] = YearPairs.of(self._context(year))
            except FoedusError as error:
                self._years[year] = str(error)
        return self._years[year]

    def _context(self, year: int) -> YearContext:
        return year_context(self.spec, year, model_uri=self.model_uri, paths=self.paths,
                            model=self.model or self._model(year), supplements=self.supplements,
                            registry=self.registry)

    def _model(self, year: int):
        """The model ``year_context`` would load for ``year``, loaded once."""
        from foedus.models.scoring import load_scoring_model
        from foedus.models.tracking import configure

        for_year = year if year > last_scorable_year(self._label_last) and self.model_uri is None else None
        if for_year not in self._models:
            try:
                if not self._models:
                    configure(self.paths.root)
                self._models[for_year] = load_scoring_model(self.spec, self.model_uri, for_year)
            except FoedusError as error:
                self._models[for_year] = error
        if isinstance(self._models[for_year], FoedusError):
            raise self._models[for_year]
        return self._models[for_year]


def score_batch(pairs: pd.DataFrame, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *, model_uri: str | None = None,
                paths: Paths | None = None, model=None, supplements=None) -> pd.DataFrame:
    """Score every row of ``pairs`` (columns ``state_a``, ``state_b``, ``year``; others are
    left out). A row that cannot be scored stays in the output with its reason in ``error``
    and no score; the rest are scored as ``score`` scores them (same probability and
    percentile); duplicate rows are scored alike. Output columns: ``state_a``, ``state_b``,
    ``year``, then ``SCORE_COLUMNS``: ``ccode_a``, ``name_a``, ``ccode_b``, ``name_b``,
    ``probability``, ``percentile`` (None when already allied), ``already_allied``, ``error``.
    ``model``: a ``ScoringModel`` to use instead of loading one (the served pyfunc passes
    itself). For a CSV too large to hold, ``foedus.batch.score_csv`` reads it in chunks."""
    scored = BatchScorer(spec, model_uri=model_uri, paths=paths, model=model, supplements=supplements).score(pairs)
    out = pairs[list(BATCH_COLUMNS)].copy()
    for column in SCORE_COLUMNS:
        out[column] = pd.Series(scored[column].to_numpy(), index=out.index, dtype=object)
    return out

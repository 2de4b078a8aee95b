"""A year's scoring, below the pyfunc: the champion (or a named model) and every at-risk dyad's
forecast of a year (``year_context``), and the batch scorer of tables of pairs by name
(``BatchScorer``, ``score_batch``). The served model (``foedus.models.pyfunc``), ``foedus
score``, batch scoring and the app's ``foedus.scoring`` all score pairs through it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.features.alliances import alliance_state
from foedus.features.build import ensure_built, read_year
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec, as_label_spec
from foedus.features.readers import load_source, source_years
from foedus.features.staleness import staleness_of
from foedus.features.states import StateRegistry, load_registry
from foedus.features.supplements import Supplements, read_supplements
from foedus.features.years import FIRST_YEAR, LAST_YEAR, NEXT_YEAR, whole_year
from foedus.infra.config import Paths
from foedus.infra.errors import FoedusError, InvalidInput


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
        rows = rows[~rows.duplicated()]  # the first row of a pair, as ``foedus.scoring.score`` takes it
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
    """Scores tables of pairs (columns ``state_a``, ``state_b``, ``year``) exactly as ``foedus.scoring.score``
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
        """Score rows ``at`` of one year: each check in the order ``foedus.scoring.score`` makes it, the first
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
    and no score; the rest are scored as ``foedus.scoring.score`` scores them (same probability and
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

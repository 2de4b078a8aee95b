"""Scoring candidate dyads with a registered model: one year's forecasts, one pair's score with
its reasons, the likeliest new alliances, and the pairs held back despite a shared threat.

The computations behind ``foedus score``, ``foedus rank`` and ``foedus threats``. A year is
always scored whole (every at-risk dyad of it): the percentile is a rank among them, and
LightGBM sets each year's level over them (``LightGBMOnset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from foedus.features.families import declared
from foedus.features.staleness import staleness_of
from foedus.features.universe import DYAD_YEAR
from foedus.infra.errors import FoedusError, InvalidInput
from foedus.models.estimators import feature_columns
from foedus.models.explain import pair_level, readable, top_pushes
from foedus.models.metrics import year_percentiles
from foedus.models.registry import CHAMPION, registered_name
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class ScoringModel:
    """A fitted model loaded from the tracking store, and where it came from."""

    estimator: object
    features: list[str]  # the columns it reads
    columns: list[str] | None  # the feature columns of the build it was trained on (None: not recorded)
    uri: str
    model: str  # catalogue name, e.g. lightgbm
    run_id: str
    version: str | None  # registered version, None for a run's model
    registered: str | None
    train_last_year: int | None
    vintage: dict | None = None  # a present-day model's target year and staleness profile

    @property
    def for_year(self) -> int | None:
        return None if self.vintage is None else int(self.vintage["target"])

    def describe(self) -> dict:
        return {"name": self.model, "registered": self.registered, "version": self.version, "run_id": self.run_id,
                "uri": self.uri, "train_last_year": self.train_last_year, "for_year": self.for_year}


def load_scoring_model(spec, model_uri: str | None = None, for_year: int | None = None) -> ScoringModel:
    """The champion of ``spec`` (``models:/foedus-onset-<spec>@champion``; for ``for_year``
    the present-day model's, ``models:/foedus-onset-<spec>-for<year>@champion``), or
    ``model_uri`` (``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
    ``runs:/<run id>/model``).

    Only models of the configured tracking store load: MLflow models are pickled code."""
    client = MlflowClient()
    uri = model_uri or f"models:/{registered_name(spec, for_year)}@{CHAMPION}"
    version = registered = None
    source = uri
    try:
        if uri.startswith("models:/"):
            registered, _, which = uri[len("models:/"):].partition("@")
            if which:
                found = client.get_model_version_by_alias(registered, which)
            else:
                registered, _, number = registered.partition("/")
                found = client.get_model_version(registered, number)
            version, run_id = str(found.version), found.run_id
            # the version the alias named a moment ago, not the alias again: a train moving the
            # champion meanwhile must not make the loaded model differ from the version reported
            source = f"models:/{registered}/{version}"
        elif uri.startswith("runs:/"):
            run_id = uri[len("runs:/"):].split("/")[0]
        else:
            raise InvalidInput(f"--model-uri {uri}: give models:/<name>/<version>, models:/<name>@<alias> "
                               "or runs:/<run id>/model")
        # suppress_warnings skips MLflow's check of the installed packages against the model's
        # pinned requirements (about a second per load); foedus pins the versions it ran with
        wrapped = mlflow.pyfunc.load_model(source, suppress_warnings=True).unwrap_python_model()
        run = client.get_run(run_id)
    except MlflowException as error:
        if model_uri is None and for_year is not None:
            raise FoedusError(f"no present-day model of {spec} for {for_year}: run `foedus train -l {spec} "
                              f"--for-year {for_year}` first (it backtests the model for that year if needed, "
                              "a few minutes)") from error
        if model_uri is None:
            raise FoedusError(f"no registered champion for {spec}: run `foedus backtest -l {spec}` and "
                              f"`foedus train -l {spec}` (or `foedus run -l {spec}`) first") from error
        raise FoedusError(f"cannot load {uri} from the tracking store: {str(error).splitlines()[0]}") from error
    if getattr(wrapped, "label_spec", str(spec)) != str(spec):
        raise InvalidInput(f"{uri} forecasts {wrapped.label_spec}, not {spec}: pass -l {wrapped.label_spec} "
                           "or a model of this label spec")
    last = run.data.params.get("train_last_year")
    return ScoringModel(wrapped.estimator, list(wrapped.features), getattr(wrapped, "columns", None), uri,
                        run.data.params.get("model", run.data.tags.get("model", "?")), run_id, version, registered,
                        int(last) if last is not None else None, getattr(wrapped, "vintage", None))


def check_vintage(model: ScoringModel, vintage: dict | None, year: int, spec) -> None:
    """Refuse a model trained for another staleness than the forecast of ``year`` has:
    ``vintage`` is the scored table's (None: the ordinary table, every source at t-1)."""
    if vintage is None:
        if model.vintage is not None:
            raise InvalidInput(f"{model.uri} is the present-day model for {model.for_year}, trained on sources as "
                               f"stale as they are then; {year} is scored by the ordinary champion of {spec} "
                               "(drop --model-uri)")
        return
    target = int(vintage["target"])
    if model.vintage is None:
        raise InvalidInput(f"{model.uri} was trained with every source fresh; {target} needs the present-day model "
                           f"for {target} (`foedus train -l {spec} --for-year {target}`)")
    if model.for_year != target or staleness_of(model.vintage) != staleness_of(vintage):
        changed = sorted(k for k, d in staleness_of(vintage).items() if staleness_of(model.vintage).get(k) != d)
        raise InvalidInput(f"{model.uri} serves {model.for_year} with another staleness than {target} has now "
                           f"({', '.join(changed) or 'its target year'} differ): train the present-day model for "
                           f"{target} with `foedus train -l {spec} --for-year {target}`")


def check_build(model: ScoringModel, table: pd.DataFrame, spec) -> None:
    """Refuse a model whose feature list does not match the current build."""
    built = feature_columns(table)
    missing = [c for c in model.features if c not in table.columns]
    added = [c for c in built if model.columns is not None and c not in model.columns]
    removed = [c for c in (model.columns or []) if c not in built]
    if missing or added or removed:
        what = "; ".join(part for part in (
            f"the build lacks {', '.join(missing or removed)}" if missing or removed else "",
            f"the build has new columns {', '.join(added)}" if added else "") if part)
        raise FoedusError(f"{model.uri} was trained on another feature set ({what}): retrain it with "
                          f"`foedus train -l {spec}` (or rebuild with `foedus build -l {spec}` if the build is old)")


def at_risk_rows(year_rows: pd.DataFrame) -> pd.DataFrame:
    return year_rows[year_rows["at_risk"].fillna(False).astype(bool)]


def year_forecasts(model: ScoringModel, year_rows: pd.DataFrame) -> pd.DataFrame:
    """Every at-risk dyad of the year: its probability and its percentile among them
    (``foedus.models.metrics.year_percentiles``: 100 = ranked first)."""
    rows = at_risk_rows(year_rows)
    if rows.empty:
        raise InvalidInput("no at-risk dyads in these rows: pass every row of a built year")
    out = rows[list(DYAD_YEAR)].copy()
    out["probability"] = model.estimator.predict_proba(rows)[:, 1]
    out["percentile"] = year_percentiles(out["probability"], out["year"])
    return out


def contributions(model: ScoringModel, rows: pd.DataFrame, year_rows: pd.DataFrame) -> pd.DataFrame | None:
    """Pair-level SHAP contributions of ``rows`` (their year's level taken over its at-risk
    rows), or None for a model without them."""
    if not hasattr(model.estimator, "contributions"):
        return None
    return pair_level(model.estimator.contributions(rows, reference=at_risk_rows(year_rows)))


def factors(shap: pd.Series, values: pd.Series, n: int = 5) -> list[dict]:
    """The ``n`` strongest pushes up and the ``n`` strongest down of one row: feature, label,
    value, unit, contribution (log-odds), strongest first."""
    shap = shap.drop(labels="bias", errors="ignore")
    ups = shap[shap > 0].sort_values(ascending=False, kind="stable").head(n)
    downs = shap[shap < 0].sort_values(kind="stable").head(n)
    out = []
    for name, push in [*ups.items(), *downs.items()]:
        value = values.get(name, np.nan)
        out.append({"feature": name, "label": readable(name), "unit": getattr(declared(name), "unit", None),
                    "value": None if pd.isna(value) else float(value), "contribution": float(push)})
    return out


def one_line_reasons(model: ScoringModel, rows: pd.DataFrame, year_rows: pd.DataFrame, direction: str) -> pd.Series:
    """Each row's strongest push in ``direction`` in words (empty for a model without SHAP)."""
    shap = contributions(model, rows, year_rows)
    if shap is None or rows.empty:
        return pd.Series("", index=rows.index)
    return top_pushes(shap, rows, 1, direction)["reason_1"].fillna("")


@dataclass
class PairScore:
    """One pair's forecast for one year and why; ``to_dict`` is the stable ``--json`` form."""

    state_a: dict
    state_b: dict
    year: int
    label: str
    probability: float | None
    percentile: float | None
    at_risk_dyads: int
    already_allied: bool
    allied_under: list[str]
    at_risk_under: list[str]
    shared_threat: dict
    factors: list[dict]
    missing_sources: list[str]
    model: dict
    data: dict
    in_sample: bool | None
    out_of_time: dict | None = None
    notes: list[str] = field(default_factory=list)
    record_year: int | None = None  # the alliance record's year the at-risk status is read from
    missing_features: list[str] = field(default_factory=list)
    supplements: list[dict] = field(default_factory=list)  # analyst's treaties that made the pair allied
    vintage: dict | None = None  # a present-day forecast's: each source's last year and staleness

    def to_dict(self) -> dict:
        return dict(self.__dict__)

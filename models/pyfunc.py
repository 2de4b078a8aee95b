"""The MLflow form of a fitted onset model: a pyfunc that returns probabilities.

MLflow's own flavours return class labels from pyfunc (``mlflow.lightgbm``) or need trusted
types (``mlflow.sklearn`` with skops); foedus models are plain scikit-learn estimators, so
one small pyfunc serves them all and always answers with P(onset).

It takes either ready feature rows (the columns of a built table: whole years, see
``LightGBMOnset``) or pairs by name, ``state_a``, ``state_b``, ``year``: those are scored on
the project's built table (``FOEDUS_HOME`` / ``FOEDUS_DATA_DIR``, built if needed) exactly as
``foedus score`` scores them, with ``percentile``, ``already_allied`` and ``error`` beside the
probability. MLflow models are pickled code: load them only from a store you trust.
"""

from __future__ import annotations

import warnings

import mlflow.pyfunc
import pandas as pd

PAIR_COLUMNS = ("state_a", "state_b", "year")


class OnsetModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted foedus estimator; ``predict`` returns a ``probability`` column."""

    def __init__(self, estimator, features: list[str], label_spec: str, columns: list[str] | None = None,
                 vintage: dict | None = None):
        self.estimator = estimator
        self.features = list(features)
        self.label_spec = label_spec
        # every feature column of the build it was trained on: scoring refuses another build
        self.columns = None if columns is None else list(columns)
        # a present-day model's target year and sources' staleness: scoring refuses another year
        self.vintage = vintage

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if set(PAIR_COLUMNS) <= set(model_input.columns) and model_input["state_a"].notna().all():
            return self._predict_pairs(model_input)
        frame = model_input.reindex(columns=self.features).astype("float64")
        return pd.DataFrame({"probability": self.estimator.predict_proba(frame)[:, 1]}, index=model_input.index)

    def _predict_pairs(self, model_input: pd.DataFrame) -> pd.DataFrame:
        from foedus.models.pairs import score_batch
        from foedus.models.scoring import ScoringModel

        name = type(self.estimator).__name__
        model = ScoringModel(self.estimator, self.features, self.columns, "served pyfunc", name, "", None, None, None,
                             getattr(self, "vintage", None))
        pairs = model_input[list(PAIR_COLUMNS)].astype({"state_a": str, "state_b": str})
        scored = score_batch(pairs, self.label_spec, model=model)
        out = scored[["probability", "percentile", "already_allied", "error"]].astype(
            {"probability": "float64", "percentile": "float64"})
        return out.set_axis(model_input.index)


def onset_signature(features: list[str]):
    """The served model's input: feature rows (doubles, ``year`` an integer) or pairs by name
    (``state_a``, ``state_b``, ``year``), every column optional; the output: ``probability``."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = [ColSpec("long" if c == "year" else "double", c, required=False) for c in features]
    columns += [ColSpec("string", c, required=False) for c in ("state_a", "state_b")]
    if "year" not in features:
        columns.append(ColSpec("long", "year", required=False))
    return ModelSignature(inputs=Schema(columns), outputs=Schema([ColSpec("double", "probability")]))


def log_onset_model(estimator, features: list[str], example, spec, name: str = "model", vintage: dict | None = None,
                    description: str | None = None):
    """Log a fitted estimator as a pyfunc with signature and input example (the first rows of
    ``example``, a frame of the table's columns); returns ModelInfo. ``vintage``: a present-day
    model's (the build sidecar's), kept with the model; ``description``: what it was fitted on,
    shown on the logged model's page. An ``example`` without rows logs no input example:
    MLflow then does not load the model back to check the example can be served (about half a
    second a model), which is for models meant to be served, not a backtest's fold models."""
    from foedus.models.estimators import feature_columns

    wrapped = OnsetModel(estimator, features, str(spec), feature_columns(example), vintage)
    # the first rows only: the whole frame as doubles would be a copy of gigabytes for five rows
    example = example.head(5)[features].astype({c: "int64" if c == "year" else "float64" for c in features}) \
        if len(example) else None
    signature = onset_signature(features)
    with warnings.catch_warnings():  # MLflow's advice to give an example: left out on purpose here
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        return mlflow.pyfunc.log_model(
            name=name, python_model=wrapped, signature=signature, input_example=example,
            # pinned requirements: inferring them costs seconds per model (ML-NOTES)
            pip_requirements=_requirements(),
            tags={"label_spec": str(spec), **({"mlflow.note.content": description} if description else {})},
        )


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy")]

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
        from foedus.models.scoring import ScoringModel
        from foedus.scoring import score_batch

        name = type(self.estimator).__name__
        model = ScoringModel(self.estimator, self.features, self.columns, "served pyfunc", name, "", None, None, None,
                             getattr(self, "vintage", None))
        pairs = model_input[list(PAIR_COLUMNS)].astype({"state_a": str, "state_b": str})
        scored = score_batch(pairs, self.label_spec, model=model)
        out = scored[["probability", "percentile", "already_allied", "error"]].astype(
            {"probability": "float64", "percentile": "float64"})
        return out.set_axis(model_input.index)

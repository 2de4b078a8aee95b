"""The MLflow form of a fitted onset model: a pyfunc that returns probabilities.

MLflow's own flavours return class labels from pyfunc (``mlflow.lightgbm``) or need trusted
types (``mlflow.sklearn`` with skops); foedus models are plain scikit-learn estimators, so
one small pyfunc serves them all and always answers with P(onset).
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class OnsetModel(mlflow.pyfunc.PythonModel):
    """Wraps a fitted foedus estimator; ``predict`` returns a ``probability`` column."""

    def __init__(self, estimator, features: list[str], label_spec: str, columns: list[str] | None = None):
        self.estimator = estimator
        self.features = list(features)
        self.label_spec = label_spec
        # every feature column of the build it was trained on: scoring refuses another build
        self.columns = None if columns is None else list(columns)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input.reindex(columns=self.features).astype("float64")
        return pd.DataFrame({"probability": self.estimator.predict_proba(frame)[:, 1]}, index=model_input.index)

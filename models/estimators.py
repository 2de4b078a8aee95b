"""The onset models, all scikit-learn estimators on the feature table (named and described
in ``foedus.models.catalogue``, which also makes them).

Every model takes the feature table (a DataFrame holding the feature columns, including
``year``) and a 0/1 onset vector: ``fit(X, y)``, ``predict_proba(X)``. All train unweighted,
because class weights or resampling distort the probabilities of an event this rare
(about 0.7% of at-risk dyad-years), and the probabilities are what users read.

- ``lightgbm``: gradient-boosted trees; NaN is handled natively (missing is information).
  Early stopping uses the last ``validation_years`` of the training years, never the test
  years; the model is then refit on all training years with that number of rounds.
- ``logit-literature``: standardized logistic regression on the classic predictors of the
  alliance literature (Lai & Reiter 2000; Gibler & Wolford 2006).
- ``logit-threat``: logistic regression on the shared-threat family alone ("threat is enough").
- ``hist-gradient-boosting``: scikit-learn's histogram gradient boosting, a second ensemble.
- ``base-rate``: the training onset rate for everyone (the floor).

Trees do not extrapolate a trend: a clock (``year``, ``era``) puts every test year in the
last training bucket (1946-69 would all look like the 1945 burst). The tree models therefore
leave out ``year`` and ``era``; the literature logit keeps era as dummies, as the literature does.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from foedus.features.errors import InvalidInput
from foedus.features.families import threat
from foedus.features.universe import DYAD
from foedus.models.catalogue import DEFAULT_SEED
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

LABELS = ("at_risk", "onset")
TIME_TREND = ("year", "era")

# Capability ratio, major powers, shared threat, regime difference and joint democracy,
# contiguity and distance, prior alliance (era is added as dummies).
LITERATURE = [
    "log_cinc_ratio", "n_major", "major_minor", "shared_threat", "common_foes_10y", "euds_absdiff",
    "joint_democracy", "contig_land", "log1p_capital_distance", "ever_allied",
]
THREAT = [f.name for f in threat.FAMILY.features]


def feature_columns(table: pd.DataFrame) -> list[str]:
    """Every column of a built table that a model may read (not the pair codes or labels)."""
    return [c for c in table.columns if c not in DYAD and c not in LABELS]


def _probabilities(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return np.column_stack([1 - p, p])


class BaseRate(ClassifierMixin, BaseEstimator):
    """Everyone gets the training onset rate."""

    def fit(self, X, y):
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        return _probabilities(np.full(len(X), self.rate_))


class LightGBMOnset(ClassifierMixin, BaseEstimator):
    """LightGBM with early stopping on the last training years, refit on all of them."""

    def __init__(self, learning_rate=0.05, num_leaves=15, min_child_samples=100, feature_fraction=0.8,
                 bagging_fraction=0.8, lambda_l2=10.0, max_rounds=1000, early_stopping_rounds=50,
                 min_rounds=50, validation_years=10, exclude=TIME_TREND, seed=DEFAULT_SEED, num_threads=2):
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.min_rounds = min_rounds
        self.validation_years = validation_years
        self.exclude = exclude
        self.seed = seed
        self.num_threads = num_threads

    def _params(self) -> dict:
        return {
            "objective": "binary", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction, "bagging_freq": 1, "lambda_l2": self.lambda_l2,
            # reproducible: same data and seed give the same trees, whatever the thread count
            "deterministic": True, "force_row_wise": True, "seed": self.seed, "num_threads": self.num_threads,
            "verbose": -1,
        }

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype=int)
        self.features_ = [c for c in feature_columns(X) if c not in self.exclude]
        years = X["year"].to_numpy()
        start = years.max() - self.validation_years + 1
        inner, valid = years < start, years >= start
        rounds = self.max_rounds
        self.best_iteration_ = None
        if inner.any() and valid.any() and y[valid].any() and y[inner].any():
            booster = lgb.train(
                self._params(), lgb.Dataset(X.loc[inner, self.features_], y[inner]), self.max_rounds,
                valid_sets=[lgb.Dataset(X.loc[valid, self.features_], y[valid])],
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            self.best_iteration_ = booster.best_iteration
            # a validation block holding a treaty burst can stop after a handful of trees
            rounds = max(booster.best_iteration, self.min_rounds)
        self.n_rounds_ = rounds
        self.booster_ = lgb.train(self._params(), lgb.Dataset(X[self.features_], y), rounds)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame):
        return _probabilities(self.booster_.predict(X[self.features_]))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP values in log-odds (``pred_contrib``): one column per feature plus ``bias``;
        each row sums to the model's log-odds for that dyad-year."""
        values = self.booster_.predict(X[self.features_], pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.features_, "bias"], index=X.index)

    @property
    def feature_importances_(self) -> pd.Series:
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.features_).sort_values(ascending=False)


class ColumnsModel(ClassifierMixin, BaseEstimator):
    """A scikit-learn pipeline on the given ``columns`` (default: every feature but ``exclude``)."""

    def __init__(self, columns=None, pipeline=None, exclude=()):
        self.columns = columns
        self.pipeline = pipeline
        self.exclude = exclude

    def fit(self, X: pd.DataFrame, y):
        if self.columns is not None:
            self.features_ = list(self.columns)
        else:
            self.features_ = [c for c in feature_columns(X) if c not in self.exclude]
        missing = [c for c in self.features_ if c not in X]
        if missing:
            raise InvalidInput(f"the feature table lacks {', '.join(missing)}: rebuild it with `foedus build`")
        self.pipeline_ = clone(self.pipeline).fit(X[self.features_], np.asarray(y, dtype=int))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame):
        return self.pipeline_.predict_proba(X[self.features_])


def logit(columns: list[str], era_dummies: bool) -> ColumnsModel:
    # Missing values are imputed with the training median plus an explicit missing-indicator
    # column, both fitted on the training fold only.
    numeric = [c for c in columns if c != "era"]
    steps = [("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
              numeric)]
    if era_dummies:
        steps.append(("era", OneHotEncoder(handle_unknown="ignore"), ["era"]))
    pipeline = Pipeline([
        ("prepare", ColumnTransformer(steps)),
        ("logit", LogisticRegression(C=1.0, max_iter=2000)),
    ])
    return ColumnsModel(columns=[*numeric, *(["era"] if era_dummies else [])], pipeline=pipeline)


def hist_gradient_boosting(seed: int) -> ColumnsModel:
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                           min_samples_leaf=100, l2_regularization=10.0, early_stopping=False,
                                           random_state=seed)
    return ColumnsModel(pipeline=model, exclude=TIME_TREND)

"""Folds are strictly out of time; metrics agree with scikit-learn and with hand counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from foedus.features.labels import labelled
from foedus.infra.errors import InvalidInput
from foedus.models.folds import DEFAULT_FOLDS, Fold, parse_folds, split
from foedus.models.metrics import expected_calibration_error, score, top_k
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


@pytest.fixture(scope="module")
def labels(paths):
    from foedus.jobs import labelled_universe

    return labelled_universe("atop:any:1", paths=paths)


@pytest.mark.parametrize("fold", DEFAULT_FOLDS, ids=lambda f: f.name)
def test_no_test_period_row_is_in_training(labels, fold):
    train, test = split(labels, fold)
    years = labels["year"].to_numpy()
    assert years[train].max() < fold.first and years[test].min() >= fold.first and years[test].max() <= fold.last
    assert not (train & test).any()
    keys = set(zip(labels.loc[train, "ccode1"], labels.loc[train, "ccode2"], labels.loc[train, "year"]))
    assert not keys & set(zip(labels.loc[test, "ccode1"], labels.loc[test, "ccode2"], labels.loc[test, "year"]))
    # only at-risk dyad-years with a known onset are used
    assert labelled(labels)[train | test].all()


def test_a_longer_horizon_keeps_the_onset_window_out_of_the_test_block(labels):
    train, _ = split(labels, Fold(1946, 1969), horizon=5)
    assert labels.loc[train, "year"].max() == 1941  # 1941 + 5 - 1 = 1945 < 1946


def test_the_last_fold_ends_where_the_labels_do(labels):
    _, test = split(labels, Fold(2005, 2024))
    assert labels.loc[test, "year"].max() == 2018  # ATOP ends in 2018: later onsets are unknown


def test_fold_parsing_and_refusals():
    assert parse_folds("1919-1938, 1946-1969") == (Fold(1919, 1938), Fold(1946, 1969))
    for bad in ("1919", "1946-1969,1960-1980", "1990-1980"):
        with pytest.raises(InvalidInput):
            parse_folds(bad)


@pytest.mark.parametrize("decimals", [None, 2, 3])  # None: no ties; 2, 3: many tied forecasts
def test_metrics_agree_with_scikit_learn(decimals):
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.02).astype(int)
    p = np.clip(0.02 + 0.05 * y + rng.normal(0, 0.02, 5000), 1e-4, 0.999)
    if decimals is not None:
        p = np.round(p, decimals) + 1e-4
    years = np.repeat(np.arange(1990, 2000), 500)
    m = score(y, p, years)
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p), rel=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), rel=1e-12)
    assert m["prevalence"] == pytest.approx(y.mean())
    assert m["ap_lift"] == pytest.approx(m["average_precision"] / y.mean())
    # top k: ranked within each year, ties broken by order in the data, as pandas' stable sort does
    frame = pd.DataFrame({"y": y, "p": p, "year": years})
    rank = frame.sort_values(["year", "p"], ascending=[True, False], kind="stable").groupby("year").cumcount()
    for k in (5, 50):
        flagged = frame.loc[rank[rank < k].index]
        assert top_k(y, p, years, k) == (flagged["y"].mean(), flagged["y"].sum() / y.sum())


def test_metrics_of_one_forecast_for_all_and_of_a_slice_without_onsets():
    y = np.array([0, 1, 0, 0, 1, 0])
    m = score(y, np.full(6, 0.2), [1, 1, 1, 2, 2, 2])
    assert m["average_precision"] == pytest.approx(average_precision_score(y, np.full(6, 0.2)))  # the prevalence
    assert m["roc_auc"] == 0.5
    none = score(np.zeros(4, dtype=int), np.full(4, 0.1), [1, 1, 2, 2])
    assert np.isnan(none["average_precision"]) and np.isnan(none["roc_auc"]) and none["brier"] == pytest.approx(0.01)


def test_top_k_by_hand():
    # two years, k = 2: year 1 flags (0.9: onset, 0.8: none); year 2 flags (0.7: none, 0.6: onset)
    y = [1, 0, 0, 1, 0, 1, 0, 0]
    p = [0.9, 0.8, 0.1, 0.2, 0.7, 0.6, 0.5, 0.4]
    years = [1, 1, 1, 1, 2, 2, 2, 2]
    precision, recall = top_k(y, p, years, 2)
    assert precision == 2 / 4 and recall == 2 / 3


def test_calibration_error_is_zero_for_perfect_bins_and_positive_otherwise():
    y = np.array([0] * 90 + [1] * 10)
    assert expected_calibration_error(y, np.full(100, 0.1), bins=1) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.3), bins=1) == pytest.approx(0.2)


def test_onset_percentiles_rank_each_onset_within_its_year():
    from foedus.models.metrics import onset_percentiles

    # 1900: the onset is ranked first of four; 1901: second of two; 1902: tied with the other
    # dyad-year, so both share rank 1.5 of 2
    y = [1, 0, 0, 0, 1, 0, 1, 0]
    p = [0.9, 0.1, 0.2, 0.3, 0.05, 0.5, 0.2, 0.2]
    years = [1900, 1900, 1900, 1900, 1901, 1901, 1902, 1902]
    assert onset_percentiles(y, p, years).tolist() == [100.0, 50.0, 75.0]
    m = score(y, p, years)
    assert m["median_onset_percentile"] == 75.0
    assert m["onsets_in_top_decile"] == pytest.approx(1 / 3) and m["onsets_in_top_percent"] == pytest.approx(1 / 3)

"""Every figure is drawn from a real two-fold backtest and saves to a PNG."""

from __future__ import annotations

import pytest
from foedus.infra.errors import InvalidInput
from foedus.models.backtest import fit_fold, run_backtest
from foedus.models.explain import readable
from foedus.models.folds import Fold, split
from foedus.models.plots import calibration, feature_importance, onset_rate_by_era, pr_curves, shap_summary
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score

FOLDS = (Fold(1976, 1985), Fold(1986, 1991))


@pytest.fixture(scope="module")
def table(small_table):
    return small_table


@pytest.fixture(scope="module")
def backtest(table):
    return run_backtest(table, "lightgbm", FOLDS, params={"n_rounds": 60})


@pytest.fixture(scope="module")
def results(backtest):
    return backtest.folds


@pytest.fixture(scope="module")
def predictions(backtest):
    return backtest.predictions


def drawn(fig, tmp_path, name) -> None:
    """A figure with something on its axes that saves to a non-empty PNG."""
    assert isinstance(fig, Figure) and fig.axes
    ax = fig.axes[0]
    assert ax.lines or ax.patches or ax.collections
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 0


def test_pr_curves_show_each_fold_and_the_pool_with_their_ap(predictions, tmp_path):
    fig = pr_curves(predictions)
    drawn(fig, tmp_path, "pr")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # below the axes, on the figure
    for fold in FOLDS:
        part = predictions[predictions["fold"] == fold.name]
        ap = average_precision_score(part["label"], part["probability"])
        assert any(text.startswith(f"{fold.name}: AP {ap:.3f}") for text in legend)
    assert any(text.startswith("pooled: AP") for text in legend)


def test_calibration_draws_equal_count_bins_per_fold_and_pooled(predictions, tmp_path):
    fig = calibration(predictions, bins=10)
    drawn(fig, tmp_path, "calibration")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    pooled_line = next(line for line in ax.lines if line.get_label() == "pooled")
    assert len(pooled_line.get_xdata()) == 10


def test_feature_importance_uses_readable_labels(results, tmp_path):
    model = results[-1].model
    fig = feature_importance(model, top=10)
    drawn(fig, tmp_path, "importance")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(labels) == 10 and labels[-1] == readable(model.feature_importances_.index[0])  # largest on top


def test_feature_importance_refuses_a_model_without_gain(table):
    with pytest.raises(InvalidInput):
        feature_importance(fit_fold(table, "base-rate", FOLDS[-1]).model)


def test_shap_summary_ranks_features_by_mean_absolute_contribution(table, results, tmp_path):
    result = results[-1]
    X_test = table.loc[split(table, result.fold)[1]].iloc[:2000]
    contributions = result.model.contributions(X_test)
    fig = shap_summary(contributions, top=12)
    drawn(fig, tmp_path, "shap")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    strongest = contributions.drop(columns="bias").abs().mean().idxmax()
    assert len(labels) == 12 and labels[-1] == readable(strongest) and "bias" not in labels


def test_onset_rate_by_era_compares_all_pairs_with_shared_threat_pairs(table, tmp_path):
    fig = onset_rate_by_era(table)
    drawn(fig, tmp_path, "eras")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1946-1989", "1990-2024", "all"]
    assert len(ax.patches) == 2 * 3  # two bars per era and overall

"""Threat without alliance: the lists, their reasons and their summaries.

The reasons must be what LightGBM's own SHAP values say for that dyad-year, and the counts
must be the counts a reader gets from the forecasts with plain pandas. The real fold trains
on 1946-1985 and forecasts 1986-1991, so that the test block spans the end of the Cold War
(two eras).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from foedus.features.years import era_of
from foedus.infra.errors import InvalidInput
from foedus.models.backtest import fit_fold, pooled
from foedus.models.explain import (
    formation_by_era,
    markdown_report,
    onsets_without_threat,
    pair_level,
    readable,
    reasons_summary,
    threat_without_alliance,
    top_pushes,
)
from foedus.models.folds import Fold, split

FOLD = Fold(1986, 1991)


@pytest.fixture(scope="module")
def table(small_table):
    return small_table


@pytest.fixture(scope="module")
def result(table, names):
    return fit_fold(table, "lightgbm", FOLD, names=names, n_rounds=60)


@pytest.fixture(scope="module")
def X_test(table, result):
    return table.loc[split(table, result.fold)[1]]


@pytest.fixture(scope="module")
def names(registry):
    return {code: state.name for code, state in registry.states.items()}


@pytest.fixture(scope="module")
def twa(result, X_test, names):
    return threat_without_alliance(result.predictions, X_test, result.model, names)


@pytest.fixture(scope="module")
def owt(result, X_test, names):
    return onsets_without_threat(result.predictions, X_test, result.model, names)


# top_pushes on a hand-made frame -------------------------------------------------------------

FEATURES = ["euds_absdiff", "log1p_capital_distance", "log_cinc_ratio", "allies_max"]


def hand_made():
    contributions = pd.DataFrame(
        [[-0.90, -0.40, 0.30, -0.10, -5.0],   # down: regime, distance, allies; up: capability only
         [-0.20, -0.20, 0.00, 0.50, 9.0],     # a tie (regime listed first wins); a zero pushes nowhere
         [0.10, 0.20, 0.30, 0.40, -9.0]],     # nothing pushes down
        columns=[*FEATURES, "bias"], index=[10, 11, 12])
    values = pd.DataFrame([[0.62, 8.1234, 1.5, 22.0], [np.nan, 5.0, 0.0, 3.0], [0.1, 7.0, 2.0, 0.0]],
                          columns=FEATURES, index=[10, 11, 12])
    return contributions, values


def test_top_pushes_down_lists_the_most_negative_first_and_ignores_the_bias():
    out = top_pushes(*hand_made(), n=3, direction="down")
    assert list(out.index) == [10, 11, 12]
    assert list(out.loc[10, ["reason_feature_1", "reason_feature_2", "reason_feature_3"]]) == \
        ["euds_absdiff", "log1p_capital_distance", "allies_max"]
    assert list(out.loc[10, ["reason_shap_1", "reason_shap_2", "reason_shap_3"]]) == [-0.90, -0.40, -0.10]
    assert out.loc[10, "reason_1"] == "regime difference (extended UDS) 0.62 (-0.90)"
    assert out.loc[10, "reason_2"] == "distance between capitals (log km) 8.12 (-0.40)"
    assert out.loc[10, "reason_value_3"] == 22.0
    # the tie goes to the feature listed first; the zero and the positive push are no reasons
    assert list(out.loc[11, ["reason_feature_1", "reason_feature_2"]]) == ["euds_absdiff", "log1p_capital_distance"]
    assert out.loc[11, "reason_1"] == "regime difference (extended UDS) missing (-0.20)"
    assert pd.isna(out.loc[11, "reason_feature_3"]) and pd.isna(out.loc[11, "reason_3"])
    assert out.loc[12, ["reason_1", "reason_2", "reason_3"]].isna().all()
    assert "bias" not in set(out.filter(like="reason_feature").stack())


def test_top_pushes_up_lists_the_most_positive_first():
    out = top_pushes(*hand_made(), n=2, direction="up")
    assert [c for c in out.columns if c.startswith("reason_feature")] == ["reason_feature_1", "reason_feature_2"]
    assert out.loc[10, "reason_1"] == "capability gap (log CINC ratio) 1.5 (+0.30)" and pd.isna(out.loc[10, "reason_2"])
    assert out.loc[11, "reason_1"] == "allies of the better-allied state 3 (+0.50)"
    assert list(out.loc[12, ["reason_feature_1", "reason_feature_2"]]) == ["allies_max", "log_cinc_ratio"]


def test_top_pushes_refuses_a_bad_direction_and_misaligned_values():
    contributions, values = hand_made()
    with pytest.raises(InvalidInput):
        top_pushes(contributions, values, direction="sideways")
    with pytest.raises(InvalidInput):
        top_pushes(contributions, values.iloc[:2])
    with pytest.raises(InvalidInput):
        top_pushes(contributions, values.drop(columns="allies_max"))


def test_reasons_are_worded_by_the_feature_declarations():
    assert readable("euds_absdiff") == "regime difference (extended UDS)"
    assert readable("covered_cow_nmc") == "cow_nmc covers t-1"
    assert readable("covered_cow_alliance") == "cow_alliance covers t-1"  # a flag of COW-label builds
    assert readable("a_new_feature") == "a new feature"  # undeclared: the name, spelled out


def test_year_wide_features_are_never_a_pairs_reason():
    contributions = pd.DataFrame([[0.1, -0.2, 0.3, -0.4, 0.5, 1.0]],
                                 columns=["euds_absdiff", "n_states", "covered_cow_nmc", "year", "era", "bias"])
    assert list(pair_level(contributions).columns) == ["euds_absdiff", "bias"]


# the lists on a real fold --------------------------------------------------------------------

def test_threat_without_alliance_lists_every_shared_threat_pair_that_did_not_ally(result, twa):
    p = result.predictions
    mask = (p["shared_threat"] == 1) & (p["label"] == 0)
    assert len(twa) == mask.sum() > 100
    assert set(twa.index) == set(p.index[mask])
    rows = p.loc[twa.index]
    assert (rows["shared_threat"] == 1).all() and (rows["label"] == 0).all()
    assert np.array_equal(rows["probability"].to_numpy(), twa["probability"].to_numpy())
    assert twa["probability"].is_monotonic_increasing  # least likely first
    assert (twa.loc[twa["ccode1"] == 2, "name1"] == "United States of America").all()
    assert (twa[["reason_shap_1", "reason_shap_2", "reason_shap_3"]] < 0).all().all()


def check_reasons_against_shap(explained, result, X_test, direction, k=12):
    """For a sample of rows: the reasons are the row's 3 largest pushes in ``direction`` by the
    model's own contributions, and the contributions add up to the forecast's log-odds."""
    sample = explained.sample(min(k, len(explained)), random_state=1)
    shap = result.model.contributions(X_test.iloc[sample.index], reference=X_test)
    p = result.predictions.loc[sample.index, "probability"].to_numpy()
    assert np.allclose(np.log(p / (1 - p)), shap.sum(axis=1).to_numpy(), rtol=0, atol=1e-6)
    # reasons are pair-level: year-wide features (system size, coverage flags) are left out
    pair = pair_level(shap).drop(columns="bias")
    assert "n_states" not in pair and not any(c.startswith("covered_") for c in pair)
    for (i, row), (_, contrib) in zip(sample.iterrows(), pair.iterrows()):
        pushes = contrib[contrib < 0] if direction == "down" else -contrib[contrib > 0]
        expected = pushes.sort_values(kind="stable").index[:3]
        assert list(row[["reason_feature_1", "reason_feature_2", "reason_feature_3"]]) == list(expected)
        for rank, feature in enumerate(expected, start=1):
            assert row[f"reason_shap_{rank}"] == pytest.approx(contrib[feature])
            value = X_test.iloc[i][feature]
            assert (np.isnan(value) and np.isnan(row[f"reason_value_{rank}"])) or row[f"reason_value_{rank}"] == value
            assert row[f"reason_{rank}"].startswith(readable(feature) + " ")


def test_shared_threat_reasons_are_the_three_most_negative_shap_values(twa, result, X_test):
    check_reasons_against_shap(twa, result, X_test, "down")


def test_onsets_without_threat_are_onsets_of_pairs_with_no_shared_threat(owt, result, X_test):
    p = result.predictions
    mask = (p["shared_threat"] == 0) & (p["label"] == 1)
    assert len(owt) == mask.sum() > 10
    rows = p.loc[owt.index]
    assert (rows["label"] == 1).all() and (rows["shared_threat"] == 0).all()
    assert owt["probability"].is_monotonic_decreasing  # most likely first
    assert (owt[["reason_shap_1"]] > 0).all().all()
    check_reasons_against_shap(owt, result, X_test, "up")


def test_forecasts_and_feature_rows_must_be_aligned(result, X_test):
    with pytest.raises(InvalidInput):
        threat_without_alliance(result.predictions, X_test.iloc[::-1], result.model)
    with pytest.raises(InvalidInput):
        threat_without_alliance(result.predictions, X_test.iloc[1:], result.model)


def test_a_model_without_contributions_gives_the_list_without_reasons(table, X_test):
    base = fit_fold(table, "base-rate", FOLD)
    listed = threat_without_alliance(base.predictions, X_test, base.model)
    assert list(listed.columns) == ["ccode1", "ccode2", "year", "probability"]
    assert len(listed) == ((base.predictions["shared_threat"] == 1) & (base.predictions["label"] == 0)).sum()
    assert reasons_summary(listed).empty


# summaries ------------------------------------------------------------------------------------

def test_formation_by_era_matches_a_direct_count(result):
    p = result.predictions
    out = formation_by_era(p)
    assert list(out.index) == ["1946-1989", "1990-2024", "all"]
    eras = era_of(p["year"]).astype(str)
    for era in ("1946-1989", "1990-2024", "all"):
        g = p if era == "all" else p[eras == era]
        threat, none = g[g["shared_threat"] == 1], g[g["shared_threat"] == 0]
        assert out.loc[era, "dyad_years"] == len(g)
        assert out.loc[era, "shared_threat"] == len(threat) and out.loc[era, "no_threat"] == len(none)
        assert out.loc[era, "threat_onsets"] == threat["label"].sum()
        assert out.loc[era, "threat_formation_rate"] == pytest.approx(threat["label"].mean())
        assert out.loc[era, "no_threat_formation_rate"] == pytest.approx(none["label"].mean())
        assert out.loc[era, "threat_unknown"] == g["shared_threat"].isna().sum()
    # the onsets of shared-threat pairs plus their non-formations are all shared-threat dyad-years
    no_alliance = ((p["shared_threat"] == 1) & (p["label"] == 0)).sum()
    assert out.loc["all", "shared_threat"] == out.loc["all", "threat_onsets"] + no_alliance


def test_reasons_summary_counts_what_the_reason_columns_hold(twa):
    summary = reasons_summary(twa)
    stacked = pd.concat([twa[f"reason_feature_{k}"] for k in (1, 2, 3)]).dropna()
    counts = stacked.value_counts()
    assert summary["count"].sum() == len(stacked)
    for feature in summary.index[:10]:
        assert summary.loc[feature, "count"] == counts[feature]
        assert summary.loc[feature, "share"] == pytest.approx(counts[feature] / len(twa))
        assert summary.loc[feature, "first"] == (twa["reason_feature_1"] == feature).sum()
        shaps = pd.concat([twa.loc[twa[f"reason_feature_{k}"] == feature, f"reason_shap_{k}"] for k in (1, 2, 3)])
        assert summary.loc[feature, "mean_shap"] == pytest.approx(shaps.mean())
        assert summary.loc[feature, "reason"] == readable(feature)
    assert summary["count"].is_monotonic_decreasing


def test_a_fold_result_carries_its_lists_with_the_fold_named(result, names):
    threat, onsets = result.threat_without_alliance, result.onsets_without_threat
    assert (threat["fold"] == FOLD.name).all() and list(threat.columns[:1]) == ["fold"]
    assert len(threat) == ((result.predictions["shared_threat"] == 1) & (result.predictions["label"] == 0)).sum()
    assert len(onsets) == ((result.predictions["shared_threat"] == 0) & (result.predictions["label"] == 1)).sum()
    assert (threat.loc[threat["ccode1"] == 2, "name1"] == "United States of America").all()


def test_the_backtest_report_has_its_sections_and_cases(result):
    threat, onsets = result.threat_without_alliance, result.onsets_without_threat
    predictions, _ = pooled([result])
    report = markdown_report(predictions, threat, onsets, top=20)
    for heading in ("# Threat without alliance", "## Alliance formation among shared-threat dyad-years, by era",
                    "## What held shared-threat pairs back",
                    "## The 20 least likely shared-threat pairs that did not ally",
                    "## The 20 most likely onsets without a shared threat"):
        assert heading in report
    section = report.split("## The 20 least likely")[1].split("## ")[0]
    table_lines = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + 20
    assert threat.iloc[0]["reason_1"] in section  # the least likely case comes first
    assert "1990-2024" in report and "| all |" in report

"""Backtests and final models on a table of some years only (`--first/--last`): the table's rows
are the full table's rows of those years, every fold must lie inside them, the runs say which
years they used, and a final model is judged by a backtest on the same years."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.pipelines.cli_helpers import assert_user_error, foedus_here
from tests.pipelines.store_helpers import FOLDS, SPAN, SPEC, YEARS, built_data, client_for, env_for, runs


@pytest.fixture(scope="module")
def data(tmp_path_factory, paths, built):
    return built_data(tmp_path_factory.mktemp("span"), paths, built)


def test_a_span_table_holds_the_full_tables_rows_of_its_years(built):
    """Features of year t use what was known at the end of t-1 whatever year the table starts:
    on the real data, the 1970-1999 table is the full table's 1970-1999 rows, value for value."""
    from foedus.features.build import read_built_table

    (full, full_provenance), (span, provenance) = built(SPEC), built(SPEC, years=SPAN)
    assert provenance["years"] == list(SPAN) and provenance["build_key"] != full_provenance["build_key"]
    part = read_built_table(span)
    whole = read_built_table(full, filters=[("year", ">=", SPAN[0]), ("year", "<=", SPAN[1])])
    assert part["year"].min() == SPAN[0] and part["year"].max() == SPAN[1] and len(part) > 300_000
    pd.testing.assert_frame_equal(part.reset_index(drop=True), whole.reset_index(drop=True))


@pytest.mark.parametrize("folds, years", [("1969-1975", YEARS), ("1995-2004", YEARS),
                                          ("1990-1994", ("--first", "1990"))])
def test_a_fold_outside_the_years_is_one_line_before_any_work(data, tmp_path, folds, years):
    env = env_for(data, tmp_path / "store")
    result = foedus_here("backtest", "-l", SPEC, "--models", "base-rate", "--folds", folds, *years, env_extra=env)
    assert_user_error(result, f"fold {folds.split(',')[0]} is not inside the table's years", "--first/--last")
    assert not runs(client_for(tmp_path / "store"))


def test_runs_say_their_years_and_a_final_model_is_judged_on_the_same_years(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    backtested = foedus_here("backtest", "-l", SPEC, "--models", "base-rate", "--folds", FOLDS, *YEARS, env_extra=env)
    assert backtested.returncode == 0, backtested.stderr
    client = client_for(store)
    (parent,) = [r for r in runs(client) if r.data.tags.get("kind") == "backtest"]
    assert parent.data.tags["years"] == "1970-1999"
    assert all(r.data.tags["years"] == "1970-1999" for r in runs(client))  # the fold runs too
    listed = foedus_here("compare", "-l", SPEC, env_extra=env)
    assert listed.returncode == 0 and "1970-1999" in listed.stdout, listed.stdout

    # the whole table's final model has no backtest on the whole table to be judged by
    whole = foedus_here("train", "-l", SPEC, "--model", "base-rate", env_extra=env)
    assert_user_error(whole, "no finished backtest of base-rate for atop:defense:1:", "foedus backtest -l "
                      "atop:defense:1 --models base-rate")
    trained = foedus_here("train", "-l", SPEC, "--model", "base-rate", *YEARS, env_extra=env)
    assert trained.returncode == 0, trained.stderr
    assert "trained base-rate on every labelled year of 1970-1999" in trained.stdout
    (train,) = [r for r in runs(client) if r.data.tags.get("kind") == "train"]
    assert train.data.tags["years"] == "1970-1999" and train.data.tags["backtest_run_id"] == parent.info.run_id
    assert (int(train.data.params["train_first_year"]), int(train.data.params["train_last_year"])) == SPAN

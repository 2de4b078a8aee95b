"""Sweeps of LightGBM's hyperparameters (foedus.models.sweep) on the real defense table: a sweep
never reads its test block or any later year, and the executor does not change the study."""

from __future__ import annotations

import hashlib

import numpy as np
import optuna
import pytest
from foedus.infra.errors import FoedusError, InvalidInput
from foedus.models.backtest import TableRef, load_table
from foedus.models.estimators import feature_columns
from foedus.models.executor import executor
from foedus.models.folds import Fold
from foedus.models.sweep import Cut, best_params, model_params, open_study, run_study, storage_url, study_name

SPEC = "atop:defense:1"
TEST_BLOCK = Fold(1919, 1938)  # the sweep of this block may read 1816-1918 only
TRIALS = 2


@pytest.fixture(scope="module")
def defense(paths, built):
    """The built defense table of 1816 to the test block's end (the full table's rows of those
    years, a tenth of them), as tasks name it: a sweep of the block reads its years before it."""
    return TableRef.of(*built(SPEC, years=(1816, TEST_BLOCK.last)))


def scrambled_from(ref: TableRef, first_year: int, folder, seed: int = 1) -> TableRef:
    """A copy of the table whose rows of ``first_year`` and later have every feature and the onset
    shuffled among themselves and the onsets flipped: whatever reads them sees other data."""
    table = load_table(ref).copy()
    later = (table["year"] >= first_year).to_numpy()
    rng = np.random.default_rng(seed)
    for column in [*feature_columns(table), "onset"]:
        values = table.loc[later, column].to_numpy()
        table.loc[later, column] = values[rng.permutation(len(values))]
    table.loc[later, "onset"] = ~table.loc[later, "onset"]
    path = folder / "scrambled.parquet"
    table.to_parquet(path)
    return TableRef(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def sweep_of(ref: TableRef, jobs: int = 1, batch: int = 2, trials: int = TRIALS):
    """``trials`` trials of a fresh in-memory study of the years before TEST_BLOCK."""
    cut = Cut.of(TEST_BLOCK)
    study = open_study("test", None)
    blocks = cut.blocks(load_table(ref))
    with executor(jobs=jobs) as ex:
        return study, list(run_study(study, ref, cut, blocks, trials, ex, batch=batch))


@pytest.fixture(scope="module")
def serial(defense):
    return sweep_of(defense)


def test_a_sweep_reads_only_the_years_before_its_test_block(defense, serial, tmp_path):
    study, trials = serial
    assert [b.name for b in Cut.of(TEST_BLOCK).blocks(load_table(defense))] == ["1889-1898", "1899-1908",
                                                                                "1909-1918"]
    for trial in trials:
        assert len(trial.blocks) == 3 and trial.onsets > 0
        for forecast in trial.blocks:  # fitted on the years before the block, forecasts the block
            assert forecast.fit_years[1] < forecast.block.first
            assert forecast.block.first <= forecast.scored_years[0] <= forecast.scored_years[1] <= forecast.block.last
            assert forecast.scored_years[1] < TEST_BLOCK.first
    # the proof: the test block and every later year scrambled, the same study to the last digit
    other, other_trials = sweep_of(scrambled_from(defense, TEST_BLOCK.first, tmp_path))
    assert [t.value for t in trials] == [t.value for t in other_trials]
    assert [t.params for t in trials] == [t.params for t in other_trials]
    for one, two in zip(trials, other_trials):
        for a, b in zip(one.blocks, two.blocks):
            np.testing.assert_array_equal(a.forecast, b.forecast)
    # and scrambling the sweep's own years does change it (the first trial, the same parameters):
    # the comparison can fail
    _, (seen,) = sweep_of(scrambled_from(defense, 1890, tmp_path, seed=2), trials=1)
    assert seen.params == trials[0].params and seen.value != trials[0].value


def test_serial_and_two_workers_give_the_same_study(defense, serial):
    _, spread = sweep_of(defense, jobs=2)
    assert [(t.number, t.params, t.value) for t in serial[1]] == [(t.number, t.params, t.value) for t in spread]


def test_a_cut_without_room_for_validation_blocks_is_refused(defense):
    table = load_table(defense)
    with pytest.raises(InvalidInput, match="no labelled year before 1816"):
        Cut(1816).blocks(table)
    with pytest.raises(InvalidInput, match="leave no 10-year validation block"):
        Cut(1826).blocks(table)


def test_best_params_name_a_missing_study_and_hide_passwords(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(FoedusError, match="no sweep study 'nothing'.*run `foedus sweep`"):
        best_params("nothing", storage)
    study = open_study("empty", storage)
    with pytest.raises(FoedusError, match="has no finished trial"):
        best_params("empty", storage)
    study.add_trial(optuna.trial.create_trial(
        params={"num_leaves": 9, "climate_level": False},
        distributions={"num_leaves": optuna.distributions.IntDistribution(4, 63, log=True),
                       "climate_level": optuna.distributions.CategoricalDistribution([True, False])},
        value=0.25))
    assert best_params("empty", storage) == ({"num_leaves": 9, "climate": None}, 0.25, 0)
    assert model_params({"climate_level": True})["climate"] is not None
    assert storage_url("postgresql+psycopg2://team:s3cret@db:5432/optuna") == "postgresql+psycopg2://team:***@db:5432/optuna"
    assert "before 1919" in study_name(SPEC, Cut.of(TEST_BLOCK), "abcdef") and "all labelled years" in study_name(
        SPEC, Cut(None), "abcdef")


def test_an_unreachable_storage_is_one_line():
    with pytest.raises(FoedusError, match="cannot be opened.*FOEDUS_SWEEP_STORAGE") as caught:
        open_study("x", "postgresql+psycopg2://nobody:pw@127.0.0.1:1/optuna")
    assert "pw" not in str(caught.value) and "\n" not in str(caught.value)

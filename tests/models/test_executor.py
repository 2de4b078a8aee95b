"""The executor: which one a job gets, tasks' results in order from worker processes, a task's
error raised as itself, tables read once and verified; and a real backtest computed serially
and on two worker processes giving the same numbers to the last digit."""

from __future__ import annotations

import hashlib
import math
import os

import pandas as pd
import pytest
from foedus.infra.errors import DataError, FoedusError, InvalidInput
from foedus.models import backtest as backtest_module
from foedus.models.backtest import TableRef, load_table
from foedus.models.executor import SCHEDULER_VARIABLE, choose, executor, identity
from mlflow.tracking import MlflowClient

from tests.pipelines.cli_helpers import tracking_store

SPEC = "atop:defense:1"
# The numbers that could depend on threads (a worker has one, this process the cores): the
# logits' (BLAS; their forecasts moved by up to 0.013 before fits were given one BLAS thread)
# and LightGBM's (its own threads). Early folds train on few years; LightGBM gets one, with given
# hyperparameters: its tuning is more of the same fits (about a minute a fold), and
# test_reproducibility checks that a tuned LightGBM backtest repeats to the last digit.
MODELS, FOLDS = "base-rate,logit-threat", "1919-1925,1926-1932"
TREES, TREE_FOLDS, TREE_PARAMS = "lightgbm", "1919-1925", {"num_leaves": 15, "n_rounds": 100}
# the table's years (backtest --first/--last): the folds' training years and the folds, no more
# (a tenth of the full table's rows, which every worker would read)
FIRST, LAST = 1816, 1932


def test_which_executor_a_job_gets(monkeypatch):
    monkeypatch.delenv(SCHEDULER_VARIABLE, raising=False)
    assert choose(1) == ("serial", 1, None)
    assert choose(3) == ("local", 3, None)
    assert choose(None)[0] == ("serial" if (os.cpu_count() or 1) == 1 else "local")
    assert choose(scheduler="tcp://10.0.0.5:8786") == ("remote", 0, "tcp://10.0.0.5:8786")
    # the environment names the team's cluster; an explicit --jobs still runs here
    monkeypatch.setenv(SCHEDULER_VARIABLE, "tcp://10.0.0.7:8786")
    assert choose(None) == ("remote", 0, "tcp://10.0.0.7:8786")
    assert choose(1) == ("serial", 1, None)
    with pytest.raises(InvalidInput, match="not both"):
        choose(2, "tcp://10.0.0.5:8786")
    with pytest.raises(InvalidInput, match="at least 1"):
        choose(0)


def square_or_fail(x: int) -> tuple[int, dict]:
    """A task: x squared and where it ran; 13 is refused as a user's error would be."""
    if x == 13:
        raise InvalidInput("13 is not a year foedus knows")
    return x * x, identity()


def test_serial_runs_in_this_process_in_order():
    with executor(jobs=1) as ex:
        assert (ex.kind, ex.workers) == ("serial", 1)
        results = ex.map(square_or_fail, range(5))
    assert [r for r, _ in results] == [0, 1, 4, 9, 16]
    assert {where["worker_pid"] for _, where in results} == {str(os.getpid())}


def test_two_local_workers_return_results_in_order_and_a_tasks_error_as_itself():
    with executor(jobs=2) as ex:
        assert ex.kind == "local"
        tasks = range(20, 60)
        results = ex.map(square_or_fail, tasks, priorities=list(tasks))  # the last ones start first
        assert ex.workers == 2 and ex.address.startswith("tcp://127.0.0.1:")
        assert [r for r, _ in results] == [x * x for x in tasks]
        pids = {where["worker_pid"] for _, where in results}
        assert str(os.getpid()) not in pids and len(pids) <= 2
        assert all(where["executed_by"].startswith("dask worker tcp://127.0.0.1:") for _, where in results)
        with pytest.raises(InvalidInput, match="13 is not a year foedus knows"):
            ex.map(square_or_fail, range(20))


def test_a_local_cluster_has_no_more_workers_than_tasks_and_a_lone_task_runs_here():
    with executor(jobs=4) as ex:
        ((_, where),) = ex.map(square_or_fail, [1])
        assert where["worker_pid"] == str(os.getpid())
        ex.map(square_or_fail, [2, 3])
        assert ex.workers == 2


def test_light_tasks_run_here_unless_the_local_cluster_is_already_up():
    with executor(jobs=2) as ex:
        assert ex.runs_here(3, light=True) and ex.runs_here(1) and not ex.runs_here(2)  # as it then does
        light = dict(ex.imap_unordered(square_or_fail, [1, 2, 3], light=True))
        assert {where["worker_pid"] for _, where in light.values()} == {str(os.getpid())} and ex.workers == 2
        ex.map(square_or_fail, [4, 5])  # starts the cluster
        assert not ex.runs_here(2, light=True)
        light = dict(ex.imap_unordered(square_or_fail, [6, 7], light=True))
        assert str(os.getpid()) not in {where["worker_pid"] for _, where in light.values()}
    with executor(jobs=1) as ex:
        assert ex.runs_here(5)


def test_a_backtest_asks_for_light_tasks_only_when_every_model_and_final_fit_is_light():
    from foedus.models.backtest import BacktestPlan, FinalTask
    from foedus.models.backtest import run_backtests as fan_out
    from foedus.models.folds import Fold

    class Recorder:  # an executor that notes what it is asked and runs nothing
        def runs_here(self, n_tasks, light=False):
            return False

        def imap_unordered(self, fn, tasks, priorities=None, light=False):
            self.light = light
            yield from ()

    table, folds = TableRef("/t.parquet", "0"), (Fold(1990, 1994),)
    asked = {}
    for case, models, finals in [("light", ["base-rate", "logit-threat", "logit-literature"], []),
                                 ("trees", ["base-rate", "hist-gradient-boosting"], []),
                                 ("light final", ["base-rate"], [FinalTask(table, "logit-threat")]),
                                 ("tree final", ["base-rate"], [FinalTask(table, "lightgbm")])]:
        recorder = Recorder()
        list(fan_out([BacktestPlan(table, m, folds) for m in models], recorder, finals))
        asked[case] = recorder.light
    assert asked == {"light": True, "trees": False, "light final": True, "tree final": False}


def test_a_table_is_read_once_per_process_and_only_with_its_checksum(tmp_path, monkeypatch):
    path = tmp_path / "table.parquet"
    pd.DataFrame({"ccode1": [2, 2], "ccode2": [20, 200], "year": [1919, 1919]}).to_parquet(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    ref = TableRef(str(path), digest)
    first = load_table(ref)
    assert list(first["ccode2"]) == [20, 200] and load_table(ref) is first  # read once
    with pytest.raises(DataError, match="not the table this backtest was planned with"):
        load_table(TableRef(str(path), "0" * 64))
    with pytest.raises(DataError, match="the same path"):
        load_table(TableRef(str(tmp_path / "elsewhere.parquet"), digest))
    # a bounded memory: the oldest table is forgotten first
    for i in range(backtest_module.KEPT_TABLES):
        backtest_module.remember(TableRef(f"/other/{i}.parquet", str(i)), first)
    assert ref not in backtest_module._tables
    # and before the next one is read, so that the kept tables and the one read never coexist
    held = []
    monkeypatch.setattr(backtest_module, "read_built_table",
                        lambda data: held.append(len(backtest_module._tables)) or pd.read_parquet(data))
    assert load_table(ref) is not first and held == [backtest_module.KEPT_TABLES - 1]
    assert len(backtest_module._tables) == backtest_module.KEPT_TABLES and ref in backtest_module._tables
    # a process that works on one table at a time (the foedus process logging) keeps only it
    assert load_table(ref, keep=1) is not None and list(backtest_module._tables) == [ref]
    second = tmp_path / "second.parquet"
    pd.DataFrame({"ccode1": [2], "ccode2": [365], "year": [1919]}).to_parquet(second)
    other = TableRef(str(second), hashlib.sha256(second.read_bytes()).hexdigest())
    held.clear()
    assert list(load_table(other, keep=1)["ccode2"]) == [365] and held == [0]  # ref forgotten before the read
    assert list(backtest_module._tables) == [other]


@pytest.fixture(scope="module")
def defense(paths, built):
    """The built defense table of FIRST-LAST in the session's data folder (reused by every later build)."""
    built(SPEC, years=(FIRST, LAST))
    return paths


def backtest_into(store, paths, jobs):
    """Both requests' backtests fanned out through one executor, logged to ``store``: the
    results and, per model, the parent run and the fold runs by fold."""
    from foedus.jobs import backtest_request, run_backtests

    requests = [backtest_request(SPEC, MODELS, FOLDS, log_models=False, first=FIRST, last=LAST),
                backtest_request(SPEC, TREES, TREE_FOLDS, log_models=False, params=TREE_PARAMS, first=FIRST,
                                 last=LAST)]
    with tracking_store(store) as uri:
        results = [r for request in run_backtests(requests, paths=paths, jobs=jobs) for r in request]
        client = MlflowClient(tracking_uri=uri)
        runs = {}
        for result in results:
            parent = client.get_run(result.run_id)
            children = client.search_runs([parent.info.experiment_id],
                                          f"tags.mlflow.parentRunId = '{result.run_id}'")
            runs[result.model] = (parent, {c.data.tags["fold"]: c for c in children})
    return results, runs


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_serial_and_two_worker_backtests_give_the_same_numbers_to_the_last_digit(defense, tmp_path):
    serial, serial_runs = backtest_into(tmp_path / "serial", defense, jobs=1)
    spread, spread_runs = backtest_into(tmp_path / "two", defense, jobs=2)

    assert [r.model for r in serial] == [r.model for r in spread] == [*MODELS.split(","), TREES]
    for one, two in zip(serial, spread):
        # the forecasts themselves, every digit, and what they are pooled into
        for a, b in zip(one.folds, two.folds):
            pd.testing.assert_frame_equal(a.predictions, b.predictions, check_exact=True)
            assert a.params == b.params
            if one.model == TREES:
                assert a.params == TREE_PARAMS and a.tuning is None  # given, not tuned
        pd.testing.assert_frame_equal(one.predictions, two.predictions, check_exact=True)
        if one.shap_sample is not None:
            pd.testing.assert_frame_equal(one.shap_sample, two.shap_sample, check_exact=True)
        pd.testing.assert_frame_equal(one.threat_without_alliance, two.threat_without_alliance, check_exact=True)
    assert any(r.shap_sample is not None for r in serial)  # LightGBM's explanations were compared too

    # every logged metric of every parent and fold run
    for model, (parent, folds) in serial_runs.items():
        other_parent, other_folds = spread_runs[model]
        metrics, other = parent.data.metrics, other_parent.data.metrics
        assert metrics.keys() == other.keys() and len(metrics) >= 5
        assert all(same(metrics[k], other[k]) for k in metrics), model
        assert folds.keys() == other_folds.keys() == set((TREE_FOLDS if model == TREES else FOLDS).split(","))
        for fold, run in folds.items():
            a, b = run.data.metrics, other_folds[fold].data.metrics
            assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a), (model, fold)

    # and where each fold ran: here, or in two worker processes that are not this one
    here = str(os.getpid())
    assert {run.data.tags["worker_pid"] for _, folds in serial_runs.values() for run in folds.values()} == {here}
    pids = {run.data.tags["worker_pid"] for _, folds in spread_runs.values() for run in folds.values()}
    assert len(pids) == 2 and here not in pids
    assert all(run.data.tags["executed_by"].startswith("dask worker tcp://127.0.0.1:")
               for _, folds in spread_runs.values() for run in folds.values())


def test_given_hyperparameters_are_one_model_s():
    from foedus.jobs import backtest_request

    assert backtest_request(SPEC, "lightgbm", "1990-1994", params={"n_rounds": 50}).params == {"n_rounds": 50}
    assert backtest_request(SPEC, "base-rate,lightgbm", "1990-1994").params == {}  # tuned where tunable
    with pytest.raises(InvalidInput, match="one model's: ask for one model, not base-rate, lightgbm"):
        backtest_request(SPEC, "base-rate,lightgbm", "1990-1994", params={"n_rounds": 50})


def test_an_unreachable_scheduler_fails_at_once_in_one_line():
    with pytest.raises(FoedusError, match="does not answer within") as caught:
        with executor(scheduler="tcp://127.0.0.1:9"):
            pass
    assert "\n" not in str(caught.value)


def test_a_final_model_fitted_beside_the_backtests_is_the_one_train_would_fit(defense, tmp_path):
    """``foedus run`` fits the final models as tasks of the backtests' fan-out: the fit that comes
    back (without its training rows) forecasts exactly as one fitted here, and train logs it."""
    import mlflow
    import numpy as np
    from foedus.features.labels import labelled
    from foedus.jobs import backtest_request, build, run_backtests, train
    from foedus.models.backtest import fit_final

    fitted = {}
    with tracking_store(tmp_path / "store"):
        with executor(jobs=2) as ex:
            ex.map(square_or_fail, [1, 2])  # the cluster is up: even a light fit goes to a worker, and back
            request = backtest_request(SPEC, "logit-threat", "1919-1925", log_models=False, first=FIRST, last=LAST)
            ((result,),) = run_backtests([request], paths=defense, ex=ex, finals={0: "logit-threat"},
                                         on_final=fitted.__setitem__, keep_forecasts=False)
        # as the main job keeps it: logged, then without its forecasts
        assert result.run_id and result.predictions is None and result.folds[0].model is None
        assert result.folds[0].executed_by["worker_pid"] != str(os.getpid())
        fit = fitted[0]
        assert fit.model_name == "logit-threat" and fit.train is None
        table = build(SPEC, FIRST, LAST, paths=defense).table
        here = fit_final(table, "logit-threat")
        rows = table.loc[labelled(table)].iloc[::500]
        assert np.array_equal(fit.model.predict_proba(rows), here.model.predict_proba(rows))
        run_id, promotion = train(SPEC, "logit-threat", paths=defense, fitted=fit, first=FIRST, last=LAST)
        assert promotion.reused is None and promotion.version == "1"
        logged = MlflowClient().get_run(run_id)
        assert logged.data.params["train_rows"] == str(len(here.train))
        assert logged.data.metrics["train_onsets"] == float(here.train["onset"].astype(int).sum())
        years = here.train["year"]
        assert (logged.data.params["train_first_year"], logged.data.params["train_last_year"]) == \
            (str(years.min()), str(years.max()))
        # the served example: the first labelled rows, as the fit here would give them
        example = mlflow.pyfunc.load_model(f"models:/{promotion.name}/1").input_example
        first = here.train.head(5)[here.features]
        assert np.array_equal(example.to_numpy(float), first.to_numpy(float), equal_nan=True)

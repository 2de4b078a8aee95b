"""Backtest and train killed with SIGKILL at named points (real subprocesses, ``FOEDUS_KILL_AT``):
the earlier runs and the champion stay intact and readable, the killed runs are marked failed by
the next invocation, which completes the work."""

from __future__ import annotations

import json

import pytest

from tests.pipelines.cli_helpers import foedus, foedus_here, tracking_store
from tests.pipelines.store_helpers import (
    FOLDS,
    REGISTERED,
    SPEC,
    YEARS,
    assert_complete_backtest,
    built_data,
    client_for,
    env_for,
    killed,
    runs,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory, paths, built):
    return built_data(tmp_path_factory.mktemp("faults"), paths, built)


def cli(*args, env):
    """A process to kill when ``env`` names a kill point; otherwise in this process (the next
    invocation, which settles what the killed one left, needs no process of its own)."""
    return (foedus if env.get("FOEDUS_KILL_AT") else foedus_here)(*args, env_extra=env)


def backtest(env, models="base-rate"):
    # --force: each backtest computes and logs anew (an identical finished one is reused otherwise)
    return cli("backtest", "-l", SPEC, "--models", models, "--folds", FOLDS, *YEARS, "--force", env=env)


def parents(client, status=None):
    return [r for r in runs(client, status=status) if r.data.tags.get("kind") == "backtest"]


# after the parent run's params and config; in the second fold's run, after its predictions and
# before its model; after every parent artifact, before the run ends. The runs left RUNNING:
BACKTEST_KILL_POINTS = {"backtest.parent_started": 1, "backtest.fold_predictions#2": 2, "backtest.before_end": 1}


def test_a_killed_backtest_leaves_earlier_runs_intact_and_the_next_one_marks_it_failed_and_completes(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    first = backtest(env)
    assert first.returncode == 0, first.stderr
    client = client_for(store)
    (earlier,) = parents(client)
    before = {r.info.run_id: (r.info.status, r.data.metrics) for r in runs(client)}

    for point in BACKTEST_KILL_POINTS:
        result = backtest({**env, "FOEDUS_KILL_AT": point})
        assert killed(result), (point, result.returncode, result.stderr)
        # the store is readable, the earlier runs unchanged; the killed runs are left RUNNING
        for run in runs(client):
            if run.info.run_id in before:
                assert (run.info.status, run.data.metrics) == before[run.info.run_id], point
        orphans = runs(client, status="RUNNING")
        assert orphans and {r.data.tags["foedus.pid"] for r in orphans} == {orphans[0].data.tags["foedus.pid"]}
        assert len(orphans) == BACKTEST_KILL_POINTS[point], (point, [r.info.run_name for r in orphans])

        after = backtest(env)
        assert after.returncode == 0, (point, after.stderr)
        # one warning line per run settled, naming it
        for orphan in orphans:
            assert f"run {orphan.info.run_id}" in after.stderr and "marked failed" in after.stderr, after.stderr
        for orphan in orphans:
            settled = client.get_run(orphan.info.run_id)
            assert settled.info.status == "FAILED" and "killed" in settled.data.tags["foedus.ended"]
        assert not runs(client, status="RUNNING")
        newest = parents(client, "FINISHED")[-1]
        assert_complete_backtest(client, newest)
        before = {r.info.run_id: (r.info.status, r.data.metrics) for r in runs(client)}

    assert_complete_backtest(client, client.get_run(earlier.info.run_id))
    # compare lists finished backtests only: the first and one per kill point
    listed = cli("compare", "-l", SPEC, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("base-rate") == 1 + len(BACKTEST_KILL_POINTS), listed.stdout


def champion(client) -> str:
    return str(client.get_model_version_by_alias(REGISTERED, "champion").version)


def loaded_champion(store) -> str:
    """The version the scoring code loads as champion (and that it loads at all)."""
    from foedus.features.labels import as_label_spec
    from foedus.models.scoring import load_scoring_model

    with tracking_store(store):
        model = load_scoring_model(as_label_spec(SPEC))
    assert model.estimator is not None
    return model.version


def train(env, model):
    return cli("train", "-l", SPEC, "--model", model, *YEARS, "--force", env=env)


# after the final model is logged, before it is registered; after it is registered, before the
# champion rule; after its run ended, before the alias moves
TRAIN_KILL_POINTS = ["train.model_logged", "train.registered", "train.before_alias"]


def test_a_killed_train_never_moves_the_champion_half_way_and_the_next_one_completes(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    assert backtest(env, "base-rate,logit-threat").returncode == 0  # logit-threat's AP beats base-rate's here
    assert train(env, "base-rate").returncode == 0
    client = client_for(store)
    assert champion(client) == "1" and loaded_champion(store) == "1"

    for point in TRAIN_KILL_POINTS:
        # each kill point starts from base-rate v1 as champion, which logit-threat beats
        client.set_registered_model_alias(REGISTERED, "champion", "1")
        known = {str(v.version) for v in client.search_model_versions(f"name = '{REGISTERED}'")}
        result = train({**env, "FOEDUS_KILL_AT": point}, "logit-threat")
        assert killed(result), (point, result.returncode, result.stderr)
        # the champion alias has not moved and its model still loads
        assert champion(client) == "1" and loaded_champion(store) == "1", point
        versions = {str(v.version): v for v in client.search_model_versions(f"name = '{REGISTERED}'")}
        orphan_version = max(set(versions) - known, key=int, default=None)
        assert (orphan_version is None) == (point == "train.model_logged"), point
        killed_run = [r for r in runs(client) if r.data.tags.get("kind") == "train"][-1]
        assert killed_run.info.status == ("FINISHED" if point == "train.before_alias" else "RUNNING"), point

        after = train(env, "logit-threat")
        assert after.returncode == 0, (point, after.stderr)
        assert not runs(client, status="RUNNING")
        assert f"run {killed_run.info.run_id}" in after.stderr, after.stderr
        versions = {str(v.version): v for v in client.search_model_versions(f"name = '{REGISTERED}'")}
        newest = max(versions, key=int)
        if point == "train.before_alias":
            # the killed train had judged its version the winner; the next invocation finished its rule
            assert "champion rule completed" in after.stderr
            assert champion(client) == orphan_version and versions[orphan_version].tags["foedus.promotion"] == "done"
            assert f"does not beat the champion v{orphan_version}" in after.stdout  # the same model only ties
        else:
            assert client.get_run(killed_run.info.run_id).info.status == "FAILED" and "marked failed" in after.stderr
            assert champion(client) == newest and "moved to it" in after.stdout
            if orphan_version is not None:
                assert versions[orphan_version].tags["foedus.promotion"] == "abandoned"
                assert versions[orphan_version].description.startswith("Incomplete")
                assert "tagged incomplete" in after.stderr
        assert loaded_champion(store) == champion(client)

    # foedus score states the version it used
    scored = cli("score", "India", "Australia", "--year", "2019", "-l", SPEC, "--json", env=env)
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["model"]["version"] == champion(client)

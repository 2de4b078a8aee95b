"""Finished work found again (``foedus.models.reuse``): a backtest or final model whose inputs
are identical to an earlier finished run's is taken from the store and said so in one line;
``--force``, other inputs, a killed run or a damaged one mean computing again."""

from __future__ import annotations

import shutil

import pytest

from tests.pipelines.cli_helpers import foedus, foedus_here
from tests.pipelines.store_helpers import FOLDS, SPEC, YEARS, built_data, client_for, env_for, killed, runs

MODELS = "base-rate,logit-threat"


@pytest.fixture(scope="module")
def data(tmp_path_factory, paths, built):
    return built_data(tmp_path_factory.mktemp("reuse"), paths, built)


def cli(*args, env):
    """``foedus <args>`` in this process (the process boundary is not the point here)."""
    return foedus_here(*args, env_extra=env)


def backtest(env, *extra):
    result = cli("backtest", "-l", SPEC, "--models", MODELS, "--folds", FOLDS, *YEARS, "--jobs", "1", *extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def train(env, *extra):
    result = cli("train", "-l", SPEC, "--model", "logit-threat", *YEARS, *extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def parents(client) -> list:
    return [r for r in runs(client) if r.data.tags.get("kind") == "backtest"]


def printed_runs(stdout: str) -> list[str]:
    return [line.rsplit("| run ", 1)[1].strip() for line in stdout.splitlines() if "| run " in line]


def test_an_identical_backtest_is_reused_and_said_so_and_force_computes_it_again(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    first = backtest(env)
    client = client_for(store)
    before = {r.info.run_id for r in runs(client)}
    assert len(before) == 2 * 3 and "reused" not in first.stdout

    again = backtest(env)
    assert {r.info.run_id for r in runs(client)} == before  # nothing new logged
    lines = [line for line in again.stdout.splitlines() if "| run " in line]
    assert len(lines) == 2 and all(line.startswith("reused backtest ") for line in lines), again.stdout
    assert printed_runs(again.stdout) == printed_runs(first.stdout)
    for run_id, line in zip(printed_runs(first.stdout), lines):
        assert f"reused backtest {run_id} of " in line and "--force recomputes" in line
    # the same figures, read back from the run
    computed = [line for line in first.stdout.splitlines() if "| run " in line]
    assert [line.split(": ", 1)[1] for line in lines] == computed
    assert "Downloading artifacts" not in again.stdout + again.stderr  # no progress bars

    forced = backtest(env, "--force")
    assert "reused" not in forced.stdout and len(parents(client)) == 4


def test_a_killed_or_damaged_backtest_is_never_reused(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    result = foedus("backtest", "-l", SPEC, "--models", "base-rate", "--folds", FOLDS, *YEARS,
                    env_extra={**env, "FOEDUS_KILL_AT": "backtest.before_end"})
    assert killed(result)
    client = client_for(store)
    (orphan,) = parents(client)
    assert orphan.info.status == "RUNNING"
    after = foedus("backtest", "-l", SPEC, "--models", "base-rate", "--folds", FOLDS, *YEARS, env_extra=env)
    assert after.returncode == 0 and "reused" not in after.stdout, after.stdout + after.stderr
    (done,) = [r for r in parents(client) if r.info.status == "FINISHED"]
    assert client.get_run(orphan.info.run_id).info.status == "FAILED"

    # a finished run that lost an artifact it is read by is not reused either
    artifacts = store / "artifacts"
    (summary,) = [p for p in artifacts.rglob("summary.md") if done.info.run_id in str(p)]
    shutil.rmtree(summary.parent / "predictions")
    again = foedus("backtest", "-l", SPEC, "--models", "base-rate", "--folds", FOLDS, *YEARS, env_extra=env)
    assert again.returncode == 0 and "reused" not in again.stdout
    assert len([r for r in parents(client) if r.info.status == "FINISHED"]) == 2


def test_an_identical_final_model_is_reused_and_keeps_its_standing(data, tmp_path):
    store = tmp_path / "store"
    env = env_for(data, store)
    backtest(env)
    train(env)
    client = client_for(store)
    trains = [r for r in runs(client) if r.data.tags.get("kind") == "train"]
    assert len(trains) == 1

    again = train(env)
    assert [r.info.run_id for r in runs(client) if r.data.tags.get("kind") == "train"] == [trains[0].info.run_id]
    assert again.stdout.startswith(f"reused final model {trains[0].info.run_id} of ")
    assert "v1 (continuing-dyad AP" in again.stdout and "is the champion" in again.stdout

    # --force fits it again (so does a new backtest to be judged by: the key names the backtest run)
    assert "reused" not in train(env, "--force").stdout
    assert len([r for r in runs(client) if r.data.tags.get("kind") == "train"]) == 2


def test_the_key_changes_with_the_models_code_the_table_the_model_and_its_inputs(monkeypatch):
    from foedus.models import reuse

    base = {"build_key": "abc", "model": "lightgbm", "seed": 7, "folds": ["1990-2004"]}
    key = reuse.reuse_key("backtest", **base)
    assert key == reuse.reuse_key("backtest", **dict(reversed(base.items())))  # order does not matter
    for change in ({"build_key": "abd"}, {"model": "base-rate"}, {"seed": 8}, {"folds": ["1990-2005"]},
                   {"backtest": "another run"}):
        assert reuse.reuse_key("backtest", **{**base, **change}) != key
    assert reuse.reuse_key("train", **base) != key
    monkeypatch.setattr(reuse, "models_digest", lambda: "edited")
    assert reuse.reuse_key("backtest", **base) != key

"""A real backtest on a real Dask cluster: a scheduler and two workers started from the command
line on 127.0.0.1, `foedus backtest --scheduler` run against them as a user would. Every
(model, fold) task is logged, finished, and was computed in one of the two worker processes;
and a scheduler that does not answer is one line and exit code 2, before any work."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.pipelines.cli_helpers import assert_user_error, foedus
from tests.pipelines.store_helpers import SPEC, client_for, env_for, runs

# four quick tasks (LightGBM's numbers on workers are compared in tests/models/test_executor.py);
# each worker's first one reads the table, so both workers get some
MODELS, FOLDS = "base-rate,logit-threat", "1919-1925,1926-1932"
DASK = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def data(paths):
    """The session's data folder with the defense table built (reused if another module built it)."""
    from foedus.jobs import build

    build(SPEC, paths=paths)
    return paths.data


def launch(*args, log: Path) -> subprocess.Popen:
    """A ``dask`` command in a process group of its own (stopped with all it started)."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen([str(DASK), *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group, SIGKILL to what is left after 10 s."""
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two one-thread workers on 127.0.0.1: (address, the workers' pids)."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    started = [launch("scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                      "--scheduler-file", str(scheduler_file), log=tmp_path / "scheduler.log")]
    worker_pids: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            assert started[0].poll() is None, (tmp_path / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(2):
            started.append(launch("worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                                  "--dashboard-address", "127.0.0.1:0", "--nworkers", "1", "--nthreads", "1",
                                  log=tmp_path / f"worker{i}.log"))
        with Client(address, timeout="10s") as client:
            client.wait_for_workers(2, timeout=60)
            worker_pids = set(client.run(os.getpid).values())  # the worker processes, children of the nannies
        assert len(worker_pids) == 2
        yield address, worker_pids
    finally:
        everything = {p.pid for p in started} | worker_pids
        stop(started)
        deadline = time.monotonic() + 15
        while not all(gone(pid) for pid in everything) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert all(gone(pid) for pid in everything), [pid for pid in everything if not gone(pid)]


def test_a_backtest_runs_on_the_two_workers_of_a_real_cluster(data, cluster, tmp_path):
    address, worker_pids = cluster
    store = tmp_path / "store"
    result = foedus("backtest", "-l", SPEC, "--models", MODELS, "--folds", FOLDS, "--scheduler", address,
                    env_extra=env_for(data, store))
    assert result.returncode == 0, result.stderr
    client = client_for(store)
    every = runs(client)
    parents = [r for r in every if r.data.tags["kind"] == "backtest"]
    folds = [r for r in every if r.data.tags["kind"] == "backtest-fold"]
    n_models, n_folds, n_specs = len(MODELS.split(",")), len(FOLDS.split(",")), 1
    assert len(parents) == n_models and len(folds) == n_folds * n_models * n_specs
    assert all(r.info.status == "FINISHED" for r in every)
    assert all(r.data.tags["mlflow.parentRunId"] in {p.info.run_id for p in parents} for r in folds)
    # computed by the two workers, both of them, and by neither this process nor the backtest's own
    client_pid = {r.data.tags["foedus.pid"] for r in every}
    assert {int(r.data.tags["worker_pid"]) for r in folds} == worker_pids
    assert len(client_pid) == 1 and int(client_pid.pop()) not in worker_pids and os.getpid() not in worker_pids
    assert all(r.data.tags["executed_by"].startswith("dask worker tcp://127.0.0.1:") for r in folds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_and_exit_2_before_any_work(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    data = tmp_path / "data"
    started = time.monotonic()
    result = foedus("backtest", "-l", SPEC, "--models", "base-rate", "--scheduler", address,
                    env_extra=env_for(data, tmp_path / "store"))
    assert_user_error(result, f"the Dask scheduler {address}", "does not answer within 5 s")
    assert time.monotonic() - started < 60 and not (data / "processed").exists()  # nothing was built

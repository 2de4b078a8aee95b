"""The MLflow UI on the project's store: start it on the loopback interface, wait until it
answers, and the links a researcher opens first (each experiment in its saved headline view,
and the comparison of the latest backtest's parent runs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from foedus.infra.config import Paths
from foedus.infra.errors import FoedusError

HOST = "127.0.0.1"
READY_TIMEOUT = 90.0  # the server answers /health after about 6 s, the UI itself later (ML-NOTES)


@dataclass(frozen=True)
class UiLinks:
    base: str
    experiments: dict[str, str] = field(default_factory=dict)  # experiment name -> runs page in the saved view
    compare: str | None = None  # the latest backtest invocation's parent runs, side by side
    compared_runs: list[str] = field(default_factory=list)


def free_port() -> int:
    """A TCP port nobody listens on now, on the loopback interface."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """The environment of an MLflow server foedus starts. MLflow's job runner serves GenAI jobs
    (LLM judges, trace roll-ups) foedus never submits, and adds eight processes that each import
    MLflow; a user who wants it sets the variable."""
    return {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}


def server_command(store_uri: str, port: int, artifacts: Path | None = None) -> list[str]:
    """``mlflow server`` on ``HOST:port`` for ``store_uri`` (its artifact folder served if local)."""
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri,
               "--host", HOST, "--port", str(port), "--workers", "1"]
    if artifacts is not None:
        command += ["--artifacts-destination", str(artifacts)]
    return command


def wait_ready(base: str, process: subprocess.Popen | None = None, timeout: float = READY_TIMEOUT) -> None:
    """Block until ``base``/health answers OK; a FoedusError if the server died or never answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise FoedusError(f"the MLflow server exited with code {process.returncode} before answering at {base}: "
                              "is the port taken? try --port with another number")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise FoedusError(f"the MLflow server did not answer at {base} within {timeout:.0f} s")


def start_server(paths: Paths | None = None, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start the MLflow UI on the project's store (``MLFLOW_TRACKING_URI`` if set) and wait until it
    answers; returns the process (its own process group, see ``stop_server``) and its base URL."""
    from foedus.models.tracking import artifact_root, configure

    paths = paths or Paths.discover()
    uri = configure(paths.root)  # creates and migrates the database before the server reads it
    port = port or free_port()
    base = f"http://{HOST}:{port}"
    process = subprocess.Popen(server_command(uri, port, artifact_root(uri)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True, env=server_env())
    try:
        wait_ready(base, process)
    except BaseException:
        stop_server(process)
        raise
    return process, base


def stop_server(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop the server and the workers it forked (uvicorn, MLflow's job consumers: its whole
    process group), by process id; whatever has not left after ``timeout`` seconds is killed."""
    group = process.pid  # started with start_new_session: the group id is the server's pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(group, process):
        time.sleep(0.2)
    if _group_alive(group, process):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    while _group_alive(group, process):  # after SIGKILL the group empties at once
        time.sleep(0.1)


def _group_alive(group: int, process: subprocess.Popen) -> bool:
    process.poll()  # reap the server itself, else it stays in the group as a zombie
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def ui_links(base: str, paths: Paths | None = None) -> UiLinks:
    """The foedus experiments of the store, each in its saved headline view, and the comparison
    of the newest backtest invocation's parent runs (every model it backtested; an ordinary
    backtest before a present-day model's)."""
    from foedus.models.run_view import compare_url, experiment_url
    from foedus.models.tracking import EXPERIMENT_PREFIX, configure
    from mlflow.tracking import MlflowClient

    paths = paths or Paths.discover()
    configure(paths.root)
    client = MlflowClient()
    experiments = [e for e in client.search_experiments() if e.name.startswith("foedus-")]
    links = {e.name: experiment_url(base, e.experiment_id) for e in sorted(experiments, key=lambda e: e.name)}
    # the models compared: the newest ordinary backtest, else (no ordinary one yet) the newest present-day one
    newest = []
    for prefix in (EXPERIMENT_PREFIX, "foedus-"):
        ids = [e.experiment_id for e in experiments if e.name.startswith(prefix)]
        newest = client.search_runs(ids, "tags.kind = 'backtest' and attributes.status = 'FINISHED'",
                                    order_by=["attributes.start_time DESC"], max_results=1) if ids else []
        if newest:
            break
    if not newest:
        return UiLinks(base, links)
    invocation = newest[0].data.tags.get("invocation")
    runs = client.search_runs([newest[0].info.experiment_id],
                              f"tags.kind = 'backtest' and tags.invocation = '{invocation}'",
                              order_by=["attributes.start_time ASC"]) if invocation else newest
    run_ids = [r.info.run_id for r in runs]
    return UiLinks(base, links, compare_url(base, run_ids, [newest[0].info.experiment_id]), run_ids)

"""MLflow tracking: where runs go, experiment per label spec, and how a backtest is logged.

By default the store is self-contained under ``mlruns/``: a SQLite database
(``mlruns/mlflow.db``, which also holds the model registry) and an artifact folder
(``mlruns/artifacts``). ``MLFLOW_TRACKING_URI`` points foedus at a shared tracking server
instead, for teams.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

EXPERIMENT_PREFIX = "foedus-onset-"
# present-day models (``foedus backtest/train --for-year``), every target year of a label spec together
PRESENT_PREFIX = "foedus-present-"


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store in ``<root>/mlruns``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    # absolute path: a relative sqlite path would scatter databases over working directories
    return f"sqlite:///{(Path(root) / 'mlruns' / 'mlflow.db').resolve()}"


def is_local(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def artifact_root(uri: str) -> Path | None:
    """For a SQLite store, the artifact folder beside its database; a server manages its own."""
    if not is_local(uri):
        return None
    return Path(uri.removeprefix("sqlite:///")).resolve().parent / "artifacts"


SERVER_TIMEOUT = 5.0  # seconds a tracking server gets to answer /health before foedus gives up


def check_server(uri: str, timeout: float = SERVER_TIMEOUT) -> None:
    """A FoedusError at once if the tracking server at ``uri`` does not answer: MLflow's own
    client retries for minutes, and a job would fail only after its training."""
    import urllib.request

    from foedus.infra.errors import FoedusError

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as answer:
            if answer.status == 200:
                return
            problem = f"answered /health with HTTP {answer.status}"
    except OSError as error:  # refused, unreachable, timed out, HTTP errors
        problem = f"does not answer ({getattr(error, 'reason', error)})"
    raise FoedusError(f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) {problem}: start it, fix the URI, or "
                      "unset MLFLOW_TRACKING_URI to use the local store in mlruns/")


def configure(root: Path) -> str:
    """Point MLflow at the project's store and create the database once (before any parallel use).
    A tracking server (``MLFLOW_TRACKING_URI`` http(s)) must answer first (``check_server``)."""
    uri = tracking_uri(root)
    if is_local(uri):
        artifact_root(uri).mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        check_server(uri)
    # MLflow's notices (pickled pyfunc, input-example validation) are noise on every model logged,
    # and its progress bars on every artifact read (a reused backtest, a score) are noise on stderr
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # Two processes opening a new store at once would both run MLflow's migrations and one would
    # fail half-way (measured: "Online migration expected to match one row"); one at a time, the
    # second finds the database made. Alembic's notices on the way are not the user's concern.
    with store_lock(uri), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MlflowClient().search_experiments(max_results=1)  # creates and migrates the database
    return uri


@contextmanager
def store_lock(uri: str):
    """Exclusive, between processes, for a local store's one-time changes (creating the database,
    an experiment); a tracking server serialises those itself. Released if the holder dies."""
    if not is_local(uri):
        yield
        return
    import fcntl

    lock = Path(uri.removeprefix("sqlite:///")).resolve().with_name(".foedus-store.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_name(spec, present: bool = False) -> str:
    """``foedus-onset-<spec>``; ``foedus-present-<spec>`` for the present-day models (any target year)."""
    return f"{PRESENT_PREFIX if present else EXPERIMENT_PREFIX}{spec.name}"


def experiment_id(spec, root: Path, present: bool = False) -> str:
    """The experiment of a label spec (of its present-day models if ``present``), created with
    its artifacts inside ``mlruns/`` if local."""
    from foedus.models.run_view import experiment_tags

    client = MlflowClient()
    name = experiment_name(spec, present)
    tags = {"label_spec": str(spec), **experiment_tags(spec, present)}
    found = client.get_experiment_by_name(name)
    if found is None:
        uri = mlflow.get_tracking_uri()
        with store_lock(uri):  # another process may be creating it right now
            found = client.get_experiment_by_name(name)
            if found is None:
                folder = artifact_root(uri)
                location = (folder / name).as_uri() if folder is not None else None
                try:
                    return client.create_experiment(name, artifact_location=location, tags=tags)
                except MlflowException as error:  # on a shared server, another client won the race
                    if error.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    found = client.get_experiment_by_name(name)
    # experiments made by an older foedus get the UI's kind, description and saved view too
    for key, value in tags.items():
        if found.tags.get(key) != value:
            client.set_experiment_tag(found.experiment_id, key, value)
    return found.experiment_id


# what a run's numbers depend on besides foedus's own code and the data
LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "scipy", "mlflow", "pyreadr")


@dataclass(frozen=True)
class Environment:
    """The interpreter, platform and library versions a run computed with, and whether foedus's
    working tree differed from its commit (then the commit alone does not reproduce the run)."""

    python: str
    platform: str
    libraries: dict[str, str]
    uncommitted_changes: bool | None

    def tags(self) -> dict[str, str]:
        return {"python_version": self.python,
                "libraries": " ".join(f"{name}=={version}" for name, version in self.libraries.items()),
                "uncommitted_changes": str(self.uncommitted_changes).lower()}

    def as_dict(self) -> dict:
        return asdict(self)


@functools.cache
def environment() -> Environment:
    """This process's ``Environment`` (computed once)."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    try:
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                text=True, timeout=10, cwd=Path(__file__).resolve().parent)
        changed = bool(status.stdout.strip()) if status.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        changed = None
    return Environment(platform.python_version(), platform.platform(),
                       {name: installed(name) for name in LIBRARIES}, changed)


def data_digest(sources: dict[str, str]) -> str:
    """One digest of the source checksums a table was built from."""
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:16]


def log_metrics(metrics: dict[str, float], prefix: str = "") -> None:
    """Log finite metrics in one call (NaN, e.g. AP of a slice without onsets, is skipped)."""
    clean = {f"{prefix}{k}": float(v) for k, v in metrics.items() if v == v and abs(v) != float("inf")}
    if clean:
        mlflow.log_metrics(clean)


@contextmanager
def artifact_dir():
    """A temporary folder whose files the caller logs as artifacts."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def log_frame(frame, path: str) -> None:
    """Log a DataFrame as ``path`` (Parquet or CSV by suffix) in the active run."""
    with artifact_dir() as tmp:
        target = tmp / Path(path).name
        if target.suffix == ".parquet":
            frame.to_parquet(target, index=False)
        else:
            frame.to_csv(target, index=False)
        folder = str(Path(path).parent) if str(Path(path).parent) != "." else None
        mlflow.log_artifact(str(target), artifact_path=folder)

"""Running the CLI as a user does (a subprocess) and checking its one-line errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def foedus(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("FOEDUS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "foedus", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=300)


def foedus_here(*args, env_extra=None, cwd=None) -> subprocess.CompletedProcess:
    """``foedus <args>`` run in this process through the same entry point (``foedus.cli.main``):
    its exit code, stdout and stderr as ``foedus`` gives them, without a new process's start
    (imports, MLflow's store, the table read: seconds each). For tests where the process
    boundary is not the point; kills, signals, concurrent processes and servers keep
    ``foedus``. The environment, arguments, folder and MLflow's URIs are as before after."""
    from foedus import cli
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking

    # MLflow's URIs as set (None: unset), not as resolved; setting one writes the environment too
    uris = tracking._tracking_uri, registry._registry_uri
    saved, argv, folder = dict(os.environ), sys.argv, os.getcwd()
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    try:
        os.environ.update(env_extra or {})
        os.environ.pop("FOEDUS_DEBUG", None)
        sys.argv = ["foedus", *args]
        os.chdir(cwd or ROOT)
        with redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        tracking._tracking_uri, registry._registry_uri = uris
        os.environ.clear()
        os.environ.update(saved)
        sys.argv = argv
        os.chdir(folder)
    return subprocess.CompletedProcess(["foedus", *args], code, stdout.getvalue(), stderr.getvalue())


def assert_user_error(result, *fragments):
    """Exit code 2, no traceback, one line on stderr holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


_TEMPLATE: list[Path] = []  # this process's migrated empty database (seeded_store)


def seeded_store(folder: Path, name: str = "mlflow.db") -> Path:
    """``folder/name``, an empty MLflow database, migrated: a copy of one made once per test
    process, where MLflow's migrations of each new database take seconds. An existing database
    is left as it is. Tests of a store's creation (the first process, two at once) start
    without one."""
    import atexit
    import shutil
    import tempfile
    import warnings

    if not _TEMPLATE:
        from mlflow.tracking import MlflowClient

        made = Path(tempfile.mkdtemp(prefix="foedus-store-template-"))
        atexit.register(shutil.rmtree, made, True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MlflowClient(tracking_uri=f"sqlite:///{made / name}").search_experiments(max_results=1)
        _TEMPLATE.append(made / name)
    target = folder / name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_TEMPLATE[0], target)
    return target


@contextmanager
def tracking_store(folder: Path):
    """MLflow pointed at a store of its own in ``folder`` (tracking and registry), restored after."""
    import mlflow
    from foedus.models.tracking import configure

    seeded_store(folder)
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    configure(folder)  # the tracking and the registry URI: earlier tests may have left the registry elsewhere
    try:
        yield os.environ["MLFLOW_TRACKING_URI"]
    finally:
        mlflow.set_tracking_uri(None)
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved

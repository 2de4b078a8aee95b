"""Running the CLI as a user does (a subprocess) and checking its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def foedus(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    env.pop("FOEDUS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "foedus", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=300)


def assert_user_error(result, *fragments):
    """Exit code 2, no traceback, one line on stderr holding every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@contextmanager
def tracking_store(folder: Path):
    """MLflow pointed at a store of its own in ``folder`` (tracking and registry), restored after."""
    import mlflow
    from foedus.models.tracking import configure

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

"""The project's tracking store, made ready for a command: MLflow pointed at it and the work of
killed foedus processes settled. Below the jobs, the main job and the sweeps, which all start
here."""

from __future__ import annotations

import logging

from foedus.infra.config import Paths


def configure_tracking(paths: Paths) -> str:
    """MLflow pointed at the project's store (an unreachable tracking server fails now, before
    any build or training), and the unfinished work of killed foedus processes settled
    (``foedus.models.recovery``; each thing done is logged as a warning). Returns the URI."""
    from foedus.models.recovery import recover
    from foedus.models.tracking import configure

    uri = configure(paths.root)
    for done in recover():
        logging.getLogger("foedus.models.recovery").warning(done.describe())
    return uri

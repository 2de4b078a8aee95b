"""Work a killed foedus process left unfinished in the tracking store, found and settled.

A process killed with SIGKILL (or by a power cut) ends none of its MLflow runs: they would stay
RUNNING for ever, and a final model it had registered would never face the champion rule. Every
run foedus starts carries its owner (``owner_tags``: host, process id and the process's start
time, so that a reused process id is not taken for the owner). The next backtest or train on
the same host calls ``recover``, which

- marks the runs of owners that are gone FAILED, with a tag saying why; a model version
  registered from such a run is tagged incomplete and never becomes champion;
- finishes a champion rule left pending (the model was logged and registered, its run ended,
  the process died before the alias moved): the version is judged again against the champion
  of now and the alias moved if it wins.

Runs of another host are left alone: whether their process lives cannot be known from here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from foedus.models.registry import ABANDONED, AP_TAG, PENDING, PROMOTION, REGISTERED_PREFIX, apply, judge
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

HOST, PID, STARTED = "foedus.host", "foedus.pid", "foedus.process_start"
ENDED = "foedus.ended"


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # the command name (field 2) may hold spaces and parentheses: count from the last ')'
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner."""
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), STARTED: str(_process_start(pid))}


def owner_alive(tags: dict[str, str]) -> bool | None:
    """Is the process named by a run's owner tags still running? None if it cannot be known
    (another host, or a run foedus did not start)."""
    if tags.get(HOST) != socket.gethostname() or not tags.get(PID, "").isdigit():
        return None
    pid = int(tags[PID])
    if os.path.isdir("/proc"):
        started = _process_start(pid)
        return started is not None and tags.get(STARTED) in (started, "None")
    try:
        os.kill(pid, 0)  # no /proc (macOS): the process id alone
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Recovered:
    """One piece of unfinished work settled: what it was and what was done."""

    run_id: str
    run_name: str
    action: str  # "marked failed" or "champion rule completed"
    detail: str

    def describe(self) -> str:
        return f"run {self.run_id} ({self.run_name}) of a killed foedus process: {self.action}; {self.detail}"


def _foedus_experiments(client: MlflowClient) -> list[str]:
    from foedus.models.tracking import EXPERIMENT_PREFIX, PRESENT_PREFIX

    return [e.experiment_id for e in client.search_experiments()
            if e.name.startswith((EXPERIMENT_PREFIX, PRESENT_PREFIX))]


def _fail_orphans(client: MlflowClient, experiments: list[str]) -> list[Recovered]:
    done = []
    here = f"attributes.status = 'RUNNING' and tags.`{HOST}` = '{socket.gethostname()}'"
    runs = client.search_runs(experiments, here, max_results=1000)
    for run in runs:
        tags = run.data.tags
        if owner_alive(tags) is not False:
            continue
        why = f"process {tags.get(PID)} on {tags.get(HOST)} ended without finishing this run (killed)"
        client.set_tag(run.info.run_id, ENDED, why)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        versions = client.search_model_versions(f"run_id = '{run.info.run_id}'")
        for version in versions:
            client.set_model_version_tag(version.name, version.version, PROMOTION, ABANDONED)
            client.update_model_version(version.name, version.version, description=(
                "Incomplete: the run that trained this version was killed before it finished, so the champion "
                f"rule never judged it and it is never champion ({why})."))
        names = ", ".join(f"{v.name} v{v.version} tagged incomplete" for v in versions)
        done.append(Recovered(run.info.run_id, run.info.run_name, "marked failed", names or why))
    return done


def _finish_promotions(client: MlflowClient) -> list[Recovered]:
    done = []
    for model in client.search_registered_models(f"name LIKE '{REGISTERED_PREFIX}%'"):
        for version in client.search_model_versions(f"name = '{model.name}'"):
            if version.tags.get(PROMOTION) != PENDING or not version.run_id:
                continue
            run = client.get_run(version.run_id)
            if run.info.status != "FINISHED" or owner_alive(run.data.tags) is not False:
                continue  # its own process may still be about to move the alias
            promotion = judge(client, model.name, str(version.version), float(version.tags.get(AP_TAG, "nan")))
            apply(client, promotion)
            done.append(Recovered(run.info.run_id, run.info.run_name, "champion rule completed",
                                  promotion.describe()))
    return done


def recover(client: MlflowClient | None = None) -> list[Recovered]:
    """Settle the unfinished work of killed foedus processes of this host in the configured store
    (see the module's text); returns what was done, for the caller to report."""
    client = client or MlflowClient()
    experiments = _foedus_experiments(client)
    done = _fail_orphans(client, experiments) if experiments else []
    return done + _finish_promotions(client)

"""A sweep study's trials, logged to MLflow: one parent run per study (its cut, validation blocks,
storage and, at the end, the best trial) and a nested run per trial (its parameters, value and
each block's average precision). Computes nothing: the trials come from ``foedus.models.sweep``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import mlflow
from foedus.models.experiment import run_tags
from foedus.models.sweep import MODEL, Cut, TrialResult, storage_url
from foedus.models.tracking import experiment_id, log_metrics

VALUE = "continuing_dyad_average_precision"  # a trial's value: pooled over the validation blocks


def log_study(trials: Iterable[TrialResult], study, spec, cut: Cut, blocks, *, provenance: dict, root: Path,
              storage: str, seed: int, batch: int, n_trials: int) -> str:
    """Log each of ``trials`` as it comes (they are computed as they are asked for) as a nested
    run under the study's parent run, which ends with the study's best trial (over every run of
    the study, earlier sweeps included). Returns the parent run's id."""
    mlflow.set_experiment(experiment_id=experiment_id(spec, root, False))
    tags = {**run_tags(provenance, "sweep", MODEL, spec), "sweep_study": study.study_name,
            "sweep_storage": storage_url(storage), "sweep_cut": cut.name}
    block_names = ",".join(b.name for b in blocks)
    with mlflow.start_run(run_name=f"{MODEL} sweep {cut.name}", tags=tags,
                          description=f"Optuna study '{study.study_name}': {n_trials} trials of {MODEL}, each fitted "
                                      f"on the years before each validation block ({block_names}) and scored by "
                                      f"pooled average precision on continuing dyads; only years {cut.name} "
                                      "are read.") as parent:
        mlflow.log_params({"model": MODEL, "label_spec": str(spec), "cut": cut.name, "validation_blocks": block_names,
                           "trials": n_trials, "batch": batch, "seed": seed})
        for trial in trials:
            with mlflow.start_run(run_name=f"trial {trial.number}", nested=True,
                                  tags={**tags, "kind": "sweep-trial", "optuna_trial": str(trial.number)}):
                mlflow.log_params({**trial.params, "optuna_trial": trial.number})
                log_metrics({VALUE: trial.value, "onsets": trial.onsets,
                             **{f"ap_{name}": ap for name, ap in trial.block_ap.items()}})
        best = study.best_trial
        mlflow.set_tag("best_trial", str(best.number))
        log_metrics({f"best_{VALUE}": float(best.value), "finished_trials": len(study.trials)})
        mlflow.log_dict({"study": study.study_name, "best_trial": best.number, "best_value": best.value,
                         "best_params": best.params, "storage": storage_url(storage)}, "best.json")
    return parent.info.run_id

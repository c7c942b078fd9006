"""MLflow's Optuna-on-Spark study (`mlflow.pyspark.optuna`) as `tune_hyperopt`'s other backend: Hyperopt is no
longer maintained upstream, and Optuna's per-trial cost on Spark is lower."""

from __future__ import annotations

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from common.errors import UserInputError
from common.tracking import log_new_params
from training.tuning.search_space import Space, cast_point

OPTUNA_STUDY = "MlflowSparkStudy"


def minimize_with_optuna(objective, search: Space, max_evals: int, parallelism: int, timeout: float, seed: int):
    """MLflow's Optuna-on-Spark study: trials run as Spark tasks and write their own runs (children of a study run,
    itself a child of the tuning run). Optuna's storage batches those writes, which SQLite takes from two workers."""
    import optuna
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy

    from training.tuning.executor import OptunaObjective

    parent = mlflow.active_run()
    storage = MlflowStorage(experiment_id=parent.info.experiment_id)
    # A study name is looked up to resume a study; one per tuning run keeps reruns from continuing an old one.
    study_name = f"optuna-{parent.info.run_id}"
    study = MlflowSparkStudy(study_name, storage, sampler=optuna.samplers.TPESampler(seed=seed), direction="minimize")
    client = mlflow.MlflowClient()
    client.set_tag(study._study_id, MLFLOW_PARENT_RUN_ID, parent.info.run_id)
    study.optimize(OptunaObjective(objective), n_trials=max_evals, n_jobs=parallelism, timeout=timeout or None)
    storage.flush_all_batches()
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise UserInputError(f"every trial failed; see the trial runs under the study run {study._study_id}")
    best = cast_point(search, study.best_params)
    log_new_params({f"best.{k}": v for k, v in best.items()} | {"optuna_study_run_id": study._study_id})
    mlflow.log_metrics(
        {
            "best_loss": study.best_value,
            "n_trials": len(study.trials),
            "n_trials_ok": len(complete),
            "n_trials_failed": len(study.trials) - len(complete),
        }
    )
    return best

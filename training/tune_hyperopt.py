"""Entry point `tune_hyperopt`: Hyperopt over a search space, trials in parallel on Spark, each trial a child run.

python -m training.tune_hyperopt --data breast_cancer --estimator random_forest --max-evals 32 --parallelism 2

scikit-learn estimators run one trial per Spark task (`SparkTrials`); MLlib pipelines (`--library mllib`) need the
driver's SparkContext to train, so their trials run one after another (`Trials`), each trained by Spark.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime

import mlflow
import numpy as np
import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from pyspark.sql import SparkSession

from lifecycle.cli import comma_list, optional_str, run_cli, whole_number
from lifecycle.datasets import DEFAULT_LABEL
from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.spark import build_spark
from lifecycle.tracking import log_new_params, tracked_run
from training.search_space import (
    Space,
    cast_point,
    describe,
    to_hyperopt,
)
from training.tasks import TrainResult
from training.tuning import TrialRuns, TuningMetric, finished_status, prepare, refit_best

_logger = logging.getLogger(__name__)
SPARK_TRIALS = "SparkTrials"
SEQUENTIAL_TRIALS = "Trials"
OPTUNA_STUDY = "MlflowSparkStudy"
BACKENDS = ("hyperopt", "optuna")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tune_hyperopt", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="breast_cancer", help="Parquet/CSV path or a bundled data set name")
    parser.add_argument("--label", default=DEFAULT_LABEL)
    parser.add_argument("--library", default="sklearn", choices=["sklearn", "mllib"])
    parser.add_argument("--backend", default="hyperopt", choices=BACKENDS, help="optuna: mlflow.pyspark.optuna")
    parser.add_argument("--estimator", default="random_forest")
    parser.add_argument("--task", default="auto", choices=["auto", "classification", "regression"])
    parser.add_argument("--space", default="", help="JSON search space; empty: the estimator's default space")
    parser.add_argument("--metric", type=optional_str, default=None, help="default: log_loss / rmse by task")
    parser.add_argument("--max-evals", type=whole_number, default=16)
    parser.add_argument("--parallelism", type=whole_number, default=2)
    parser.add_argument("--timeout", type=float, default=0.0, help="seconds; 0 means no limit")
    parser.add_argument("--cv-folds", type=whole_number, default=3)
    parser.add_argument("--seed", type=whole_number, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--exclude", default="", help="comma-separated columns that are not features (ids)")
    parser.add_argument("--model-name", type=optional_str, default=None, help="register the refit best model")
    return parser.parse_args(argv)


def check_budget(max_evals: int, parallelism: int, timeout: float) -> None:
    if max_evals < 1:
        raise UserInputError(f"max_evals must be at least 1, got {max_evals}")
    if parallelism < 1:
        raise UserInputError(f"parallelism must be at least 1, got {parallelism}")
    if timeout < 0:
        raise UserInputError(f"timeout must be 0 (no limit) or a number of seconds, got {timeout}")


def run(
    spark: SparkSession,
    settings: Settings,
    data: str,
    label: str = DEFAULT_LABEL,
    estimator: str = "random_forest",
    task: str = "auto",
    space: str | dict | None = None,
    metric: str | None = None,
    max_evals: int = 16,
    parallelism: int = 2,
    timeout: float = 0.0,
    cv_folds: int = 3,
    seed: int = 42,
    test_fraction: float = 0.2,
    exclude: Sequence[str] = (),
    model_name: str | None = None,
    backend: str = "hyperopt",
) -> TrainResult:
    """Tune a scikit-learn estimator with SparkTrials (or Optuna's MlflowSparkStudy); everything is validated
    before a trial or a run starts."""
    from hyperopt import SparkTrials, Trials

    if backend not in BACKENDS:
        raise UserInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check_budget(max_evals, parallelism, timeout)
    prepared = prepare(data, label, estimator, task, metric, seed, test_fraction, exclude, cv_folds, space)
    search = prepared.space

    with tracked_run(settings, run_name=f"tune_hyperopt-{estimator}") as active:
        prepared.log_setup(
            {
                "space": describe(search),
                "max_evals": max_evals,
                "parallelism": parallelism,
                "timeout": timeout,
                "trials_backend": _trials_backend(backend, parallelism),
            }
        )
        data_ref = spark.sparkContext.broadcast((prepared.X_train, prepared.y_train))
        objective = prepared.objective(data_ref, search, seed)
        try:
            if backend == "optuna":
                best = minimize_with_optuna(objective, search, max_evals, parallelism, timeout, seed)
            else:
                # One at a time gains nothing from Spark and would pay its per-trial cost (README: when parallel
                # trials pay off), so parallelism=1 runs Hyperopt's own sequential Trials on the driver.
                trials = (
                    SparkTrials(parallelism=parallelism, timeout=timeout or None, spark_session=spark)
                    if parallelism > 1
                    else Trials()
                )
                best = minimize(objective, search, prepared.metric, trials, max_evals, seed)
        finally:
            data_ref.destroy()
        return refit_best(active, prepared, best, model_name)


def _trials_backend(backend: str, parallelism: int) -> str:
    if backend == "optuna":
        return OPTUNA_STUDY
    return SPARK_TRIALS if parallelism > 1 else SEQUENTIAL_TRIALS


def minimize(objective, search: Space, metric: TuningMetric, trials, max_evals: int, seed: int) -> dict:
    """fmin with TPE over `search`; each finished trial becomes a child run as soon as the driver sees it (SparkTrials
    and sequential Trials keep trials alike). Returns the best point; its loss and the trial table go to the run."""
    from hyperopt import fmin, space_eval, tpe
    from hyperopt.exceptions import AllTrialsFailed

    logger = HyperoptTrialLogger(trials, search, TrialRuns(metric))
    hyperopt_space = to_hyperopt(search)
    try:
        best_indexes = fmin(
            objective,
            hyperopt_space,
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=trials,
            rstate=np.random.default_rng(seed),
            show_progressbar=logger.progress,
        )
    except Exception as exc:
        logger.log_finished()
        # Hyperopt says "every trial failed" as AllTrialsFailed or, from fmin's last step, a bare Exception.
        if isinstance(exc, AllTrialsFailed) or "no evaluation tasks" in str(exc):
            raise UserInputError(f"every trial failed; the first error: {logger.first_error()}") from exc
        raise
    logger.log_finished()
    best = cast_point(search, space_eval(hyperopt_space, best_indexes))
    logger.log_summary(best)
    return best


def minimize_with_optuna(objective, search: Space, max_evals: int, parallelism: int, timeout: float, seed: int):
    """MLflow's Optuna-on-Spark study: trials run as Spark tasks and write their own runs (children of a study run,
    itself a child of the tuning run). Optuna's storage batches those writes, which SQLite takes from two workers."""
    import optuna
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy

    from training._trial import OptunaObjective

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


class HyperoptTrialLogger:
    """Shows Hyperopt's progress bar (trials done, best loss) and logs each trial once it has finished."""

    def __init__(self, trials, search: Space, runs: TrialRuns):
        self._trials = trials
        self._search = search
        self._hyperopt_space = to_hyperopt(search)  # to turn each trial's recorded indexes back into values
        self._runs = runs

    @contextmanager
    def progress(self, initial: int, total: int):
        from hyperopt.progress import tqdm_progress_callback

        with tqdm_progress_callback(initial, total) as bar:
            yield _LoggingBar(bar, self)

    def log_finished(self) -> None:
        from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR

        for trial in self._all_trials():
            number = trial["tid"]
            if number in self._runs.logged or trial["state"] not in (JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL):
                continue
            result = trial.get("result") or {}
            ok = trial["state"] == JOB_STATE_DONE and result.get("status") == "ok"
            error = None if ok else _error_text(trial)
            self._runs.log(
                number,
                self._point(trial),
                self._runs.metrics_of(result) if ok else {},
                finished_status(ok),
                _ms(trial.get("book_time")),
                _ms(trial.get("refresh_time")),
                error,
            )

    def first_error(self) -> str:
        errors = [_error_text(t) for t in self._all_trials() if t["misc"].get("error")]
        return errors[0] if errors else "unknown"

    def log_summary(self, best: dict) -> None:
        losses = [t["result"]["loss"] for t in self._trials.trials if (t.get("result") or {}).get("status") == "ok"]
        ok = len(losses)
        log_new_params({f"best.{k}": v for k, v in best.items()})
        mlflow.log_metrics(
            {"best_loss": min(losses), "n_trials": len(self._trials.trials), "n_trials_ok": ok,
             "n_trials_failed": len(self._trials.trials) - ok}
        )  # fmt: skip
        rows = [
            {"trial": t["tid"], "state": t["state"], **self._point(t), **(t.get("result") or {})}
            for t in self._trials.trials
        ]
        mlflow.log_table(pd.DataFrame(rows), artifact_file="tuning/trials.json")

    def _all_trials(self) -> list:
        # `trials.trials` leaves out trials that raised; a failed trial is still a trial the user must see.
        return list(self._trials._dynamic_trials)

    def _point(self, trial) -> dict:
        from hyperopt import space_eval

        vals = {k: v[0] for k, v in trial["misc"]["vals"].items() if v}
        return cast_point(self._search, space_eval(self._hyperopt_space, vals))


class _LoggingBar:
    """Hyperopt's progress-bar protocol (`update`, `postfix`), logging finished trials on every update."""

    def __init__(self, bar, logger: HyperoptTrialLogger):
        self._bar = bar
        self._logger = logger

    def update(self, n: int) -> None:
        self._bar.update(n)
        self._logger.log_finished()

    @property
    def postfix(self):
        return self._bar.postfix

    @postfix.setter
    def postfix(self, value) -> None:
        self._bar.set_postfix_str(value)


def _error_text(trial) -> str:
    """A failed trial's error as one line: SparkTrials keeps (exception type, traceback or message)."""
    from hyperopt.base import JOB_STATE_CANCEL

    error = trial["misc"].get("error")
    if not error:
        return "cancelled (timeout)" if trial["state"] == JOB_STATE_CANCEL else "failed"
    kind, detail = error if isinstance(error, tuple | list) and len(error) == 2 else ("", error)
    lines = [line.strip() for line in str(detail).splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    kind = str(kind).removeprefix("<class '").removesuffix("'>")
    return f"{kind}: {message}" if kind and kind not in message else message


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def main(argv: Sequence[str] | None = None) -> TrainResult:
    args = parse_args(argv)
    settings = Settings.from_env()
    common = dict(
        data=args.data, label=args.label, estimator=args.estimator, task=args.task, space=args.space,
        metric=args.metric, max_evals=args.max_evals, parallelism=args.parallelism, timeout=args.timeout,
        cv_folds=args.cv_folds, seed=args.seed, test_fraction=args.test_fraction, exclude=comma_list(args.exclude),
        model_name=args.model_name,
    )  # fmt: skip
    if args.library == "mllib" and args.backend != "hyperopt":
        raise UserInputError(f"backend={args.backend!r} tunes scikit-learn estimators; MLlib pipelines use Hyperopt")
    spark = build_spark(settings, app_name=f"tune_hyperopt-{args.estimator}")
    if args.library == "mllib":
        from training.tune_mllib import run as run_mllib

        result = run_mllib(spark, settings, **common)
    else:
        result = run(spark, settings, **common, backend=args.backend)
    print(result.summary())
    return result


if __name__ == "__main__":
    run_cli(main)

"""Tuning on Spark, parallel vs one at a time, side by side in one run on this machine:

- Hyperopt `SparkTrials(parallelism=2)` vs sequential `Trials` (the same objective: 3-fold CV of a random forest,
  seconds per trial), and Optuna's MlflowSparkStudy at n_jobs=2 beside them;
- joblib-spark `GridSearchCV(n_jobs=2)` vs `n_jobs=1` on the Spark backend (the same grid).

    python -m bench.tuning_parallelism [--trials 8] [--trees 300]
"""

from __future__ import annotations

import argparse
import time

import mlflow
import numpy as np
from hyperopt import SparkTrials, Trials, fmin, tpe

from bench._common import bench_settings, print_table, workdir
from common.spark import build_spark
from training.tuning.optuna_search import minimize_with_optuna
from training.tuning.search_space import parse_space, to_hyperopt
from training.tuning.steps import prepare
from training.tuning.tune_joblib import TuneJoblibParams, fit_on_spark, search_cv


def _time_fmin(objective, space, trials, evals: int) -> float:
    started = time.perf_counter()
    fmin(objective, to_hyperopt(space), tpe.suggest, evals, trials=trials, rstate=np.random.default_rng(0),
         show_progressbar=False)  # fmt: skip
    return time.perf_counter() - started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="tuning_parallelism", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--trees", type=int, default=300, help="forest size; sets the seconds each trial takes")
    args = parser.parse_args(argv)

    settings = bench_settings(workdir())
    spark = build_spark(settings, app_name="bench-tuning")
    prepared = prepare(TuneJoblibParams(data="breast_cancer", label="target", estimator="random_forest", seed=0))
    # Only the depth varies: every trial fits the same number of trees, so trials cost about the same.
    space = parse_space({"max_depth": [4, 6, 8, 10], "n_estimators": [args.trees]}, {})
    local = prepared.objective((prepared.X_train, prepared.y_train), space, 0)
    trial_seconds = local({"max_depth": 8, "n_estimators": args.trees})["fit_seconds"]

    sequential = _time_fmin(local, space, Trials(), args.trials)
    broadcast = spark.sparkContext.broadcast((prepared.X_train, prepared.y_train))
    spark_trials = _time_fmin(
        prepared.objective(broadcast, space, 0), space, SparkTrials(2, spark_session=spark), args.trials
    )
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        started = time.perf_counter()
        minimize_with_optuna(prepared.objective(broadcast, space, 0), space, args.trials, 2, 0, 0)
        optuna_seconds = time.perf_counter() - started

    grid_space = parse_space({"max_depth": [4, 6, 8, 10], "n_estimators": [args.trees // 2, args.trees]}, {})
    joblib_seconds = {}
    for n_jobs in (1, 2):
        cv = search_cv(prepared, grid_space, "grid", 3, 0, 3, 0)
        started = time.perf_counter()
        fit_on_spark(cv, prepared.X_train, prepared.y_train, n_jobs)
        joblib_seconds[n_jobs] = time.perf_counter() - started

    fits = 8 * 3
    joblib_ratio = joblib_seconds[1] / joblib_seconds[2]
    print_table(
        f"Tuning on local[2], {args.trials} trials of ~{trial_seconds:.1f} s (3-fold CV, {args.trees}-tree forest)",
        ["way", "seconds", "speed-up vs one at a time"],
        [
            ["hyperopt Trials (sequential, driver)", sequential, 1.0],
            ["hyperopt SparkTrials parallelism=2", spark_trials, sequential / spark_trials],
            ["optuna MlflowSparkStudy n_jobs=2", optuna_seconds, sequential / optuna_seconds],
            [f"GridSearchCV n_jobs=1 ({fits} fits; joblib runs it in-process)", joblib_seconds[1], 1.0],
            [f"joblib-spark GridSearchCV n_jobs=2 ({fits} fits)", joblib_seconds[2], joblib_ratio],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()

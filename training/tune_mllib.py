"""Hyperopt over an MLlib pipeline (`tune_hyperopt --library mllib`).

MLlib estimators train through the driver's SparkContext, which a SparkTrials task (itself running on a worker)
does not have. So trials run one after another with Hyperopt's sequential `Trials`, and each trial's training is
distributed by Spark instead. Each trial fits on part of the training split and is judged on the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from hyperopt import STATUS_OK, Trials
from pyspark.sql import SparkSession

from lifecycle.errors import UserInputError
from lifecycle.settings import Settings
from lifecycle.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training.mllib_job import MllibJob, log_fitted_mllib, prepare_mllib
from training.mllib_pipeline import MllibSpec
from training.search_space import MLLIB_SPACES, Space, cast_point, check_mllib_space, describe, parse_space
from training.tasks import TrainResult, check_test_fraction
from training.tune_hyperopt import SEQUENTIAL_TRIALS, check_budget, minimize
from training.tuning import TuningMetric

_logger = logging.getLogger(__name__)
_VALIDATION_FRACTION = 0.25  # of the training split, held back to judge each trial


def run(
    spark: SparkSession,
    settings: Settings,
    data: str,
    label: str,
    estimator: str = "random_forest",
    task: str = "auto",
    space: str | dict | None = None,
    metric: str | None = None,
    max_evals: int = 16,
    parallelism: int = 1,
    timeout: float = 0.0,
    cv_folds: int = 3,
    seed: int = 42,
    test_fraction: float = 0.2,
    exclude: Sequence[str] = (),
    model_name: str | None = None,
) -> TrainResult:
    check_budget(max_evals, parallelism, timeout)
    check_test_fraction(test_fraction)
    if metric:
        raise UserInputError(
            f"metric={metric!r}: MLlib tuning judges trials by the pipeline's own evaluator "
            "(areaUnderROC, accuracy or rmse by task); leave metric empty"
        )
    if estimator not in MLLIB_SPACES:
        raise UserInputError(f"unknown MLlib estimator {estimator!r}; choose one of: {', '.join(MLLIB_SPACES)}")
    search = parse_space(space, MLLIB_SPACES[estimator])
    job = prepare_mllib(
        spark, data, MllibSpec(label, task, estimator, seed=seed, exclude=tuple(exclude)), test_fraction
    )
    check_mllib_space(search, job.estimator_stage)
    if parallelism > 1:
        _logger.warning(
            "MLlib pipelines cannot train inside SparkTrials (they need the driver's SparkContext): "
            "running %d trials one after another with Hyperopt's Trials; Spark parallelises each fit instead",
            max_evals,
        )
    evaluator = job.evaluator
    metric_ = TuningMetric(evaluator.getMetricName(), "", evaluator.isLargerBetter(), judged_by="validation")

    with tracked_run(settings, run_name=f"tune_hyperopt-mllib-{estimator}") as active:
        log_new_params(
            {
                "data": data,
                "label": label,
                "library": "mllib",
                "estimator": estimator,
                "task": task,
                "resolved_task": job.spec.task,
                "metric": metric_.name,
                "space": describe(search),
                "max_evals": max_evals,
                "parallelism": parallelism,
                "timeout": timeout,
                "trials_backend": SEQUENTIAL_TRIALS,
                "seed": seed,
                "test_fraction": test_fraction,
                "exclude": ",".join(exclude),
                "features": ",".join(job.plan.raw_features),
            }
        )
        log_dataset(spark_dataset(job.df, data, job.source, label), context="training")
        objective = _ValidationObjective(job, search, metric_, seed)
        try:
            best = minimize(objective, search, metric_, Trials(), max_evals, seed)
        finally:
            objective.release()
        model = job.pipeline.fit(job.train, _param_map(job, best))
        metrics, info, version = log_fitted_mllib(job, model, model_name)
        job.df.unpersist()
        _logger.info("run %s: best %s, held-out %s", active.info.run_id, best, metrics)
        return TrainResult(active.info.run_id, info.model_uri, job.spec.task, metrics, model_name, version, best)


class _ValidationObjective:
    """Fit on 75% of the training split, judge on the other 25% (the same rows for every trial)."""

    def __init__(self, job: MllibJob, search: Space, metric: TuningMetric, seed: int):
        self._job = job
        self._search = search
        self._metric = metric
        fit_part, judge_part = job.train.randomSplit([1 - _VALIDATION_FRACTION, _VALIDATION_FRACTION], seed=seed)
        self._fit_part = fit_part.cache()
        self._judge_part = judge_part.cache()

    def __call__(self, point: dict) -> dict:
        started = time.perf_counter()
        params = cast_point(self._search, point)
        model = self._job.pipeline.fit(self._fit_part, _param_map(self._job, params))
        value = float(self._job.evaluator.evaluate(model.transform(self._judge_part)))
        return {
            "status": STATUS_OK,
            "loss": self._metric.loss(value),
            "metric": value,
            "fit_seconds": time.perf_counter() - started,
        }

    def release(self) -> None:
        self._fit_part.unpersist()
        self._judge_part.unpersist()


def _param_map(job: MllibJob, point: dict) -> dict:
    stage = job.estimator_stage
    return {stage.getParam(name): value for name, value in point.items()}

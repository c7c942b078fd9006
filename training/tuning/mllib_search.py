"""Hyperopt over an MLlib pipeline (`tune_hyperopt --library mllib`).

MLlib estimators train through the driver's SparkContext, which a SparkTrials task (itself running on a worker)
does not have. So trials run one after another with Hyperopt's sequential `Trials`, and each trial's training is
distributed by Spark instead. Each trial is judged by k-fold cross-validation on the training split (`cv_folds`),
with the same folds for every trial.
"""

from __future__ import annotations

import logging
import time

from hyperopt import STATUS_OK, Trials
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from common.errors import UserInputError
from common.params import logged_params
from common.provenance import record_training
from common.settings import Settings
from common.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training.mllib.pipeline import MllibSpec
from training.mllib.steps import MllibJob, log_fitted_mllib, prepare_mllib
from training.tasks import TrainResult
from training.tuning.hyperopt_search import SEQUENTIAL_TRIALS, minimize, why_not_exact
from training.tuning.search_space import MLLIB_SPACES, Space, cast_point, check_mllib_space, describe, parse_space
from training.tuning.steps import SearchParams, TuningMetric

_logger = logging.getLogger(__name__)
_FOLD = "__cv_fold"


def tune_mllib(
    spark: SparkSession, settings: Settings, request: SearchParams, max_evals: int, parallelism: int, timeout: float
) -> TrainResult:
    """Search, log every trial, refit the best point on the training split and log it like `train_mllib`.
    `request` is logged whole (tune_hyperopt's parameters); the Hyperopt budget comes beside it."""
    r = request
    if r.metric:
        raise UserInputError(
            f"metric={r.metric!r}: MLlib tuning judges trials by the pipeline's own evaluator "
            "(areaUnderROC, accuracy or rmse by task); leave metric empty"
        )
    if r.cv_folds < 2:
        raise UserInputError(f"cv_folds must be at least 2, got {r.cv_folds}")
    if r.estimator not in MLLIB_SPACES:
        raise UserInputError(f"unknown MLlib estimator {r.estimator!r}; choose one of: {', '.join(MLLIB_SPACES)}")
    search = parse_space(r.space, MLLIB_SPACES[r.estimator])
    spec = MllibSpec(r.label, r.task, r.estimator, seed=r.seed, exclude=tuple(r.exclude))
    job = prepare_mllib(spark, r.data, spec, r.test_fraction)
    check_mllib_space(search, job.estimator_stage)
    if parallelism > 1:
        _logger.warning(
            "MLlib pipelines cannot train inside SparkTrials (they need the driver's SparkContext): "
            "running %d trials one after another with Hyperopt's Trials; Spark parallelises each fit instead",
            max_evals,
        )
    evaluator = job.evaluator
    metric = TuningMetric(evaluator.getMetricName(), "", evaluator.isLargerBetter(), judged_by="cv")

    with tracked_run(settings, run_name=f"tune_hyperopt-mllib-{r.estimator}") as active:
        log_new_params(
            logged_params(r)
            | {
                "resolved_task": job.spec.task,
                "metric": metric.name,
                "space": describe(search),
                "trials_backend": SEQUENTIAL_TRIALS,
                "features": ",".join(job.plan.raw_features),
            }
        )
        log_dataset(spark_dataset(job.df, r.data, job.source, r.label), context="training")
        # Trials run one after another here whatever `parallelism` says; only a timeout changes what runs.
        record_training(r, spark, not_exact=why_not_exact(1, timeout))
        objective = _CrossValidatedObjective(job, search, metric, r.cv_folds, r.seed)
        try:
            best = minimize(objective, search, metric, Trials(), max_evals, r.seed, timeout)
        finally:
            objective.release()
        model = job.pipeline.fit(job.train, _param_map(job, best))
        metrics, info, version = log_fitted_mllib(job, model, r.model_name)
        job.df.unpersist()
        job.labeled.unpersist()
        _logger.info("run %s: best %s, held-out %s", active.info.run_id, best, metrics)
        return TrainResult(active.info.run_id, info.model_uri, job.spec.task, metrics, r.model_name, version, best)


class _CrossValidatedObjective:
    """k folds of the training split (drawn once, seeded, so every trial sees the same folds): fit on k-1, judge
    on the one left out, report the mean and spread over the folds."""

    def __init__(self, job: MllibJob, search: Space, metric: TuningMetric, folds: int, seed: int):
        self._job = job
        self._search = search
        self._metric = metric
        self._folds = folds
        fold = F.floor(F.rand(seed) * folds).cast("int")
        self._train = job.train.withColumn(_FOLD, fold).cache()

    def __call__(self, point: dict) -> dict:
        import numpy as np

        started = time.perf_counter()
        params = _param_map(self._job, cast_point(self._search, point))
        values = []
        for k in range(self._folds):
            model = self._job.pipeline.fit(self._train.filter(F.col(_FOLD) != k), params)
            values.append(float(self._job.evaluator.evaluate(model.transform(self._train.filter(F.col(_FOLD) == k)))))
        value = float(np.mean(values))
        return {
            "status": STATUS_OK,
            "loss": self._metric.loss(value),
            "metric": value,
            "metric_std": float(np.std(values)),
            "fit_seconds": time.perf_counter() - started,
        }

    def release(self) -> None:
        self._train.unpersist()


def _param_map(job: MllibJob, point: dict) -> dict:
    stage = job.estimator_stage
    return {stage.getParam(name): value for name, value in point.items()}

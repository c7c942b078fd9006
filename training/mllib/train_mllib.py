"""Entry point `train_mllib`: fit a Spark MLlib pipeline on a table (optionally cross-validated), track everything,
optionally register it.

    python -m training.mllib.train_mllib --data titanic --label survived --title-from name --cv-folds 3
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession

from common.cli import run_cli
from common.errors import UserInputError
from common.job import EAGER_SPARK, EntryPoint
from common.params import logged_params, param
from common.provenance import record_training
from common.settings import Settings
from common.tracking import log_dataset, log_new_params, spark_dataset, tracked_run
from training.mllib.cross_validation import GRID_ESTIMATORS, cross_validate
from training.mllib.pipeline import ESTIMATORS, MllibSpec
from training.mllib.quality import say_verdict
from training.mllib.steps import log_fitted_mllib, prepare_mllib
from training.tasks import TASK_CHOICES, TrainResult

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainMllibParams:
    data: str = param("titanic", help="Parquet/CSV path or a bundled data set name")
    label: str = param("survived")
    task: str = param("auto", choices=TASK_CHOICES)
    estimator: str = param("random_forest", choices=sorted(ESTIMATORS))
    num_trees: int = param(0, help="trees (random forest), iterations (GBT), n_estimators (xgboost); 0: sized")
    max_depth: int = param(0, help="0: sized from the row count (xgboost: its own default)")
    cv_folds: int = param(0, help="0: no cross-validation; else >= 2")
    grid_num_trees: tuple[int, ...] = param((), help="comma-separated values to cross-validate")
    grid_max_depth: tuple[int, ...] = param((), help="comma-separated values to cross-validate")
    seed: int = param(42)
    test_fraction: float = param(0.2)
    exclude: tuple[str, ...] = param((), help="comma-separated columns that are not features (ids)")
    title_from: str | None = param(None, help="name column: add the title feature")
    age_column: str = param("age", help="age column imputed by title (with --title-from)")
    model_name: str | None = param(None, help="register the model under this name")
    max_categories: int = param(250, help="a string feature's most frequent values kept; the rest share 'other'")
    id_like_ratio: float = param(0.9, help="distinct/present values at or above which a string column is an id")
    hyperparams: dict = param({}, help='XGBoost\'s, as JSON, e.g. {"learning_rate": 0.1} (estimator xgboost)')

    def spec(self) -> MllibSpec:
        return MllibSpec(
            self.label, self.task, self.estimator, self.num_trees, self.max_depth, self.seed, tuple(self.exclude),
            self.title_from, self.age_column, self.max_categories, self.id_like_ratio, dict(self.hyperparams),
        )  # fmt: skip


def run(spark: SparkSession, settings: Settings, params: TrainMllibParams) -> TrainResult:
    """Validate everything first, so bad input fails before a run or a model version exists."""
    p = params
    if p.cv_folds == 1 or p.cv_folds < 0:
        raise UserInputError(f"cv_folds must be 0 (no cross-validation) or at least 2, got {p.cv_folds}")
    grid = p.grid_num_trees or p.grid_max_depth
    if grid and p.cv_folds < 2:
        raise UserInputError("a grid (grid_num_trees / grid_max_depth) needs cv_folds >= 2")
    if grid and p.estimator not in GRID_ESTIMATORS:
        raise UserInputError(f"grid_num_trees / grid_max_depth tune trees; estimator {p.estimator!r} has none")

    job = prepare_mllib(spark, p.data, p.spec(), p.test_fraction)
    spec = job.spec

    with tracked_run(settings, run_name=f"train_mllib-{p.estimator}") as active:
        log_new_params(
            {
                **logged_params(p),
                "resolved_task": spec.task,
                "features": ",".join(job.plan.raw_features),
                "n_rows_missing_label": job.rows_missing_label,
                "dropped_columns": "; ".join(f"{c} ({why})" for c, why in job.plan.dropped.items()),
            }
        )
        log_dataset(spark_dataset(job.df, p.data, job.source, p.label), context="training")
        record_training(p, spark)

        if p.cv_folds >= 2:
            model, best_params = cross_validate(
                job.pipeline, job.estimator_stage, job.evaluator, job.train, spec, p.cv_folds, p.grid_num_trees,
                p.grid_max_depth,
            )  # fmt: skip
        else:
            model, best_params = job.pipeline.fit(job.train), {}
        metrics, info, version = log_fitted_mllib(job, model, p.model_name)
        job.df.unpersist()
        job.labeled.unpersist()
        _logger.info("run %s: %s", active.info.run_id, metrics)
        warning = say_verdict(job.quality, p.model_name, version)
        return TrainResult(
            active.info.run_id, info.model_uri, spec.task, metrics, p.model_name, version, best_params, warning
        )


ENTRY_POINT = EntryPoint(TrainMllibParams, run, spark=EAGER_SPARK)
main = ENTRY_POINT.main


if __name__ == "__main__":
    run_cli(main)

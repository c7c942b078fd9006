"""Entry point `train_sklearn`: fit a scikit-learn model on a table, track everything, optionally register it.

python -m training.sklearn.train_sklearn --data breast_cancer --estimator random_forest --model-name cancer
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from common.cli import run_cli
from common.datasets import DEFAULT_LABEL, load_table
from common.job import EntryPoint
from common.params import logged_params, param
from common.provenance import record_training
from common.settings import Settings
from common.tracking import log_dataset, log_new_params, tracked_run
from training.sklearn.ensemble_choice import choose_regression_members
from training.sklearn.estimators import (
    DEFAULT_ESTIMATOR,
    DEFAULT_MAX_CATEGORIES,
    ENSEMBLE,
    ESTIMATOR_STEP,
    ESTIMATORS,
    build_pipeline,
    estimator_params,
)
from training.sklearn.fit import fit_and_log, split_train_test
from training.sklearn.screening import DEFAULT_ID_LIKE_RATIO, check_thresholds, screen_columns
from training.tasks import REGRESSION, TASK_CHOICES, TrainResult, check_test_fraction, split_features

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSklearnParams:
    data: str = param("breast_cancer", help="Parquet/CSV path or a bundled data set name")
    label: str = param(DEFAULT_LABEL)
    estimator: str = param(DEFAULT_ESTIMATOR, choices=sorted(ESTIMATORS))
    task: str = param("auto", choices=TASK_CHOICES)
    hyperparams: dict = param({}, help='JSON object, e.g. {"n_estimators": 200}')
    seed: int = param(42)
    test_fraction: float = param(0.2)
    exclude: tuple[str, ...] = param((), help="comma-separated columns that are not features (ids)")
    model_name: str | None = param(None, help="register the model under this name")
    max_categories: int = param(DEFAULT_MAX_CATEGORIES, help="values kept per string column; rarer ones share 'other'")
    id_like_ratio: float = param(
        DEFAULT_ID_LIKE_RATIO, help="a string column this share of whose values are distinct is left out (>1: never)"
    )


def run(settings: Settings, params: TrainSklearnParams) -> TrainResult:
    """Validate everything first, so bad input fails before a run or a model version exists."""
    check_test_fraction(params.test_fraction)
    check_thresholds(params.id_like_ratio, params.max_categories)
    table = load_table(params.data)
    labeled = split_features(table.frame, params.label, params.task, list(params.exclude))
    screened = screen_columns(labeled, params.id_like_ratio, params.max_categories)
    labeled = screened.data
    pipeline = build_pipeline(params.estimator, labeled, params.hyperparams, params.seed, params.max_categories)
    X_train, X_test, y_train, y_test = split_train_test(labeled, params.test_fraction, params.seed)
    if labeled.rows_missing_label:
        _logger.warning("left out %d row(s) whose label %r is missing", labeled.rows_missing_label, params.label)

    with tracked_run(settings, run_name=f"train_sklearn-{params.estimator}") as active:
        log_new_params(
            {
                **logged_params(params),
                "resolved_task": labeled.task,
                "n_features": labeled.features.shape[1],
                "n_rows_train": len(X_train),
                "n_rows_test": len(X_test),
                "n_rows_missing_label": labeled.rows_missing_label,
                **({"dropped_columns": screened.describe()} if screened.left_out else {}),
            }
        )
        if params.estimator == ENSEMBLE and labeled.task == REGRESSION:
            _choose_members(pipeline, X_train, y_train, params.seed)
        log_new_params({f"{ESTIMATOR_STEP}.{k}": v for k, v in estimator_params(pipeline).items()})
        log_dataset(table.to_mlflow_dataset(targets=params.label), context="training")
        record_training(params)

        metrics, info, version, warning = fit_and_log(
            pipeline, labeled.task, X_train, X_test, y_train, y_test, params.model_name
        )
        _logger.info("run %s: %s", active.info.run_id, metrics)
        return TrainResult(
            active.info.run_id, info.model_uri, labeled.task, metrics, params.model_name, version, warning=warning
        )


def _choose_members(pipeline, X_train, y_train, seed: int) -> None:
    """The ensemble's members for a regression (training.sklearn.ensemble_choice), with the choice and each
    candidate's out-of-fold RMSE logged, so a user sees why."""
    chosen, rmse = choose_regression_members(pipeline, X_train, y_train, seed)
    log_new_params({"ensemble_choice": chosen})
    mlflow.log_metrics({f"cv_rmse_{name}": value for name, value in rmse.items()})
    _logger.info("ensemble for regression: %s (out-of-fold RMSE %s)", chosen, rmse or "not measured: few rows")


ENTRY_POINT = EntryPoint(TrainSklearnParams, run)  # scikit-learn fits in this process: no Spark
main = ENTRY_POINT.main


if __name__ == "__main__":
    run_cli(main)

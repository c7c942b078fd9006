"""XGBoost as the estimator of an MLlib pipeline: `xgboost.spark`'s own estimators (the library's maintained Spark
integration), trained by Spark with one task per core of the session, after the same feature stages as every MLlib
model. The fitted stage saves and loads with the pipeline (its booster as XGBoost's JSON model), so the model logs
with mlflow.spark, scores through Spark's transform, and converts to ONNX from that JSON.

xgboost.spark passes any keyword it does not know to the booster as an "arbitrary" parameter, where a misspelling
is silently ignored: hyperparameters are checked here against the ones the estimator declares."""

from __future__ import annotations

from pyspark.sql import SparkSession

from common import spark_compat
from common.errors import UserInputError
from training.tasks import CLASSIFICATION

# Set by the pipeline (columns, workers, seed) or not reproducible in ONNX / on executors.
_NOT_USER_SETTABLE = {
    "featuresCol", "labelCol", "predictionCol", "probabilityCol", "rawPredictionCol", "weightCol",
    "validationIndicatorCol", "base_margin_col", "arbitrary_params_dict", "force_repartition", "num_workers",
    "feature_names", "features_cols", "enable_sparse_data_optim", "qid_col", "repartition_random_shuffle",
    "pred_contrib_col", "launch_tracker_on_driver", "coll_cfg", "device", "callbacks", "xgb_model", "missing",
    "feature_types", "feature_weights", "iteration_range", "random_state", "verbose", "enable_categorical",
    "n_jobs", "nthread", "early_stopping_rounds", "eval_metric", "use_gpu",
}  # fmt: skip


def xgboost_class(task: str):
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    return SparkXGBClassifier if task == CLASSIFICATION else SparkXGBRegressor


def valid_hyperparameters(task: str) -> list[str]:
    return sorted({p.name for p in xgboost_class(task)().params} - _NOT_USER_SETTABLE)


def check_hyperparameters(task: str, hyperparams: dict) -> None:
    """Refuse, in one line listing the valid names, any hyperparameter the estimator does not declare."""
    valid = valid_hyperparameters(task)
    unknown = sorted(set(hyperparams) - set(valid))
    if unknown:
        raise UserInputError(
            f"unknown XGBoost hyperparameter(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )


def build_xgboost(task: str, hyperparams: dict, seed: int, label_col: str, features_col: str, prediction_col: str):
    """One training task per core the session has (its default parallelism), so Spark runs them all at once."""
    check_hyperparameters(task, hyperparams)
    spark = SparkSession.getActiveSession()
    spark_compat.refuse_under_connect(
        spark,
        "estimator xgboost (xgboost.spark trains in RDD barrier mode)",
        "choose random_forest or gbt through Connect, or train xgboost in classic mode (SPARK_REMOTE unset)",
    )
    workers = max(1, spark_compat.default_parallelism(spark)) if spark is not None else 1
    return xgboost_class(task)(
        features_col=features_col, label_col=label_col, prediction_col=prediction_col, num_workers=workers,
        random_state=seed, verbosity=0, **hyperparams,
    )  # fmt: skip

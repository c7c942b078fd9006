"""Held-out metrics for a fitted MLlib pipeline, computed in Spark, plus what the plots and importances need."""

from __future__ import annotations

import pandas as pd
from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator, RegressionEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from training.mllib.pipeline import FEATURES, LABEL_INDEX, PREDICTION, PREDICTION_INDEX
from training.tasks import CLASSIFICATION

_PLOT_ROWS = 20_000  # predictions brought to the driver for plots, at most


def evaluator_for(task: str, label: str, binary: bool, prediction_index: str):
    """The metric cross-validation optimises: ROC AUC (binary), weighted F1 (multiclass), RMSE (regression)."""
    if task != CLASSIFICATION:
        return RegressionEvaluator(labelCol=label, predictionCol=PREDICTION, metricName="rmse")
    if binary:
        return BinaryClassificationEvaluator(labelCol=LABEL_INDEX, metricName="areaUnderROC")
    return MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, predictionCol=prediction_index, metricName="f1")


def prediction_index_col(predictions: DataFrame) -> str:
    return PREDICTION_INDEX if PREDICTION_INDEX in predictions.columns else PREDICTION


def held_out_metrics(predictions: DataFrame, task: str, label: str, binary: bool) -> dict[str, float]:
    """Classification: accuracy, ROC AUC (binary), F1, log loss. Regression: RMSE, MAE, R²."""
    if task != CLASSIFICATION:
        return {
            name: RegressionEvaluator(labelCol=label, predictionCol=PREDICTION, metricName=name).evaluate(predictions)
            for name in ("rmse", "mae", "r2")
        }
    index = prediction_index_col(predictions)
    multiclass = {
        "accuracy": "accuracy",
        "f1": "f1",  # support-weighted over classes
        "log_loss": "logLoss",
    }
    result = {
        name: MulticlassClassificationEvaluator(labelCol=LABEL_INDEX, predictionCol=index, metricName=metric).evaluate(
            predictions
        )
        for name, metric in multiclass.items()
    }
    if binary:
        result["roc_auc"] = BinaryClassificationEvaluator(labelCol=LABEL_INDEX, metricName="areaUnderROC").evaluate(
            predictions
        )
    return result


def plot_sample(predictions: DataFrame, task: str, label: str, seed: int) -> pd.DataFrame:
    """Label, prediction and (for classifiers) class probabilities of up to _PLOT_ROWS held-out rows."""
    if task != CLASSIFICATION:
        selected = predictions.select(F.col(label).alias("y"), F.col(PREDICTION).alias("prediction"))
    else:
        selected = predictions.select(
            F.col(LABEL_INDEX).alias("y"),
            F.col(prediction_index_col(predictions)).alias("prediction"),
            vector_to_array("probability").alias("probability"),
        )
    total = predictions.count()
    if total > _PLOT_ROWS:
        selected = selected.sample(fraction=_PLOT_ROWS / total, seed=seed)
    return selected.toPandas()


def feature_importances(predictions: DataFrame, estimator_model) -> pd.DataFrame | None:
    """Importances by assembled feature name (from the feature vector's metadata), largest first."""
    if not hasattr(estimator_model, "featureImportances"):
        return None
    attributes = predictions.schema[FEATURES].metadata.get("ml_attr", {}).get("attrs", {})
    names = {a["idx"]: a["name"] for group in attributes.values() for a in group}
    values = estimator_model.featureImportances.toArray()
    frame = pd.DataFrame({"feature": [names.get(i, f"feature_{i}") for i in range(len(values))], "importance": values})
    return frame.sort_values("importance", ascending=False, ignore_index=True)

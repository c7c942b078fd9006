"""Score with a Spark-flavoured (MLlib) model through its own `transform`: it stays in the JVM, no Python per row.

Categories outside the model's own (unseen in training, or too rare there for an index of their own) are scored
(the pipeline's indexers give them all the one "other" index) and counted during the same job with
`DataFrame.observe`, so the count costs no extra pass over the data.
"""

from __future__ import annotations

import functools
import json
import operator

import mlflow
from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexerModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common import spark_compat
from common.bounded_cache import BoundedCache
from common.columns import col

UNSEEN_ROWS = "unseen_category_rows"


_PIPELINES: BoundedCache[tuple[str, str], PipelineModel] = BoundedCache()


def load_pipeline(load_uri: str) -> PipelineModel:
    """Loaded once per driver and model version: a stream scores many micro-batches with the same version."""
    return _PIPELINES.get_or_load((mlflow.get_tracking_uri(), load_uri), lambda: _load(load_uri))


def _load(load_uri: str) -> PipelineModel:
    with spark_compat.spark_model_files():  # through Spark Connect too
        return mlflow.spark.load_model(load_uri)


def transform_scored(
    model: PipelineModel, selected: DataFrame, passthrough: list[str], prediction_type: T.DataType
) -> tuple[DataFrame, Observation | None]:
    """Ids + `prediction` (+ `probability`: of the second class for two classes, one per class otherwise)."""
    transformed = model.transform(selected)
    observation = None
    conditions = unseen_conditions(model)
    if conditions:
        observation = Observation("unseen_categories")
        counts = [F.sum(F.when(cond, 1).otherwise(0)).alias(f"unseen_{name}") for name, cond in conditions.items()]
        # `|` folds any number of conditions; `greatest` refuses fewer than two columns (one string column).
        any_unseen = F.sum(F.when(functools.reduce(operator.or_, conditions.values()), 1).otherwise(0))
        transformed = transformed.observe(observation, any_unseen.alias(UNSEEN_ROWS), *counts)
    columns = [col(c) for c in passthrough] + [F.col("prediction").cast(prediction_type).alias("prediction")]
    if "probability" in transformed.columns:
        probabilities = vector_to_array("probability")
        n_classes = _n_classes(model)
        columns.append((probabilities[1] if n_classes == 2 else probabilities).alias("probability"))
    return transformed.select(*columns), observation


def unseen_conditions(model: PipelineModel) -> dict[str, Column]:
    """input column -> 'this row holds a non-null value the indexer has no index of its own for'."""
    conditions = {}
    for stage in model.stages:
        if isinstance(stage, StringIndexerModel):
            inputs = stage.getInputCols() if stage.isSet("inputCols") else [stage.getInputCol()]
            outputs = stage.getOutputCols() if stage.isSet("outputCols") else [stage.getOutputCol()]
            for column, indexed, labels in zip(inputs, outputs, stage.labelsArray, strict=True):
                conditions[column] = col(column).isNotNull() & (F.col(indexed) == float(len(labels)))
    return conditions


def _n_classes(model: PipelineModel) -> int:
    for stage in reversed(model.stages):
        if hasattr(stage, "numClasses"):
            return stage.numClasses
        if hasattr(stage, "get_booster"):  # xgboost.spark's model: its booster's num_class (0 for two classes)
            config = json.loads(stage.get_booster().save_config())
            return max(2, int(config["learner"]["learner_model_param"]["num_class"]))
    return 0

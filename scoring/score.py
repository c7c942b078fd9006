"""Library API: score a Spark DataFrame with a model URI, for users' own Spark code and for our jobs.

from scoring.score import score_dataframe
scored = score_dataframe(spark, df, "models:/churn/production").frame
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import partial

import mlflow
import numpy as np
import pyarrow as pa
from mlflow.models import ModelSignature
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from lifecycle.errors import UserInputError
from registry.resolve import ResolvedModel, resolve_model_uri
from scoring._executor import ScoringPlan, load_model, score_batches
from scoring.input_schema import FeatureBinding, bind_features
from scoring.model_shipping import ship_model
from scoring.spark_flavor import load_pipeline, transform_scored

OUTPUT_COLUMNS = ("prediction", "probability", "model_name", "model_version")


@dataclass(frozen=True)
class ScoredFrame:
    frame: DataFrame  # passthrough ids + prediction (+ probability) + model_name + model_version
    model: ResolvedModel
    binding: FeatureBinding
    flavor: str  # "spark" (scored in the JVM), "sklearn" or "python_function" (scored in Python workers)
    observation: Observation | None = None  # counts gathered while the frame is written (unseen categories)


def score_dataframe(spark: SparkSession, df: DataFrame, model_uri: str) -> ScoredFrame:
    """Resolve `model_uri` once, bind `df`'s columns to the model's signature by name, and score lazily.

    An MLlib model runs through its own `transform` in the JVM; a scikit-learn / pyfunc model is loaded once per
    Python worker (not per batch or row) and applied to Arrow batches.
    """
    resolved = resolve_model_uri(mlflow.MlflowClient(), model_uri)
    return score_resolved(spark, df, resolved)


def score_resolved(spark: SparkSession, df: DataFrame, resolved: ResolvedModel) -> ScoredFrame:
    info = _model_info(mlflow.get_tracking_uri(), resolved.load_uri)
    binding = bind_features(df, info.signature, resolved.label)
    clash = [c for c in OUTPUT_COLUMNS if c in binding.passthrough]
    if clash:
        raise UserInputError(f"input already has column(s) {', '.join(clash)}, which scoring adds; rename them")
    prediction_type = _prediction_arrow_type(info.signature)
    selected = binding.select(df)
    observation = None
    if "spark" in info.flavors:
        scored, observation = transform_scored(
            load_pipeline(resolved.load_uri), selected, binding.passthrough, from_arrow_type(prediction_type)
        )
        flavor = "spark"
    else:
        scored, flavor = _score_in_python_workers(spark, selected, binding, resolved, info, prediction_type)
    scored = scored.withColumn("model_name", F.lit(resolved.model_name).cast("string")).withColumn(
        "model_version", F.lit(resolved.model_version).cast("string")
    )
    return ScoredFrame(scored, resolved, binding, flavor, observation)


def _score_in_python_workers(spark, selected, binding, resolved, info, prediction_type):
    """A scikit-learn / pyfunc model: shipped to executors, loaded once per Python worker, fed Arrow batches."""
    key, local_dir = ship_model(spark, resolved)
    flavor = "sklearn" if "sklearn" in info.flavors else "python_function"
    plan = ScoringPlan(
        model_key=key,
        flavor=flavor,
        features=tuple(binding.features),
        passthrough=tuple(binding.passthrough),
        prediction_type=prediction_type,
        probability=_probability_kind(str(local_dir)) if flavor == "sklearn" else None,
    )
    out_schema = T.StructType(
        [selected.schema[name] for name in binding.passthrough]
        + [T.StructField("prediction", from_arrow_type(plan.prediction_type))]
        + ([T.StructField("probability", _probability_spark_type(plan.probability))] if plan.probability else [])
    )
    return selected.mapInArrow(partial(score_batches, plan=plan), out_schema), flavor


def _prediction_arrow_type(signature: ModelSignature) -> pa.DataType:
    outputs = signature.outputs
    if outputs is None or len(outputs.inputs) != 1:
        return pa.float64()
    spec = outputs.inputs[0]
    dtype = np.dtype(spec.type if outputs.is_tensor_spec() else spec.type.to_numpy())
    return pa.string() if dtype.kind in "OUS" else pa.from_numpy_dtype(dtype)


@functools.lru_cache(maxsize=16)
def _model_info(tracking_uri: str, load_uri: str):
    """A version's MLmodel never changes: read it once per driver (a stream asks for it every micro-batch)."""
    return mlflow.models.get_model_info(load_uri)


@functools.lru_cache(maxsize=8)
def _probability_kind(model_dir: str) -> str | None:
    """Whether the classifier in `model_dir` gives probabilities (one per shipped model: dirs are unique)."""
    model = load_model(model_dir, "sklearn")
    classes = getattr(model, "classes_", None)
    if classes is None or not hasattr(model, "predict_proba"):
        return None
    return "binary" if len(classes) == 2 else "multiclass"


def _probability_spark_type(kind: str) -> T.DataType:
    return T.DoubleType() if kind == "binary" else T.ArrayType(T.DoubleType())

"""Library API: score Spark DataFrames with a model URI, for users' own Spark code and for our jobs.

    from scoring.batch.dataframe import prediction_column, score_dataframe

    scored = score_dataframe(spark, df, "models:/churn/production").frame   # ids + prediction (+ probability) ...
    df.withColumn("churn", prediction_column(spark, "models:/churn/production"))  # a Column, bound by name

Both bind input columns to the model's signature by name. `strategy` picks the scoring path (scoring.batch.strategies);
`features_column` takes the features from one array / MLlib vector column instead of named columns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import numpy as np
import pyarrow as pa
from mlflow.models import ModelSignature
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_type

from common.bounded_cache import MODEL_CACHE_SIZE
from common.columns import col
from common.errors import UserInputError
from common.model_uri import ResolvedModel, resolve_model_uri
from scoring.batch.executor import score_struct_arrays
from scoring.batch.plan import PythonModelPlan, plan_python_scoring
from scoring.batch.spark_flavor import load_pipeline, transform_scored
from scoring.batch.strategies import check_strategy, dataframe_strategy, score_in_python
from scoring.input_schema import FeatureBinding, bind_features, expand_features_column, require_named_signature
from scoring.per_group_guard import check_groups_known, group_column

SCORED_AT = "scored_at"  # when the rows were scored (UTC): monitor's default time column, as serve's inference log
OUTPUT_COLUMNS = ("prediction", "probability", "model_name", "model_version", SCORED_AT)
SCORED_AT_ARROW_TYPE = pa.timestamp("us", tz="UTC")  # Spark's TIMESTAMP written as TIMESTAMP(MICROS), an instant


def scoring_time() -> datetime:
    """One value for every row of a job run (score_batch) or of a micro-batch (score_stream): the rows scored
    together carry the same time, so a monitoring window holds whole runs."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScoredFrame:
    frame: DataFrame  # passthrough ids + prediction (+ probability) + model_name + model_version + scored_at
    model: ResolvedModel
    binding: FeatureBinding
    flavor: str  # "spark" (scored in the JVM), "sklearn" or "python_function" (scored in Python workers)
    strategy: str = "spark_transform"  # the path taken: arrow, pandas, grouped, spark_udf or spark_transform
    observation: Observation | None = None  # counts gathered while the frame is written (unseen categories)
    model_size_bytes: int | None = None  # in-memory size of one copy of a Python model (scoring.batch.model_size)
    batch_rows: int | None = None  # rows per Arrow batch suited to this model and row width


def score_dataframe(
    spark: SparkSession, df: DataFrame, model_uri: str, strategy: str = "auto", features_column: str | None = None
) -> ScoredFrame:
    """Resolve `model_uri` once, bind `df`'s columns to the model's signature by name, and score lazily.

    An MLlib model runs through its own `transform` in the JVM; a scikit-learn / pyfunc model is loaded once per
    Python worker (not per batch or row) and scored with `strategy` (default: Arrow batches straight to NumPy).
    """
    check_strategy(strategy)
    resolved = resolve_model_uri(mlflow.MlflowClient(), model_uri)
    return score_resolved(spark, df, resolved, strategy, features_column)


def score_resolved(
    spark: SparkSession,
    df: DataFrame,
    resolved: ResolvedModel,
    strategy: str = "auto",
    features_column: str | None = None,
    scored_at: datetime | None = None,
    keep_features: bool = False,
) -> ScoredFrame:
    """As score_dataframe, for a model already resolved; `scored_at` (default: now) goes on every row.
    `keep_features`: the model's input columns go to the output too (an inference table `monitor` profiles)."""
    check_strategy(strategy)
    info = model_info(mlflow.get_tracking_uri(), resolved.load_uri)
    if features_column:
        names = require_named_signature(info.signature, resolved.label).inputs.input_names()
        df = expand_features_column(df, features_column, names)
    routed_by = group_column(info.metadata)
    binding, planned = bind_and_plan(spark, df, resolved, info, keep=kept_inputs(info, keep_features))
    selected = binding.select(df)
    observation = size = batch_rows = None
    path = dataframe_strategy(strategy, resolved.label, spark_model=planned is None)
    if planned is None:
        prediction_type = from_arrow_type(prediction_arrow_type(info.signature))
        scored, observation = transform_scored(
            load_pipeline(resolved.load_uri), selected, binding.passthrough, prediction_type
        )
        flavor = "spark"
    else:
        if routed_by:
            check_groups_known(selected, info.metadata, planned.model_dir, resolved.label)
        scored = score_in_python(spark, path, selected, planned.plan, resolved.load_uri)
        flavor, size, batch_rows = planned.plan.flavor, planned.size_bytes, planned.plan.chunk_rows
    scored = scored.withColumns(
        {
            "model_name": F.lit(resolved.model_name).cast("string"),
            "model_version": F.lit(resolved.model_version).cast("string"),
            SCORED_AT: F.lit(scored_at or scoring_time()).cast("timestamp"),
        }
    )
    return ScoredFrame(scored, resolved, binding, flavor, path, observation, size, batch_rows)


def prediction_column(spark: SparkSession, model_uri: str, df: DataFrame | None = None) -> Column:
    """A Column holding the model's prediction, for `select` / `withColumn` in users' own Spark code.

    The features go to the model as one struct of the signature's columns, so they bind by name (any column
    order, no 255-argument limit). With `df`, its columns are checked against the signature now (missing
    columns, wrong types), else when the column is used. The model is loaded once per Python worker.
    """
    from pyspark.sql.functions import arrow_udf

    resolved = resolve_model_uri(mlflow.MlflowClient(), model_uri)
    info = model_info(mlflow.get_tracking_uri(), resolved.load_uri)
    signature = require_named_signature(info.signature, resolved.label)
    if "spark" in info.flavors:
        raise UserInputError(
            f"model {resolved.label} is a Spark MLlib model: it scores through its own transform in the JVM, not "
            "as a column expression; use score_dataframe"
        )
    if df is not None:
        features = bind_features(df, signature, resolved.label).feature_columns
    else:
        features = [col(s.name).cast(s.type.to_spark()).alias(s.name) for s in signature.inputs.inputs]
    names = signature.inputs.input_names()
    types = [s.type.to_spark() for s in signature.inputs.inputs]
    planned = plan_python_scoring(spark, resolved, info.flavors, names, [], types, prediction_arrow_type(signature))
    plan = planned.plan

    def predict(arrays: Iterator[pa.Array]) -> Iterator[pa.Array]:
        yield from score_struct_arrays(arrays, plan)

    udf = arrow_udf(predict, from_arrow_type(plan.prediction_type))  # Iterator -> Iterator: told by the type hints
    return udf(F.struct(*features))


def prediction_arrow_type(signature: ModelSignature) -> pa.DataType:
    outputs = signature.outputs
    if outputs is None or len(outputs.inputs) != 1:
        return pa.float64()
    spec = outputs.inputs[0]
    dtype = np.dtype(spec.type if outputs.is_tensor_spec() else spec.type.to_numpy())
    return pa.string() if dtype.kind in "OUS" else pa.from_numpy_dtype(dtype)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def model_info(tracking_uri: str, load_uri: str):
    """A version's MLmodel never changes: read it once per driver (a stream asks for it every micro-batch)."""
    return mlflow.models.get_model_info(load_uri)


def refuse_output_clash(passthrough) -> None:
    """An input column named like one scoring adds would be overwritten: refused, naming it, before anything runs."""
    clash = [c for c in OUTPUT_COLUMNS if c in passthrough]
    if clash:
        raise UserInputError(f"input already has column(s) {', '.join(clash)}, which scoring adds; rename them")


def kept_inputs(info, keep_features: bool) -> tuple[str, ...]:
    """The model inputs that also go to the output: every one with `keep_features`, else only a per-group model's
    group column (it says which model scored each row)."""
    signature = info.signature
    if keep_features and signature is not None and signature.inputs.has_input_names():  # else binding refuses it
        return tuple(signature.inputs.input_names())
    routed_by = group_column(info.metadata)
    return (routed_by,) if routed_by else ()


def bind_and_plan(
    spark: SparkSession | None, df, resolved: ResolvedModel, info, keep: tuple[str, ...] = ()
) -> tuple[FeatureBinding, PythonModelPlan | None]:
    """What every strategy does first: bind the input's columns to the signature by name (`df`: a DataFrame, or
    anything with its `schema` and `columns`), refuse a column named like an output, and plan a Python model's
    scoring once (None for an MLlib model, which its own transform plans)."""
    binding = bind_features(df, info.signature, resolved.label, keep=keep)
    refuse_output_clash(binding.passthrough)
    if "spark" in info.flavors:
        return binding, None
    prediction_type = prediction_arrow_type(info.signature)
    features, passthrough = binding.features, binding.passthrough
    planned = plan_python_scoring(
        spark, resolved, info.flavors, features, passthrough, list(binding.types), prediction_type
    )
    return binding, planned

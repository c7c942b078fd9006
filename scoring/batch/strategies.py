"""The ways a scikit-learn / pyfunc model can score a DataFrame in Python workers, behind one output contract:
the pass-through columns, `prediction` (and `probability` for classifiers), rows out equal to rows in.

- `arrow` (what `auto` picks for a DataFrame): mapInArrow; Arrow batches straight to NumPy, the model loaded once
  per worker.
- `pandas`: mapInPandas, the model loaded once per worker; every batch goes through pandas.
- `grouped`: rows in explicit groups: rows hashed into buckets, one applyInPandas call per bucket (a shuffle, and a
  whole bucket in one worker's memory).
- `spark_udf`: MLflow's own `mlflow.pyfunc.spark_udf`, bound by name through a struct. It calls the pyfunc
  `predict` only, so classifiers get `probability` as null with this strategy.

`score_batch` has one more, `files` (scoring.files.strategy; what `auto` picks there whenever it applies): Spark
schedules slices of the input's Parquet files and each task reads, scores and writes its slice with pyarrow, so the
rows never pass through the JVM.

MLlib models always run through their own `transform` in the JVM (scoring.batch.spark_flavor): the Python strategies
would only add a JVM -> Python -> JVM round trip. A strategy other than `auto` is ignored for them, with a log line,
so a stream that follows the registry keeps going when a promotion changes the model's flavor.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from common.columns import col, with_aliases
from common.errors import UserInputError
from scoring.batch.executor import ScoringPlan, score_batches, score_frames, score_group

_logger = logging.getLogger(__name__)

STRATEGIES = ("auto", "arrow", "pandas", "grouped", "spark_udf")  # for a DataFrame (score_dataframe, streams)
BATCH_STRATEGIES = (*STRATEGIES, "files")  # score_batch reads files, and can leave them to Python tasks
_BUCKET = "_scoring_bucket"


def check_strategy(strategy: str, allowed: tuple[str, ...] = STRATEGIES) -> str:
    if strategy == "files" and allowed == STRATEGIES:
        raise UserInputError("strategy 'files' scores Parquet files (score_batch), not a DataFrame or a stream")
    if strategy not in allowed:
        raise UserInputError(f"unknown scoring strategy {strategy!r}; choose one of: {', '.join(allowed)}")
    return strategy


def python_strategy(strategy: str) -> str:
    """The path a scikit-learn / pyfunc model takes: `auto` is the fastest measured here, Arrow to NumPy."""
    return "arrow" if strategy == "auto" else strategy


def spark_model_strategy(strategy: str, model_label: str) -> str:
    if strategy != "auto":
        _logger.info(
            "strategy %r ignored for %s: an MLlib model scores through its own transform in the JVM",
            strategy,
            model_label,
        )
    return "spark_transform"


def output_schema(selected: DataFrame, plan: ScoringPlan) -> T.StructType:
    fields = [selected.schema[name] for name in plan.passthrough]
    fields.append(T.StructField("prediction", from_arrow_type(plan.prediction_type)))
    if plan.probability:
        fields.append(T.StructField("probability", probability_type(plan.probability)))
    return T.StructType(fields)


def probability_type(kind: str) -> T.DataType:
    return T.DoubleType() if kind == "binary" else T.ArrayType(T.DoubleType())


def score_in_python(
    spark: SparkSession, strategy: str, selected: DataFrame, plan: ScoringPlan, load_uri: str
) -> DataFrame:
    """`selected` holds the pass-through columns and the features (by name, cast to the signature's types)."""
    schema = output_schema(selected, plan)
    if strategy != "spark_udf":
        selected, plan = _without_dotted_names(selected, plan)
    if strategy == "arrow":
        return selected.mapInArrow(partial(score_batches, plan=plan), schema)
    if strategy == "pandas":
        return selected.mapInPandas(partial(score_frames, plan=plan), schema)
    if strategy == "grouped":
        return _grouped(spark, selected, plan, schema)
    if strategy == "spark_udf":
        return _spark_udf(spark, selected, plan, schema, load_uri)
    raise AssertionError(f"unhandled strategy {strategy!r}")


def _without_dotted_names(selected: DataFrame, plan: ScoringPlan) -> tuple[DataFrame, ScoringPlan]:
    """Columns PySpark's map calls cannot look up travel under an alias; workers give them their names back."""
    aliased, renamed = with_aliases(selected)
    return aliased, replace(plan, renamed=renamed)


def _grouped(spark: SparkSession, selected: DataFrame, plan: ScoringPlan, schema: T.StructType) -> DataFrame:
    """Buckets from a hash of each row's values: deterministic, so a retried task regroups the same rows (a random
    bucket would not). As many buckets as shuffle partitions: each bucket is one pandas frame in one worker."""
    buckets = max(int(spark.conf.get("spark.sql.shuffle.partitions")), spark.sparkContext.defaultParallelism)
    bucketed = selected.withColumn(_BUCKET, F.pmod(F.xxhash64(*[col(c) for c in selected.columns]), F.lit(buckets)))

    def score_bucket(frame):  # a plain function: Spark looks for type hints on it and warns on a partial
        return score_group(frame, plan)

    return bucketed.groupBy(_BUCKET).applyInPandas(score_bucket, schema)


def _spark_udf(spark: SparkSession, selected: DataFrame, plan: ScoringPlan, schema, load_uri: str) -> DataFrame:
    import mlflow.pyfunc

    udf = mlflow.pyfunc.spark_udf(spark, load_uri, result_type=schema["prediction"].dataType, env_manager="local")
    # One struct argument: MLflow hands the model a DataFrame with the struct's field names (by name, and no
    # 255-argument limit), where positional columns would be bound by position.
    columns = [col(name) for name in plan.passthrough]
    columns.append(udf(F.struct(*[col(name) for name in plan.features])).alias("prediction"))
    if plan.probability:
        _logger.info("strategy spark_udf calls the model's predict only: probability is null")
        columns.append(F.lit(None).cast(schema["probability"].dataType).alias("probability"))
    return selected.select(*columns)

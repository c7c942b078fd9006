"""The ways a model can score, as one table: name -> what it applies to -> how it runs. Every strategy keeps one
output contract: the pass-through columns, `prediction` (and `probability` for classifiers), rows out equal to rows in.

- `files`, score_batch's Parquet input (scoring.files.strategy says when): Spark schedules slices of the files;
  each task reads, scores and writes its slice with pyarrow, so the rows never pass through the JVM.
- `arrow`, any DataFrame: mapInArrow; Arrow batches straight to NumPy, the model loaded once per worker.
- `pandas`, any DataFrame: mapInPandas, the model loaded once per worker; every batch goes through pandas.
- `grouped`, any DataFrame: rows hashed into buckets, one applyInPandas call per bucket (a shuffle, and a whole
  bucket in one worker's memory).
- `spark_udf`, any DataFrame: MLflow's own `mlflow.pyfunc.spark_udf`, bound by name through a struct. It calls the
  pyfunc `predict` only, so classifiers get `probability` as null with this strategy.

`auto` is the first of AUTO_ORDER that applies to the job: `files` where score_batch can use it, else `arrow`.

MLlib models always run through their own `transform` in the JVM (scoring.batch.spark_flavor): the Python strategies
would only add a JVM -> Python -> JVM round trip. A strategy other than `auto` is ignored for them, with a log line,
so a stream that follows the registry keeps going when a promotion changes the model's flavor.

Adding a strategy: a row in STRATEGY_TABLE (and, if `auto` should prefer it, a place in AUTO_ORDER); README,
"Add a scoring strategy".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_type

from common import spark_compat
from common.columns import col, with_aliases
from common.errors import UserInputError
from scoring.batch.executor import ScoringPlan, score_batches, score_frames, score_group

_logger = logging.getLogger(__name__)

ANY_DATAFRAME = "a DataFrame"  # score_dataframe, streams, and score_batch's Spark path
PARQUET_FILES = "Parquet files (score_batch)"  # score_batch's input, read by the strategy itself
AUTO = "auto"
SPARK_TRANSFORM = "spark_transform"  # the path an MLlib model takes, whatever was asked
_BUCKET = "_scoring_bucket"


@dataclass(frozen=True)
class Strategy:
    applies_to: str  # ANY_DATAFRAME or PARQUET_FILES
    # ANY_DATAFRAME: (spark, selected, plan, schema, load_uri) -> the scored DataFrame; PARQUET_FILES: scoring.files
    score: Callable[..., DataFrame] | None
    aliases_dotted_names: bool = True  # PySpark's map calls cannot look up a dotted column name


def _map_in_arrow(spark, selected, plan, schema, load_uri):
    return selected.mapInArrow(partial(score_batches, plan=plan), schema)


def _map_in_pandas(spark, selected, plan, schema, load_uri):
    return selected.mapInPandas(partial(score_frames, plan=plan), schema)


def _grouped(spark: SparkSession, selected: DataFrame, plan: ScoringPlan, schema: T.StructType, load_uri) -> DataFrame:
    """Buckets from a hash of each row's values: deterministic, so a retried task regroups the same rows (a random
    bucket would not). As many buckets as shuffle partitions: each bucket is one pandas frame in one worker."""
    buckets = max(int(spark.conf.get("spark.sql.shuffle.partitions")), spark_compat.default_parallelism(spark))
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


STRATEGY_TABLE = {
    "arrow": Strategy(ANY_DATAFRAME, _map_in_arrow),
    "pandas": Strategy(ANY_DATAFRAME, _map_in_pandas),
    "grouped": Strategy(ANY_DATAFRAME, _grouped),
    "spark_udf": Strategy(ANY_DATAFRAME, _spark_udf, aliases_dotted_names=False),
    "files": Strategy(PARQUET_FILES, None),
}
AUTO_ORDER = ("files", "arrow")  # what `auto` takes: the first that applies (files only where score_batch can)

STRATEGIES = (AUTO, *[name for name, s in STRATEGY_TABLE.items() if s.applies_to == ANY_DATAFRAME])
BATCH_STRATEGIES = (AUTO, *STRATEGY_TABLE)  # score_batch reads files, and can leave them to Python tasks


def check_strategy(strategy: str, allowed: tuple[str, ...] = STRATEGIES) -> str:
    """`auto` or a strategy of the table that applies here (STRATEGIES: to a DataFrame; score_batch: every one)."""
    if strategy in STRATEGY_TABLE and strategy not in allowed:
        kind = STRATEGY_TABLE[strategy].applies_to
        raise UserInputError(f"strategy {strategy!r} scores {kind}, not a DataFrame or a stream")
    if strategy not in allowed:
        raise UserInputError(f"unknown scoring strategy {strategy!r}; choose one of: {', '.join(allowed)}")
    return strategy


def may_use(asked: str, name: str) -> bool:
    """Whether a job asked for `asked` tries strategy `name`: asked for by name, or `auto` and `name` comes before
    the DataFrame default in AUTO_ORDER."""
    return asked == name or (asked == AUTO and name in AUTO_ORDER)


def not_applicable(asked: str, name: str, reason: str) -> str:
    """Strategy `name` cannot score this job: an error when it was asked for by name, else (auto) the reason, logged,
    and the next strategy in AUTO_ORDER scores it."""
    if asked == name:
        raise UserInputError(f"strategy {name} does not apply to this job: {reason}")
    if asked == AUTO:
        _logger.info("scoring path not %s: %s", name, reason)
    return reason


def dataframe_strategy(asked: str, model_label: str, spark_model: bool) -> str:
    """The path a DataFrame takes: an MLlib model's own transform, else the strategy asked for, `auto` being the
    first DataFrame strategy of AUTO_ORDER."""
    if spark_model:
        if asked != AUTO:
            _logger.info(
                "strategy %r ignored for %s: an MLlib model scores through its own transform in the JVM",
                asked,
                model_label,
            )
        return SPARK_TRANSFORM
    if asked != AUTO:
        return asked
    return next(name for name in AUTO_ORDER if STRATEGY_TABLE[name].applies_to == ANY_DATAFRAME)


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
    row = STRATEGY_TABLE[strategy]
    schema = output_schema(selected, plan)
    if row.aliases_dotted_names:
        selected, plan = _without_dotted_names(selected, plan)
    return row.score(spark, selected, plan, schema, load_uri)


def _without_dotted_names(selected: DataFrame, plan: ScoringPlan) -> tuple[DataFrame, ScoringPlan]:
    """Columns PySpark's map calls cannot look up travel under an alias; workers give them their names back."""
    aliased, renamed = with_aliases(selected)
    return aliased, replace(plan, renamed=renamed)

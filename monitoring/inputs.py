"""The tables `monitor` reads: the inference table (what score_batch, score_stream and serve's log write: features,
`prediction`, optional `probability`, `model_name`, `model_version`, the scoring time) and, optionally, the true
labels joined on ids. Every refusal is one line naming the table, the column and what is there instead.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.datasets import read_spark_table
from common.errors import UserInputError
from common.profile import category_text, class_probability_column
from monitoring.windows import WINDOW_KEY, WINDOW_TIME, WindowSpec, with_windows

VERSION = "model_version"
MODEL_NAME = "model_name"
SLICE = "__monitor_slice"
LABELLED = "__monitor_labelled"
PROBABILITY = "probability"
_LABEL_ID = "__monitor_label_id_{}"


@dataclass(frozen=True)
class WindowCounts:
    """One (window, version)'s rows, labelled rows and a digest of its (ids, label) pairs: a window whose digest
    changed since it was computed (labels arrived, or rows came late) is computed again."""

    window: int
    version: str
    rows: int
    labelled: int
    digest: str
    first: float | None  # the first and last row time (epoch seconds)
    last: float | None


def read_inference(
    spark: SparkSession, path: str, model_name: str, spec: WindowSpec, time_column: str, slice_column: str | None
) -> DataFrame:
    df = read_spark_table(spark, path)
    source = f"inference table {path}"
    if VERSION not in df.columns:
        raise UserInputError(
            f"{source} has no {VERSION!r} column: monitor reads what score_batch, score_stream and serve write, "
            f"which name the model version on every row (columns: {', '.join(df.columns)})"
        )
    if MODEL_NAME in df.columns:
        df = df.where(col(MODEL_NAME) == model_name)
    if slice_column and slice_column not in df.columns:
        raise UserInputError(f"slice column {slice_column!r} is not in {source} (columns: {', '.join(df.columns)})")
    df = with_windows(df, spec, time_column, source)
    df = df.withColumn(VERSION, col(VERSION).cast("string"))
    if slice_column:  # a missing slice value is a slice of its own, not the whole table (which is null)
        df = df.withColumn(SLICE, F.coalesce(col(slice_column).cast("string"), F.lit("(null)")))
    return df


def with_class_probabilities(df: DataFrame, profile: dict) -> DataFrame:
    """A multiclass model's `probability` array (one element per class, in the classes' order) as one numeric
    column per class, named as the reference profile names them, so each is profiled and compared like any
    column; the array stays for the label metrics (log loss, ROC AUC)."""
    classes = profile.get("classes") or []
    if PROBABILITY not in df.columns or len(classes) < 3:
        return df
    if not isinstance(df.schema[PROBABILITY].dataType, T.ArrayType):
        return df
    return df.withColumns(
        {
            class_probability_column(category_text(c)): F.element_at(col(PROBABILITY), i + 1).cast("double")
            for i, c in enumerate(classes)
        }
    )


def names_in_table(df: DataFrame) -> list[str]:
    """The model names an inference table holds (a short aggregate), for the error when it holds none of ours."""
    return sorted(r[0] for r in df.select(col(MODEL_NAME)).distinct().limit(20).collect() if r[0] is not None)


def join_labels(spark: SparkSession, df: DataFrame, path: str, ids: list[str], label: str) -> DataFrame:
    """`df` with `label` from the labels table (null where no label arrived yet) and LABELLED. Labels with an id
    given twice are refused with the count: which of the two is true cannot be told."""
    if not ids:
        raise UserInputError("labels need ids=<the column(s) that identify a scored row in both tables>")
    labels = read_spark_table(spark, path)
    for columns, name in ((labels.columns, f"labels table {path}"), (df.columns, "inference table")):
        missing = [c for c in ids if c not in columns]
        if missing:
            raise UserInputError(f"id column(s) {', '.join(missing)} not in the {name} (columns: {', '.join(columns)})")
    if label not in labels.columns:
        raise UserInputError(
            f"labels table {path} has no label column {label!r} (the label the model was trained on); "
            f"columns: {', '.join(labels.columns)}"
        )
    keyed = labels.where(functools.reduce(operator.and_, [col(c).isNotNull() for c in ids])).select(
        *[col(c).alias(_LABEL_ID.format(i)) for i, c in enumerate(ids)], col(label).alias(label)
    )
    keys = [_LABEL_ID.format(i) for i in range(len(ids))]
    duplicated = keyed.groupBy(*keys).count().where(F.col("count") > 1).agg(F.count("*"), F.sum("count")).first()
    if duplicated[0]:
        raise UserInputError(
            f"labels table {path} gives {duplicated[0]} id(s) more than one label ({duplicated[1]} rows); "
            "each scored row needs exactly one true label"
        )
    condition = [col(c) == F.col(key) for c, key in zip(ids, keys, strict=True)]
    scored = df.drop(label) if label in df.columns else df
    joined = scored.join(keyed, on=condition, how="left").drop(*keys)
    return joined.withColumn(LABELLED, col(label).isNotNull())


def window_counts(df: DataFrame, ids: list[str], label: str | None) -> tuple[list[WindowCounts], int]:
    """Each (window, version)'s counts and digest, and how many rows have no window (no time): one small job."""
    labelled = F.col(LABELLED) if LABELLED in df.columns else F.lit(False)
    pair = F.xxhash64(*[col(c) for c in ids], col(label)) if label and LABELLED in df.columns else F.lit(0)
    rows = (
        df.groupBy(WINDOW_KEY, VERSION)
        .agg(
            F.count("*").alias("rows"),
            F.count_if(labelled).alias("labelled"),
            F.bit_xor(F.when(labelled, pair)).alias("digest"),
            F.min(WINDOW_TIME).alias("first"),
            F.max(WINDOW_TIME).alias("last"),
        )
        .collect()
    )
    counts = [
        WindowCounts(
            r[WINDOW_KEY],
            r[VERSION],
            r["rows"],
            r["labelled"],
            f"{r['rows']}:{r['labelled']}:{r['digest']}",
            r["first"],
            r["last"],
        )
        for r in rows
        if r[WINDOW_KEY] is not None and r[VERSION] is not None
    ]
    unplaced = sum(r["rows"] for r in rows if r[WINDOW_KEY] is None or r[VERSION] is None)
    return sorted(counts, key=lambda c: (c.window, c.version)), unplaced

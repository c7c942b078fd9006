"""The monitoring tables under `output`, modelled on Lakehouse Monitoring's profile and drift metrics tables, and
monitor's own small state table. All three are Parquet, partitioned by model_name and window_key; a run writes only
the windows it computed (dynamic partition overwrite): a new window is appended, a window computed again (its labels
changed) replaces its own earlier rows, and every other window stays as it was.

    profile_metrics  one row per window x version x slice x column x statistic (quantiles and bins: one per point)
    drift_metrics    one row per window x version x slice x column x statistic x comparison (baseline or
                     previous_window), with the threshold and whether the value crossed it
    monitor_state    one row per window x version x slice: the digest of its rows and labels, its verdict, and its
                     profile as JSON (so the next window's "previous window" needs no recomputation)

slice_key and slice_value are null on the whole table's rows, as in Lakehouse Monitoring.
"""

from __future__ import annotations

import json

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.hadoop_fs import HadoopFS
from monitoring.aggregation import GroupProfile
from monitoring.groups import GroupKey

PROFILE_TABLE, DRIFT_TABLE, STATE_TABLE = "profile_metrics", "drift_metrics", "monitor_state"
PARTITIONS = ("model_name", "window_key")

_S, _D, _L, _B, _TS = T.StringType(), T.DoubleType(), T.LongType(), T.BooleanType(), T.TimestampType()
_CONTEXT = [
    ("window_start", _TS),
    ("window_end", _TS),
    ("granularity", _S),  # the window parameter: 1d, 1h, 15m, batch ...
    ("model_version", _S),
    ("slice_key", _S),
    ("slice_value", _S),
]
_RUN = [("run_id", _S), ("computed_at", _TS), ("model_name", _S), ("window_key", _L)]


def _schema(fields: list[tuple[str, T.DataType]]) -> T.StructType:
    return T.StructType([T.StructField(name, kind) for name, kind in [*_CONTEXT, *fields, *_RUN]])


SCHEMAS = {
    PROFILE_TABLE: _schema(
        [("column_name", _S), ("role", _S), ("statistic", _S), ("point", _D), ("category", _S), ("value", _D)]
    ),
    DRIFT_TABLE: _schema(
        [
            ("column_name", _S),
            ("role", _S),
            ("statistic", _S),
            ("comparison", _S),
            ("compared_window_key", _L),
            ("value", _D),
            ("threshold", _D),
            ("drifted", _B),
            ("status", _S),
        ]
    ),
    STATE_TABLE: _schema([("digest", _S), ("verdict", _S), ("profile", _S)]),
}


def write_tables(spark: SparkSession, output: str, rows: dict[str, list[dict]]) -> None:
    """The state table last: a run that fails before it computes its windows again next time, and their rows
    replace what it wrote."""
    for table in (PROFILE_TABLE, DRIFT_TABLE, STATE_TABLE):
        if not rows[table]:
            continue
        schema = SCHEMAS[table]
        # Through pandas and Arrow: tens of thousands of small rows cross to the JVM in one batch, not one by one.
        # Object columns keep a missing whole number a None (not a float NaN) until Arrow types it.
        columns = {f.name: pd.Series([r.get(f.name) for r in rows[table]], dtype=object) for f in schema.fields}
        frame = spark.createDataFrame(pd.DataFrame(columns), schema)
        (
            frame.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(*PARTITIONS)
            .parquet(f"{output.rstrip('/')}/{table}")
        )


def read_table(spark: SparkSession, output: str, table: str, model_name: str) -> DataFrame | None:
    """A monitoring table's rows of one model, read with the declared schema (a model named '12' stays a string);
    None before the first run wrote it."""
    files = HadoopFS(spark, output)
    if not files.exists(files.path(table)):
        return None
    df = spark.read.schema(SCHEMAS[table]).parquet(files.uri(files.path(table)))
    return df.where(F.col("model_name") == model_name)


def read_state(spark: SparkSession, output: str, model_name: str) -> list[dict]:
    """What earlier runs computed: one dict per window x version x slice, without the profiles (they are read
    only for the windows that are needed)."""
    df = read_table(spark, output, STATE_TABLE, model_name)
    if df is None:
        return []
    columns = [
        "window_key",
        "model_version",
        "slice_key",
        "slice_value",
        "digest",
        "verdict",
        "window_start",
        "window_end",
        "granularity",
    ]
    return [r.asDict() for r in df.select(*columns).collect()]


def read_profiles(spark: SparkSession, output: str, model_name: str, windows: set[int]) -> dict[GroupKey, GroupProfile]:
    df = read_table(spark, output, STATE_TABLE, model_name) if windows else None
    if df is None:
        return {}
    found = {}
    for r in (
        df.where(F.col("window_key").isin(sorted(windows)))
        .select("window_key", "model_version", "slice_value", "profile")
        .collect()
    ):
        stored = json.loads(r["profile"])
        found[GroupKey(r["window_key"], r["model_version"], r["slice_value"])] = GroupProfile(**stored)
    return found


def profile_json(profile: GroupProfile) -> str:
    return json.dumps(
        {"rows": profile.rows, "labelled": profile.labelled, "columns": profile.columns, "metrics": profile.metrics}
    )

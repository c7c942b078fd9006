"""Category counts per window x version (x slice) for every categorical column in one aggregation: each row is
turned into (column, value) pairs, counted per group, and only the values the driver needs come back: those the
version's baseline names (so the two can be compared value by value) and the window's own TOP_CATEGORIES most
frequent (so new values are seen). The rest stays in Spark; its total is the column's count minus these."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.profile import CATEGORICAL, TOP_CATEGORIES
from monitoring.baselines import Baseline
from monitoring.groups import GroupKey, group_key, grouped, key_columns, partition_columns, whole_marker
from monitoring.inputs import VERSION

_INDEX, _VALUE, _COUNT = "__column_index", "__value", "__count"


def category_counts(
    df: DataFrame, value_columns: tuple[str, ...], names: tuple[str, ...], baselines: dict[str, Baseline]
) -> dict[tuple[GroupKey, str], tuple[dict[str, int], int]]:
    """{(group, column name): ({value: count} of the kept values, distinct values in the group)}. `value_columns`
    hold each column's values as category text, in the order of `names`."""
    structs = ", ".join(f"named_struct('{_INDEX}', {i}, '{_VALUE}', {c})" for i, c in enumerate(value_columns))
    exploded = df.select(*key_columns(df), F.expr(f"inline(array({structs}))")).where(F.col(_VALUE).isNotNull())
    counts = grouped(exploded, _INDEX, _VALUE).agg(F.count("*").alias(_COUNT), *whole_marker(exploded))
    in_group = Window.partitionBy(*partition_columns(counts), _INDEX)
    ranked = counts.withColumn("__rank", F.row_number().over(in_group.orderBy(F.desc(_COUNT), _VALUE)))
    ranked = ranked.withColumn("__distinct", F.count("*").over(in_group))
    named = _baseline_categories(df.sparkSession, names, baselines)
    kept = ranked.join(F.broadcast(named), on=[VERSION, _INDEX, _VALUE], how="left")
    kept = kept.where((F.col("__rank") <= TOP_CATEGORIES) | F.col("__named").isNotNull())

    found: dict[tuple[GroupKey, str], tuple[dict[str, int], int]] = {}
    for row in kept.collect():
        key = (group_key(row), names[row[_INDEX]])
        values, _ = found.get(key, ({}, 0))
        values[row[_VALUE]] = row[_COUNT]
        found[key] = (values, row["__distinct"])
    return found


def _baseline_categories(spark: SparkSession, columns: tuple[str, ...], baselines: dict[str, Baseline]) -> DataFrame:
    rows = [
        (version, i, value, True)
        for version, baseline in baselines.items()
        for i, name in enumerate(columns)
        if (summary := baseline.profile["columns"].get(name)) and summary["kind"] == CATEGORICAL
        for value in summary["categories"]
    ]
    schema = T.StructType(
        [
            T.StructField(VERSION, T.StringType()),
            T.StructField(_INDEX, T.IntegerType()),
            T.StructField(_VALUE, T.StringType()),
            T.StructField("__named", T.BooleanType()),
        ]
    )
    return spark.createDataFrame(rows, schema)

"""Every window's profile from a few aggregations over the scored rows, each grouped by window x version (x slice):

1. sums: each numeric column's count, min, max, mean and standard deviation, each categorical column's non-null
   count, row and labelled-row counts and the label metrics' sums;
2. bins: each numeric column's histogram over its version's baseline bins, every row turned into (column, bin)
   pairs (the bin found by bisection among the version's edges) and counted;
3. quantiles: each numeric column's approximate quantiles;
4. categories, counted in monitoring/category_counts.py.

Only aggregates reach the driver, one row per group. The passes are apart because each is cheap alone: a quantile
sketch is an object aggregate that makes Spark evaluate every aggregate of its pass one by one, and the histogram
as hundreds of conditional counts beside the sums cost more than its own pass. Spark generates one method for a
whole pass's rows (whole-stage code generation, allowed for the sums' hundred-odd fields, CODEGEN_MAX_FIELDS); a
method over 8,000 bytes of bytecode is never compiled by HotSpot's JIT and runs interpreted, so larger ones fall
back to Spark's per-expression code (HUGE_METHOD_LIMIT, Spark's advice for HotSpot): on 2 million rows x 25 columns
in 10 windows the whole job took 81 s with one sums-and-histogram pass at Spark's default limit, 42 s like this.

Quantiles come from Spark's percentile_approx with accuracy QUANTILE_ACCURACY: each is a value of the column whose
rank is within rows / QUANTILE_ACCURACY of the exact quantile's; the levels 0 and 1 are the exact min and max. A
rank error of 1/1,000 is a tenth of the 0.01 step of the 101-level grids the Kolmogorov-Smirnov statistic and the
Wasserstein distance are read from (monitoring/drift.py), and costs half the time of 1/10,000.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from common.columns import col
from common.parquet_time import session_setting
from common.profile import CATEGORICAL, NUMERIC, QUANTILE_LEVELS
from monitoring.baselines import Baseline
from monitoring.category_counts import category_counts
from monitoring.groups import GroupKey, group_key, grouped, key_columns, whole_marker
from monitoring.inputs import LABELLED, VERSION
from monitoring.label_metrics import PREDICTION, PROBABILITY, MetricSpec
from monitoring.values import category_value, numeric_value

QUANTILE_ACCURACY = 1_000
# Spark stops generating code for a plan whose rows have more than spark.sql.codegen.maxFields (100) fields; the
# sums pass has 2 + 5 per numeric column + 1 per categorical one: about 110 for 25 columns.
CODEGEN_MAX_FIELDS = "2000"
HUGE_METHOD_LIMIT = "8000"  # HotSpot's own limit for compiling a method (HugeMethodLimit); Spark's default is 65535
_INNER_LEVELS = QUANTILE_LEVELS[1:-1]


@dataclass(frozen=True)
class ProfiledColumns:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    roles: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupProfile:
    rows: int
    labelled: int
    columns: dict[str, dict]  # column -> summary, in common/profile.py's format
    metrics: dict[str, float]  # label metrics, when labels were joined and some arrived


def profile_windows(
    df: DataFrame, columns: ProfiledColumns, baselines: dict[str, Baseline], metric_spec: MetricSpec | None
) -> dict[GroupKey, GroupProfile]:
    labelled = metric_spec is not None and LABELLED in df.columns
    metric_inputs = [c for c in (metric_spec.label, PREDICTION, PROBABILITY) if c in df.columns] if labelled else []
    # Each value is computed once in a select (number, bin, category text) and the aggregates are SQL over those
    # named columns: a few calls into the JVM per column.
    prepared = df.select(
        *[c for c in df.columns if c.startswith("__monitor_") or c == VERSION],
        *[col(c).alias(c) for c in metric_inputs],
        *[numeric_value(df, name).alias(f"__x{i}") for i, name in enumerate(columns.numeric)],
        *[F.expr(_bucket_sql(i, name, baselines)).alias(f"__b{i}") for i, name in enumerate(columns.numeric)],
        *[category_value(df, name).alias(f"__c{i}") for i, name in enumerate(columns.categorical)],
    )
    sql = ["count(*) AS rows", f"count_if({LABELLED}) AS labelled" if LABELLED in df.columns else "0L AS labelled"]
    for i in range(len(columns.numeric)):
        x = f"__x{i}"
        sql += [f"count({x}) AS n{i}", f"min({x}) AS min{i}", f"max({x}) AS max{i}", f"avg({x}) AS mean{i}"]
        sql += [f"stddev_samp({x}) AS std{i}"]
    sql += [f"count(__c{i}) AS c{i}" for i in range(len(columns.categorical))]
    aggregates = [F.expr(text) for text in sql] + whole_marker(prepared)
    if labelled:
        aggregates += metric_spec.aggregates(prepared)
    value_columns = tuple(f"__c{i}" for i in range(len(columns.categorical)))
    with _code_generation_limits(prepared.sparkSession):
        rows = grouped(prepared).agg(*aggregates).collect()
        quantiles = _quantiles(prepared, len(columns.numeric))
        bin_counts = _bin_counts(prepared, len(columns.numeric))
        counted = category_counts(prepared, value_columns, columns.categorical, baselines) if value_columns else {}
        auc = metric_spec.roc_auc(prepared.where(F.col(LABELLED))) if labelled else {}

    profiles = {}
    for row in rows:
        key = group_key(row)
        summaries = {}
        for i, name in enumerate(columns.numeric):
            counts = bin_counts.get((key, i), {})
            n_bins = len(_edges(baselines[key.version], name)) + 1
            summaries[name] = _numeric_summary(row, quantiles[key][i], i, [counts.get(j, 0) for j in range(n_bins)])
        for i, name in enumerate(columns.categorical):
            found, distinct = counted.get((key, name), ({}, 0))
            count = row[f"c{i}"]
            summaries[name] = {
                "kind": CATEGORICAL,
                "count": count,
                "nulls": row["rows"] - count,
                "distinct": distinct,
                "categories": found,
                "other": count - sum(found.values()),
            }
        metrics = metric_spec.metrics(row, auc.get(key)) if labelled else {}
        profiles[key] = GroupProfile(row["rows"], row["labelled"], summaries, metrics)
    return profiles


@contextmanager
def _code_generation_limits(spark: SparkSession):
    with (
        session_setting(spark, "spark.sql.codegen.maxFields", CODEGEN_MAX_FIELDS),
        session_setting(spark, "spark.sql.codegen.hugeMethodLimit", HUGE_METHOD_LIMIT),
    ):
        yield


def _quantiles(prepared: DataFrame, numeric: int) -> dict[GroupKey, list]:
    """Each group's inner quantile levels of each numeric column (None for a column without a value)."""
    if not numeric:
        return {}
    levels = ", ".join(f"{level!r}D" for level in _INNER_LEVELS)
    sketch = "percentile_approx(__x{i}, array(" + levels + f"), {QUANTILE_ACCURACY})"
    sketches = [F.expr(sketch.format(i=i)).alias(f"q{i}") for i in range(numeric)]
    rows = grouped(prepared).agg(*sketches, *whole_marker(prepared)).collect()
    return {group_key(row): [row[f"q{i}"] for i in range(numeric)] for row in rows}


def _bin_counts(prepared: DataFrame, numeric: int) -> dict[tuple[GroupKey, int], dict[int, int]]:
    """Each group's count of rows per (numeric column, bin): every row turned into (column, bin) pairs and counted."""
    if not numeric:
        return {}
    pairs = ", ".join(f"named_struct('__i', {i}, '__bin', __b{i})" for i in range(numeric))
    exploded = prepared.select(*key_columns(prepared), F.expr(f"inline(array({pairs}))"))
    exploded = exploded.where(F.col("__bin").isNotNull())
    rows = grouped(exploded, "__i", "__bin").agg(F.count("*").alias("__n"), *whole_marker(exploded)).collect()
    found: dict[tuple[GroupKey, int], dict[int, int]] = {}
    for row in rows:
        found.setdefault((group_key(row), row["__i"]), {})[row["__bin"]] = row["__n"]
    return found


def _bucket_sql(i: int, name: str, baselines: dict[str, Baseline]) -> str:
    """The bin of each row's value among its own version's baseline edges: how many edges are at or below it, found
    by bisection (about log2(edges) comparisons a row, not one per edge); null for a missing value."""
    cases = []
    for version, baseline in baselines.items():
        quoted = version.replace("'", "''")
        cases.append(f"WHEN {VERSION} = '{quoted}' THEN {_bisect(f'__x{i}', _edges(baseline, name), 0, None)}")
    return f"CASE WHEN __x{i} IS NULL THEN NULL {' '.join(cases)} END"


def _bisect(x: str, edges: list[float], low: int, high: int | None) -> str:
    """SQL for the number of `edges` (ascending) at or below `x`, known to lie in [low, high]."""
    high = len(edges) if high is None else high
    if low == high:
        return str(low)
    middle = (low + high + 1) // 2  # x >= edges[middle - 1] <=> at least `middle` edges are at or below x
    above, below = _bisect(x, edges, middle, high), _bisect(x, edges, low, middle - 1)
    return f"CASE WHEN {x} >= {edges[middle - 1]!r}D THEN {above} ELSE {below} END"


def _edges(baseline: Baseline, name: str) -> list[float]:
    summary = baseline.profile["columns"].get(name)
    if not summary or summary["kind"] != NUMERIC:
        return []
    return summary.get("bin_edges") or []


def _numeric_summary(row, inner_quantiles: list | None, i: int, bin_counts: list[int]) -> dict:
    n = row[f"n{i}"]
    summary = {"kind": NUMERIC, "count": n, "nulls": row["rows"] - n}
    if not n:
        empty = dict.fromkeys(("min", "max", "mean", "std", "quantiles"))
        return summary | empty | {"bin_counts": bin_counts}
    return summary | {
        "min": row[f"min{i}"],
        "max": row[f"max{i}"],
        "mean": row[f"mean{i}"],
        "std": row[f"std{i}"],
        "quantiles": [row[f"min{i}"], *inner_quantiles, row[f"max{i}"]],
        "bin_counts": bin_counts,
    }

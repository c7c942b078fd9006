"""Every window's profile from a few aggregations over the scored rows, each grouped by window x version (x slice):

1. sums: each numeric column's count, min, max, mean, standard deviation and its histogram over the version's
   baseline bins (a bucket expression per version), each categorical column's non-null count, row and labelled-row
   counts and the label metrics' sums;
2. quantiles: each numeric column's approximate quantiles;
3. categories, counted in monitoring/category_counts.py.

Only aggregates reach the driver, one row per group. The sums and the quantiles are apart because Spark compiles
an aggregation of plain sums into one generated loop (whole-stage code generation, allowed here for the hundreds of
sums a table of 25 columns needs, CODEGEN_MAX_FIELDS), while a quantile sketch is an object aggregate that makes
Spark evaluate every aggregate of its pass one by one: together they cost about twice as much as apart.

Quantiles come from Spark's percentile_approx with accuracy QUANTILE_ACCURACY: each is a value of the column whose
rank is within rows / QUANTILE_ACCURACY of the exact quantile's; the levels 0 and 1 are the exact min and max. A
rank error of 1/1,000 is a tenth of the 0.01 step of the 101-level grids the Kolmogorov-Smirnov statistic and the
Wasserstein distance are read from (monitoring/drift.py), and costs half the time of 1/10,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from common.columns import col
from common.parquet_time import session_setting
from common.profile import CATEGORICAL, NUMERIC, QUANTILE_LEVELS
from monitoring.baselines import Baseline
from monitoring.category_counts import category_counts
from monitoring.groups import GroupKey, group_key, grouped, whole_marker
from monitoring.inputs import LABELLED, VERSION
from monitoring.label_metrics import PREDICTION, PROBABILITY, MetricSpec
from monitoring.values import category_value, numeric_value

QUANTILE_ACCURACY = 1_000
# Spark stops generating code for a plan whose rows have more than spark.sql.codegen.maxFields (100) fields; the
# sums pass has 2 + 5 per numeric column + one per histogram bin: about 300 for 25 columns.
CODEGEN_MAX_FIELDS = "2000"
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
    # named columns: a few calls into the JVM per column rather than several per bin.
    prepared = df.select(
        *[c for c in df.columns if c.startswith("__monitor_") or c == VERSION],
        *[col(c).alias(c) for c in metric_inputs],
        *[numeric_value(df, name).alias(f"__x{i}") for i, name in enumerate(columns.numeric)],
        *[F.expr(_bucket_sql(i, name, baselines)).alias(f"__b{i}") for i, name in enumerate(columns.numeric)],
        *[category_value(df, name).alias(f"__c{i}") for i, name in enumerate(columns.categorical)],
    )
    sql = ["count(*) AS rows", f"count_if({LABELLED}) AS labelled" if LABELLED in df.columns else "0L AS labelled"]
    bins = {name: max(len(_edges(b, name)) + 1 for b in baselines.values()) for name in columns.numeric}
    for i, name in enumerate(columns.numeric):
        x = f"__x{i}"
        sql += [f"count({x}) AS n{i}", f"min({x}) AS min{i}", f"max({x}) AS max{i}", f"avg({x}) AS mean{i}"]
        sql += [f"stddev_samp({x}) AS std{i}"]
        sql += [f"count_if(__b{i} = {j}) AS b{i}_{j}" for j in range(bins[name])]
    sql += [f"count(__c{i}) AS c{i}" for i in range(len(columns.categorical))]
    aggregates = [F.expr(text) for text in sql] + whole_marker(prepared)
    if labelled:
        aggregates += metric_spec.aggregates(prepared)
    with session_setting(prepared.sparkSession, "spark.sql.codegen.maxFields", CODEGEN_MAX_FIELDS):
        rows = grouped(prepared).agg(*aggregates).collect()
    quantiles = _quantiles(prepared, len(columns.numeric))
    value_columns = tuple(f"__c{i}" for i in range(len(columns.categorical)))
    counted = category_counts(prepared, value_columns, columns.categorical, baselines) if value_columns else {}
    auc = metric_spec.roc_auc(prepared.where(F.col(LABELLED))) if labelled else {}

    profiles = {}
    for row in rows:
        key = group_key(row)
        summaries = {}
        for i, name in enumerate(columns.numeric):
            summaries[name] = _numeric_summary(row, quantiles[key][i], i, len(_edges(baselines[key.version], name)) + 1)
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


def _quantiles(prepared: DataFrame, numeric: int) -> dict[GroupKey, list]:
    """Each group's inner quantile levels of each numeric column (None for a column without a value)."""
    if not numeric:
        return {}
    levels = ", ".join(f"{level!r}D" for level in _INNER_LEVELS)
    sketch = "percentile_approx(__x{i}, array(" + levels + f"), {QUANTILE_ACCURACY})"
    sketches = [F.expr(sketch.format(i=i)).alias(f"q{i}") for i in range(numeric)]
    rows = grouped(prepared).agg(*sketches, *whole_marker(prepared)).collect()
    return {group_key(row): [row[f"q{i}"] for i in range(numeric)] for row in rows}


def _bucket_sql(i: int, name: str, baselines: dict[str, Baseline]) -> str:
    """The bin of each row's value among its own version's baseline edges: how many edges are at or below it."""
    cases = []
    for version, baseline in baselines.items():
        edges = _edges(baseline, name)
        index = " + ".join(f"CAST(__x{i} >= {edge!r}D AS INT)" for edge in edges) if edges else "0"
        quoted = version.replace("'", "''")
        cases.append(f"WHEN {VERSION} = '{quoted}' THEN {index}")
    return f"CASE {' '.join(cases)} END"


def _edges(baseline: Baseline, name: str) -> list[float]:
    summary = baseline.profile["columns"].get(name)
    if not summary or summary["kind"] != NUMERIC:
        return []
    return summary.get("bin_edges") or []


def _numeric_summary(row, inner_quantiles: list | None, i: int, n_bins: int) -> dict:
    n = row[f"n{i}"]
    summary = {"kind": NUMERIC, "count": n, "nulls": row["rows"] - n}
    if not n:
        empty = dict.fromkeys(("min", "max", "mean", "std", "quantiles"))
        return summary | empty | {"bin_counts": [0] * n_bins}
    return summary | {
        "min": row[f"min{i}"],
        "max": row[f"max{i}"],
        "mean": row[f"mean{i}"],
        "std": row[f"std{i}"],
        "quantiles": [row[f"min{i}"], *inner_quantiles, row[f"max{i}"]],
        "bin_counts": [row[f"b{i}_{j}"] for j in range(n_bins)],
    }

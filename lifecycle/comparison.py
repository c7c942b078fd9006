"""Compare a training run with its replay: every metric, what the run derived from its data (row counts, features,
resolved task) and the Spark settings it was replayed with, and both models' predictions on the test split the
original run logged, scored the way production jobs score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.entities import Run
from pyspark.sql import SparkSession

from common.model_uri import ResolvedModel
from common.provenance import SPARK_TAGS
from scoring.batch.dataframe import score_resolved

EXACT = "reproduced exactly"
WITHIN_TOLERANCE = "reproduced within tolerance"
NOT_REPRODUCED = "not reproduced"
# Not compared: wall-clock figures (a trial's fit time), which differ on every run and say nothing about the model,
# and what the ONNX export logs when a version is registered (a replay registers nothing).
_TIMINGS = ("_seconds",)
_REGISTRATION = ("onnx_",)
# The Spark settings the replay is given: a difference means it did not get them. (Default parallelism is recorded
# but decides no result: MLlib training lays its rows out by content into the shuffle partitions.)
_REPLAYED_SPARK_SETTINGS = ("master", "shuffle_partitions")
_ROW = "__reproduce_row"
_PREDICTED = ("prediction", "probability")


@dataclass(frozen=True)
class Comparison:
    metrics: dict[str, tuple[float | None, float | None]]  # every compared metric: (original, replay)
    record_differences: list[str]  # derived params and Spark settings that differ
    rows: int
    prediction_differences: dict[str, float] = field(default_factory=dict)  # column -> largest difference
    mismatched_rows: int = 0  # rows whose prediction differs at all

    @property
    def max_metric_difference(self) -> float:
        return max((_difference(a, b) for a, b in self.metrics.values()), default=0.0)

    @property
    def max_prediction_difference(self) -> float:
        return max(self.prediction_differences.values(), default=0.0)

    def verdict(self, tolerance: float) -> str:
        if self.record_differences:
            return NOT_REPRODUCED
        worst = max(self.max_metric_difference, self.max_prediction_difference)
        if worst == 0:
            return EXACT
        return WITHIN_TOLERANCE if worst <= tolerance else NOT_REPRODUCED

    def differences(self) -> list[str]:
        """Every difference, one line each, for the report and the job's output."""
        lines = list(self.record_differences)
        lines += [f"metric {name}: {a} vs {b}" for name, (a, b) in sorted(self.metrics.items()) if _difference(a, b)]
        lines += [
            f"{column}: largest difference {value:g}"
            for column, value in sorted(self.prediction_differences.items())
            if value
        ]
        if self.mismatched_rows:
            lines.append(f"{self.mismatched_rows} of {self.rows} test rows predicted differently")
        return lines


def compare_runs(original: Run, replay: Run, replayed_parameters: set[str]) -> tuple[dict, list[str]]:
    """(metrics as (original, replay) pairs, differences in what each run derived). The parameters the replay was
    given are the original's by construction (data and model_name aside) and are not compared again."""
    names = {
        m
        for m in original.data.metrics.keys() | replay.data.metrics.keys()
        if not m.endswith(_TIMINGS) and not m.startswith(_REGISTRATION)
    }
    metrics = {name: (original.data.metrics.get(name), replay.data.metrics.get(name)) for name in names}
    derived = (original.data.params.keys() | replay.data.params.keys()) - replayed_parameters
    differences = [
        f"param {name}: {original.data.params.get(name)!r} vs {replay.data.params.get(name)!r}"
        for name in sorted(derived)
        if original.data.params.get(name) != replay.data.params.get(name)
    ]
    differences += [
        f"Spark {setting}: {original.data.tags.get(tag)} vs {replay.data.tags.get(tag)}"
        for setting, tag in ((s, SPARK_TAGS[s]) for s in _REPLAYED_SPARK_SETTINGS)
        if original.data.tags.get(tag) != replay.data.tags.get(tag)
    ]
    return metrics, differences


def compare_predictions(
    spark: SparkSession, original: ResolvedModel, replay: ResolvedModel, rows: pa.Table
) -> tuple[dict[str, float], int]:
    """({column: largest difference}, rows that differ) of both models on `rows`: a number by absolute
    difference, a probability vector by its largest element's, a label by equality (a different label: inf)."""
    a, b = _predict(spark, original, rows), _predict(spark, replay, rows)
    differences, differing = {}, np.zeros(len(a), dtype=bool)
    for column in _PREDICTED:
        if column not in a.columns or column not in b.columns:
            continue
        per_row = _row_differences(a[column], b[column])
        differences[column] = float(per_row.max(initial=0.0))
        differing |= per_row > 0
    return differences, int(differing.sum())


def _predict(spark: SparkSession, model: ResolvedModel, rows: pa.Table) -> pd.DataFrame:
    numbered = rows.append_column(_ROW, pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    scored = score_resolved(spark, spark.createDataFrame(numbered), model).frame
    columns = [c for c in _PREDICTED if c in scored.columns]
    return scored.select(_ROW, *columns).toPandas().sort_values(_ROW, ignore_index=True)


def _row_differences(a: pd.Series, b: pd.Series) -> np.ndarray:
    first = a.iloc[0] if len(a) else None
    if isinstance(first, np.ndarray | list):
        x, y = np.vstack(a.to_numpy()).astype(float), np.vstack(b.to_numpy()).astype(float)
        return np.abs(x - y).max(axis=1, initial=0.0)
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        return np.where(same, 0.0, np.abs(x - y))
    return np.where(a.to_numpy() == b.to_numpy(), 0.0, math.inf)


def _difference(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return math.inf
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b)

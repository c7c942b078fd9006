"""Parity: score the same rows with Spark's `PipelineModel.transform` and with the ONNX graph, and compare.

The rows are the run's held-out split plus generated edge rows: per string column an unseen category and a null;
per numeric column a null (and NaN for floating columns); per boolean column null, true and false; the title
stage's odd names; and numeric values exactly at the trees' continuous thresholds (where a float32 threshold, or
a `<` for a `<=`, would go the other way). Spark's side is what batch scoring writes (scoring.batch.spark_flavor):
the prediction cast to the signature's output type, and the probability vector.

Classifiers: predictions must be equal and probabilities within `tolerance` (absolute). Regressors: predictions
within `tolerance` relative to max(1, |Spark's prediction|) (targets like body mass in grams are in the
thousands, where float64 summation order alone moves the last digits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from common.columns import col
from common.onnx_model import OnnxPipeline
from training.mllib_onnx.convert import ColumnTypes, ConvertedPipeline

DEFAULT_TOLERANCE = 1e-6
UNSEEN_CATEGORY = "__category_unseen_in_training__"
_ROW = "__parity_row"
_MAX_THRESHOLD_ROWS = 400
_INTEGRAL = {"long", "integer", "short", "byte"}
_FLOATING = {"double", "float"}
_ODD_NAMES = ("No comma here", "Doe, Xyzzy Jane", "Doe,  Mr. John", "", "Doe, ", "Doe, 1st Lady")


@dataclass
class ParityReport:
    rows_compared: int
    held_out_rows: int
    edge_rows: int
    max_abs_diff: float  # probabilities (classifiers) or predictions (regressors), absolute
    compared_diff: float  # the figure held to the tolerance (see diff_basis)
    diff_basis: str
    mismatched_labels: int
    tolerance: float
    passed: bool
    examples: list[dict] = field(default_factory=list)  # the first rows that differ, for a human to look at

    def to_dict(self) -> dict:
        return asdict(self)

    def why_failed(self) -> str:
        return (
            f"{self.mismatched_labels} of {self.rows_compared} predictions differ, "
            f"{self.diff_basis} {self.compared_diff:.3g} (tolerance {self.tolerance:g})"
        )


def check_parity(
    model: PipelineModel,
    pipeline: OnnxPipeline,
    converted: ConvertedPipeline,
    held_out: DataFrame,
    types: ColumnTypes,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityReport:
    inputs = list(types.inputs)
    held = held_out.select(*(col(c) for c in inputs))
    base_rows = [row.asDict() for row in held.limit(20).collect()] or [dict.fromkeys(inputs)]
    edges = edge_rows(base_rows, types, converted)
    spark = held.sparkSession
    # Nullable throughout: an edge row puts a null where the held-out rows may have had none.
    schema = T.StructType([T.StructField(f.name, f.dataType, nullable=True) for f in held.schema.fields])
    rows = held.unionByName(spark.createDataFrame(edges, schema=schema)) if edges else held
    rows = rows.withColumn(_ROW, F.monotonically_increasing_id()).cache()
    try:
        frame = rows.toPandas().sort_values(_ROW, ignore_index=True)
        scored = _spark_scored(model, rows, types, converted.is_classifier)
    finally:
        rows.unpersist()
    held_count = len(frame) - len(edges)
    onnx_prediction, onnx_probability = pipeline.predict(frame)
    if len(scored) != len(frame) or not np.array_equal(scored[_ROW].to_numpy(), frame[_ROW].to_numpy()):
        raise AssertionError(f"Spark scored {len(scored)} rows of {len(frame)}")
    spark_prediction = scored["prediction"].to_numpy()
    if converted.is_classifier:
        spark_probability = np.vstack(scored["probability"].to_numpy()).astype(np.float64)
        differs = spark_prediction != onnx_prediction
        max_abs = _max_diff(spark_probability, onnx_probability)
        compared, basis = max_abs, "max |probability difference|"
    else:
        spark_values = spark_prediction.astype(np.float64)
        onnx_values = onnx_prediction.astype(np.float64)
        scale = np.maximum(1.0, np.abs(np.nan_to_num(spark_values)))
        max_abs = _max_diff(spark_values, onnx_values)
        compared = _max_diff(spark_values / scale, onnx_values / scale)
        basis = "max |prediction difference| / max(1, |Spark prediction|)"
        scaled = np.abs(spark_values - onnx_values) / scale
        differs = np.where(np.isnan(spark_values) & np.isnan(onnx_values), False, ~(scaled <= tolerance))
    examples = [
        {
            "row": frame.loc[i, inputs].to_dict(),
            "spark": _plain(spark_prediction[i]),
            "onnx": _plain(onnx_prediction[i]),
        }
        for i in np.flatnonzero(differs)[:5]
    ]
    mismatched = int(differs.sum())
    return ParityReport(
        rows_compared=len(frame),
        held_out_rows=held_count,
        edge_rows=len(edges),
        max_abs_diff=max_abs,
        compared_diff=compared,
        diff_basis=basis,
        mismatched_labels=mismatched if converted.is_classifier else 0,
        tolerance=tolerance,
        passed=mismatched == 0 and compared <= tolerance,
        examples=_json_safe(examples),
    )


def _spark_scored(model: PipelineModel, rows: DataFrame, types: ColumnTypes, classifier: bool) -> pd.DataFrame:
    """What scoring.batch.spark_flavor.transform_scored writes, with the whole probability vector."""
    transformed = model.transform(rows)
    columns = [F.col(_ROW), F.col("prediction").cast(types.output).alias("prediction")]
    if classifier:
        columns.append(vector_to_array("probability").alias("probability"))
    return transformed.select(*columns).toPandas().sort_values(_ROW, ignore_index=True)


def edge_rows(base_rows: list[dict], types: ColumnTypes, converted: ConvertedPipeline) -> list[dict]:
    """Rows that take the unusual paths; each is a held-out row with one value changed."""
    base = base_rows[0]
    pre_step = converted.feed["pre_step"]
    title_age = pre_step["age_column"] if pre_step else None
    rows = [dict.fromkeys(types.inputs)]  # everything missing
    for column, type_name in types.inputs.items():
        if type_name == "string":
            rows += [{**base, column: UNSEEN_CATEGORY}, {**base, column: None}]
        elif type_name == "boolean":
            rows += [{**base, column: value} for value in (None, True, False)]
        else:
            rows.append({**base, column: None})
            # A NaN age reaches Spark's title stage as NaN (coalesce keeps it), not as missing: the ONNX pre-step
            # treats None and NaN alike (pandas cannot tell them apart in a float column), so no NaN row there.
            if type_name in _FLOATING and column != title_age:
                rows.append({**base, column: math.nan})
    if pre_step:
        rows += [{**base, pre_step["name_column"]: name} for name in _ODD_NAMES]
        rows += [{**base, pre_step["name_column"]: name, title_age: None} for name in (*_ODD_NAMES, None)]
    at_thresholds = []
    for i, (column, threshold) in enumerate(converted.edge_values):
        row = base_rows[i % len(base_rows)]
        type_name = types.inputs[column]
        if type_name in _INTEGRAL:
            at_thresholds += [{**row, column: int(v)} for v in {math.floor(threshold), math.ceil(threshold)}]
        elif type_name == "float":
            at_thresholds.append({**row, column: float(np.float32(threshold))})
        else:
            at_thresholds.append({**row, column: threshold})
    step = max(1, math.ceil(len(at_thresholds) / _MAX_THRESHOLD_ROWS))
    return rows + at_thresholds[::step]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()) if diff.size else 0.0


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value

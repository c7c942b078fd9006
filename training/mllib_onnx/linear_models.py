"""Spark's LogisticRegression and LinearRegression models as MatMul + the same link functions Spark applies.

Coefficients are read from the stage's data Parquet (already on the features' original scale)."""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from training.mllib_onnx.graph import GraphBuilder
from training.mllib_onnx.saved_stages import SavedStage, matrix_values, vector_values


def _check_width(stage: SavedStage, coefficients: np.ndarray, n_features: int) -> None:
    if coefficients.shape[-1] != n_features:
        raise stage.refuse(f"has {coefficients.shape[-1]} coefficients for {n_features} features")


def logistic_regression(stage: SavedStage, graph: GraphBuilder, features: str, n_features: int):
    """Binary: m = w.x + b, rawPrediction [-m, m], P(0) = 1 / (1 + exp(m)), P(1) = 1 - P(0), prediction = 1 iff
    m > log(t / (1 - t)) for the threshold t. Multinomial: margins = W.x + b, softmax, prediction = argmax of the
    margins (first on a tie)."""
    if stage.is_set("thresholds"):
        raise stage.refuse("per-class thresholds are not supported")
    (row,) = stage.rows()
    weights = matrix_values(row["coefficientMatrix"])
    intercepts = vector_values(row["interceptVector"])
    _check_width(stage, weights, n_features)
    n_classes = int(row["numClasses"])
    if not row["isMultinomial"]:
        margin = graph.op("MatMul", [features, graph.const("coefficients", weights.T)], "dot")
        margin = graph.op("Add", [margin, graph.const("intercept", intercepts.reshape(1, 1))], "margin")
        one = graph.const("one", 1.0)
        p0 = graph.op("Div", [one, graph.op("Add", [one, graph.op("Exp", [margin], "exp")], "denominator")], "p0")
        probability = graph.op("Concat", [p0, graph.op("Sub", [one, p0], "p1")], "probability", axis=1)
        threshold = float(stage.param("threshold", 0.5))
        raw_threshold = (
            -math.inf if threshold == 0.0 else math.inf if threshold == 1.0 else math.log(threshold / (1 - threshold))
        )
        positive = graph.op("Greater", [margin, graph.const("raw_threshold", raw_threshold)], "positive")
        index = graph.op("Cast", [positive], "index_2d", to=TensorProto.INT64)
        flat = graph.const("flat", np.array([-1], dtype=np.int64))
        return probability, graph.op("Reshape", [index, flat], "prediction_index"), n_classes
    margins = graph.op("MatMul", [features, graph.const("coefficients", weights.T)], "dot")
    margins = graph.op("Add", [margins, graph.const("intercepts", intercepts.reshape(1, -1))], "margins")
    probability = graph.op("Softmax", [margins], "probability", axis=1)
    index = graph.op("ArgMax", [margins], "prediction_index", axis=1, keepdims=0, select_last_index=0)
    return probability, index, n_classes


def linear_regression(stage: SavedStage, graph: GraphBuilder, features: str, n_features: int):
    """prediction = w.x + b."""
    if stage.param("loss", "squaredError") not in ("squaredError", "huber"):
        raise stage.refuse(f"loss={stage.param('loss')!r} is not supported")
    (row,) = stage.rows()
    coefficients = vector_values(row["coefficients"])
    _check_width(stage, coefficients, n_features)
    dot = graph.op("MatMul", [features, graph.const("coefficients", coefficients.reshape(-1, 1))], "dot")
    return graph.op("Add", [dot, graph.const("intercept", float(row["intercept"]))], "prediction")

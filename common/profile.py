"""The reference profile: what a model's data looked like when it was trained, as JSON, so that `monitor` can tell
later whether the rows it scores still look like that (its baseline).

Training jobs log one with the model (`log_reference_profile`): every feature and the label over the rows the model
was trained on, and the model's predictions (and probabilities) over the held-out split. It is computed here, in
pandas, because training code imports only `common`; `monitor` computes the same statistics per window with Spark
(monitoring/aggregation.py) against this profile's bin edges and categories.

Numeric columns: count (non-null), nulls, min, max, mean, std (ddof 1, as Spark's stddev), the quantile function at
QUANTILE_LEVELS (inverted CDF: values that occur, as Spark's percentile_approx returns) and a histogram over bins
whose inner edges are the baseline's deciles (bin i holds edges[i-1] <= x < edges[i]). Categorical columns: the
counts of the TOP_CATEGORIES most frequent values and of all others together, values written as `category_text`.
Probabilities: a binary classifier's P(classes[1]) as `probability` (the column scoring writes); a multiclass one's
each class's probability as `probability[<class>]` (`class_probability_column`), since scoring writes them as one
array column in the classes' order and monitoring reads each element as a column of its own.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from pandas.api import types as ptypes

PROFILE_ARTIFACT = "monitoring/reference_profile.json"
PROFILE_FORMAT = 1
QUANTILE_LEVELS = tuple(i / 100 for i in range(101))  # 0 is the minimum, 1 the maximum
BIN_EDGE_LEVELS = tuple(i / 10 for i in range(1, 10))  # inner edges: the deciles, so about ten equal bins
TOP_CATEGORIES = 100
NUMERIC, CATEGORICAL = "numeric", "categorical"
FEATURE, LABEL, PREDICTION, PROBABILITY = "feature", "label", "prediction", "probability"
FROM_TRAINING = "training rows"
FROM_HELD_OUT_SPLIT = "from the held-out split (smaller sample)"

# What `monitor` records on a model version (registry/history.py shows them).
MONITORING_STATUS_TAG = "lifecycle.monitoring.status"  # "ok", "drift: <columns>" or "degraded: <metrics>"
MONITORING_WINDOW_TAG = "lifecycle.monitoring.window"  # the last window judged
MONITORING_RUN_TAG = "lifecycle.monitoring.run_id"


def reference_profile(
    features: pd.DataFrame,
    label: pd.Series | None,
    predictions,
    probabilities=None,
    *,
    task: str,
    classes=None,
    source: str = FROM_TRAINING,
) -> dict:
    """The profile of `features` and `label` (the training rows) and of `predictions` / `probabilities` (the model's
    answers on the held-out split). A classifier's predictions are categorical, a regressor's numeric. Binary
    probabilities are profiled as P(classes[1]), as scoring writes them; a multiclass model's (one per class, in
    the order of `classes`) as one numeric column per class."""
    columns = {str(name): column_profile(features[name], FEATURE) for name in features.columns}
    if label is not None:
        columns[str(label.name)] = column_profile(label, LABEL, categorical=task == "classification")
    columns["prediction"] = column_profile(pd.Series(np.asarray(predictions)), PREDICTION, task == "classification")
    for name, values in _probability_columns(probabilities, classes).items():
        columns[name] = column_profile(pd.Series(values), PROBABILITY, categorical=False)
    return {
        "format": PROFILE_FORMAT,
        "source": source,
        "task": task,
        "label": None if label is None else str(label.name),
        "classes": None if classes is None else [_plain(value) for value in classes],
        "quantile_levels": list(QUANTILE_LEVELS),
        "columns": columns,
    }


def log_reference_profile(
    features: pd.DataFrame,
    label: pd.Series | None,
    predictions,
    probabilities=None,
    *,
    task: str,
    classes=None,
    source: str = FROM_TRAINING,
) -> dict:
    """Log the profile into the active run as PROFILE_ARTIFACT and return it. A trainer calls it once, e.g.
    `log_reference_profile(X_train, y_train, model.predict(X_test), model.predict_proba(X_test), task=task,
    classes=model.classes_)`."""
    profile = reference_profile(features, label, predictions, probabilities, task=task, classes=classes, source=source)
    mlflow.log_dict(profile, PROFILE_ARTIFACT)
    return profile


def load_reference_profile(run_id: str, client: mlflow.MlflowClient | None = None) -> dict | None:
    """The profile a run logged, or None when it logged none."""
    client = client or mlflow.MlflowClient()
    folder = PROFILE_ARTIFACT.rsplit("/", 1)[0]
    if not any(item.path == PROFILE_ARTIFACT for item in client.list_artifacts(run_id, folder)):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(Path(client.download_artifacts(run_id, PROFILE_ARTIFACT, tmp)).read_text())


def column_profile(values: pd.Series, role: str, categorical: bool | None = None) -> dict:
    """One column's statistics. `categorical` None: decided by its type (numbers and booleans are numeric)."""
    if categorical is None:
        categorical = not (ptypes.is_numeric_dtype(values) or ptypes.is_bool_dtype(values))
    present = values.dropna()
    base = {"role": role, "kind": CATEGORICAL if categorical else NUMERIC, "count": len(present)}
    base["nulls"] = len(values) - len(present)
    if categorical:
        return base | category_counts(present.map(category_text).value_counts())
    return base | numeric_summary(present.astype(float).to_numpy())


def numeric_summary(x: np.ndarray) -> dict:
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return {
            "min": None,
            "max": None,
            "mean": None,
            "std": None,
            "quantiles": None,
            "bin_edges": [],
            "bin_counts": [0],
        }
    quantiles = np.quantile(x, QUANTILE_LEVELS, method="inverted_cdf")
    edges = bin_edges(quantiles)
    return {
        "min": float(x.min()),
        "max": float(x.max()),
        "mean": float(x.mean()),
        "std": _finite(float(x.std(ddof=1))) if len(x) > 1 else None,
        "quantiles": [float(q) for q in quantiles],
        "bin_edges": edges,
        "bin_counts": bin_counts(x, edges),
    }


def bin_edges(quantiles) -> list[float]:
    """The inner bin edges: the distinct deciles of a baseline's quantile function (a column with few values has
    fewer, so no bin is empty by construction)."""
    at = {round(level, 10): q for level, q in zip(QUANTILE_LEVELS, quantiles, strict=True)}
    return sorted({float(at[round(level, 10)]) for level in BIN_EDGE_LEVELS})


def bin_counts(x: np.ndarray, edges: list[float]) -> list[int]:
    """How many values fall in each bin: bin i counts the values with exactly i edges at or below them."""
    index = np.searchsorted(np.asarray(edges, dtype=float), x, side="right")
    return np.bincount(index, minlength=len(edges) + 1).astype(int).tolist()


def category_counts(counts: pd.Series) -> dict:
    """The TOP_CATEGORIES most frequent values (ties by value, so the choice repeats) and the rest as `other`."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    top = dict(ordered[:TOP_CATEGORIES])
    return {
        "distinct": len(ordered),
        "categories": {str(k): int(v) for k, v in top.items()},
        "other": int(sum(v for _, v in ordered[TOP_CATEGORIES:])),
    }


def category_text(value) -> str:
    """A category as text, the way monitoring's Spark side casts it: booleans 'true'/'false', whole-number floats
    without '.0' (a label read as 1.0 in one table and 1 in another is the same class)."""
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def class_probability_column(category: str) -> str:
    """The name a multiclass model's probability of one class (as `category_text`) is profiled under."""
    return f"probability[{category}]"


def _probability_columns(probabilities, classes) -> dict[str, np.ndarray]:
    """{column name: values}: P(classes[1]) as `probability` for two classes (or probabilities given as one
    column), one column per class for more. A list or Series of per-row arrays (as Spark returns an array column)
    reads as a matrix."""
    if probabilities is None:
        return {}
    rows = list(probabilities) if isinstance(probabilities, pd.Series) else probabilities
    proba = np.asarray(rows, dtype=float)
    if proba.ndim == 1:
        return {"probability": proba}
    if proba.ndim != 2:
        return {}
    if proba.shape[1] == 2:
        return {"probability": proba[:, 1]}
    if classes is None or len(classes) != proba.shape[1]:
        return {}  # which column is which class cannot be told
    return {class_probability_column(category_text(c)): proba[:, i] for i, c in enumerate(classes)}


def _plain(value):
    """numpy scalars as plain Python values (JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None

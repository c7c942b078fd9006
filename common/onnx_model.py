"""An MLlib pipeline exported as ONNX, answered without a JVM: the graph, how to feed it, and what it returns.

A version's training run holds the export under `onnx/` (ONNX_ARTIFACT_DIR):
  - `model.onnx`: the feature stages and the estimator as one graph (onnxruntime, ai.onnx.ml TreeEnsemble opset 5);
  - `feed.json`: how raw signature columns become graph inputs (one `[N, 1]` input per column: strings, or doubles),
    the pre-step run in Python before the graph (the title stage), the classes and the prediction's output type;
  - `parity.json`: how the graph compared with Spark's own `transform` on held-out and edge rows.
The model version says whether the export can be trusted in its ONNX_TAG: "passed", "failed: <why>" or
"unsupported: <why>".

This module is the ground floor (training writes these files, scoring reads them): stdlib, numpy, pandas and
onnxruntime only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd

ONNX_ARTIFACT_DIR = "onnx"
ONNX_TAG = "onnx"
ONNX_PASSED = "passed"  # the ONNX_TAG value of an export that passed parity: the only one a server may use
MODEL_FILE = "model.onnx"
FEED_FILE = "feed.json"
PARITY_FILE = "parity.json"
FEED_FORMAT = 1

# A missing string is fed to the graph as this value: no indexer label equals it (the converter checks), so the
# graph's indexer maps it to the "unseen" index, as Spark's StringIndexer(handleInvalid="keep") does with null.
NULL_STRING = "\x00null"

# The signature's type names (mlflow.types.DataType) -> the numpy type batch scoring casts predictions to.
_OUTPUT_DTYPES = {
    "string": object,
    "long": np.int64,
    "integer": np.int32,
    "double": np.float64,
    "float": np.float32,
    "boolean": np.bool_,
}
# Java's `\s` (Spark's regexp_extract): ASCII whitespace only; Python's `\s` also matches Unicode spaces.
_JAVA_SPACE = r"[ \t\n\x0b\f\r]"


class OnnxPipeline:
    """Score a pandas frame of raw signature columns the way batch scoring with Spark does."""

    def __init__(self, session: onnxruntime.InferenceSession, feed: dict) -> None:
        if feed.get("format") != FEED_FORMAT:
            raise ValueError(f"feed.json format {feed.get('format')!r} is not {FEED_FORMAT}")
        self._session = session
        self.feed = feed
        self.input_columns: tuple[str, ...] = tuple(feed["input_columns"])
        self.classes: list | None = feed["classes"]
        self._title = _TitleStep(feed["pre_step"]) if feed.get("pre_step") else None
        # Per graph input: its name, the column it reads and how the column's values are turned into it.
        self._feeds = [(i["name"], i["column"], _feeder(i)) for i in feed["graph_inputs"]]
        self._outputs = [o for o in ("prediction_index", "probability", "prediction") if o in feed["outputs"]]
        output_dtype = _OUTPUT_DTYPES[feed["output_type"]]
        self._output_dtype = output_dtype
        self._labels = None if self.classes is None else np.array(self.classes, dtype=output_dtype)

    def predict(self, frame) -> tuple[np.ndarray, np.ndarray | None]:
        """(prediction as batch scoring writes it, N x C float64 probabilities or None for a regressor). `frame`: a
        pandas DataFrame, or any table whose `frame[column]` is a column of values (the server's typed rows)."""
        columns = {c: np.asarray(frame[c]) for c in self.input_columns}
        if self._title is not None:
            columns.update(self._title.apply(columns))
        inputs = {name: feeder(columns[column]) for name, column, feeder in self._feeds}
        results = dict(zip(self._outputs, self._session.run(self._outputs, inputs), strict=True))
        if self._labels is not None:
            return self._labels[results["prediction_index"]], results["probability"]
        prediction = results["prediction"].reshape(-1)
        return (prediction if self._output_dtype is np.float64 else prediction.astype(self._output_dtype)), None


def load_onnx_pipeline(directory: str | Path) -> OnnxPipeline:
    """The pipeline in `directory` (an `onnx/` artifact folder), with its one onnxruntime session created now."""
    directory = Path(directory)
    feed = json.loads((directory / FEED_FILE).read_text())
    options = onnxruntime.SessionOptions()
    # One thread per session: a server runs one worker per core, and a row is far too small to split.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(directory / MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return OnnxPipeline(session, feed)


def read_parity(directory: str | Path) -> dict:
    return json.loads((Path(directory) / PARITY_FILE).read_text())


def _feeder(graph_input: dict):
    """values (a numpy column) -> the graph input `[N, 1]`."""
    if graph_input["kind"] == "string":
        return _strings
    if graph_input.get("spark_type") == "float":
        return _float32_numbers  # Spark reads a float column as float32 and widens it to double
    return _numbers


def _strings(values: np.ndarray) -> np.ndarray:
    out = np.empty((len(values), 1), dtype=object)
    for i, value in enumerate(values):
        out[i, 0] = NULL_STRING if _missing(value) else str(value)
    return out


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)  # NaN != NaN


def _numbers(values: np.ndarray) -> np.ndarray:
    """Numbers, booleans (1.0 / 0.0, as Spark's CAST AS DOUBLE) and None / NaN / pd.NA (NaN: missing)."""
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False).reshape(-1, 1)
    return pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)


def _float32_numbers(values: np.ndarray) -> np.ndarray:
    return _numbers(values).astype(np.float32).astype(np.float64)


class _TitleStep:
    """The project's title stage (training.mllib.features.TitleAgeImputerModel), in Python before the graph:
    title = group 1 of the pattern on the name ("" -> the unknown title; no name -> no title); a missing age
    (None or NaN) = the title's learned mean age, else the overall mean learned in training."""

    def __init__(self, step: dict) -> None:
        if step.get("kind") != "title_age":
            raise ValueError(f"unknown pre-step {step.get('kind')!r}")
        self._pattern = re.compile(step["pattern"].replace(r"\s", _JAVA_SPACE))
        self._name, self._age, self._title = step["name_column"], step["age_column"], step["title_column"]
        self._unknown = step["unknown_title"]
        self._means = step["title_means"]
        self._overall = float(step["overall_mean"])

    def title(self, name) -> str | None:
        if _missing(name):
            return None
        match = self._pattern.search(str(name))
        return match.group(1) if match and match.group(1) else self._unknown

    def apply(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        titles = np.array([self.title(name) for name in columns[self._name]], dtype=object)
        ages = _numbers(columns[self._age]).reshape(-1).copy()
        for i in np.flatnonzero(np.isnan(ages)):
            ages[i] = self._means.get(titles[i], self._overall) if titles[i] is not None else self._overall
        return {self._title: titles, self._age: ages}

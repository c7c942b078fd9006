"""Code that runs in Spark's Python workers. Kept small and at module level, so the model cache below lives
once per worker process and is reused by every task and batch that worker runs (workers are reused).

One predict step (`predict`) serves every strategy; the functions at the bottom adapt it to what each Spark API
hands a worker: Arrow record batches (mapInArrow, arrow_udf), pandas frames (mapInPandas, applyInPandas).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace

from common.bounded_cache import BoundedCache
from common.columns import real_names

_MODELS: BoundedCache[str, object] = BoundedCache()  # per worker: a stream holds the old and new version a while

# How a batch of features reaches the model (chosen on the driver by probing the model, see scoring.batch.plan):
NDARRAY = "ndarray"  # one 2-D NumPy array, no pandas at all (a bare estimator fitted on numbers)
FRAME_FROM_NDARRAY = "frame_from_ndarray"  # a DataFrame wrapped around that array (a pipeline that selects by name)
FRAME = "frame"  # Arrow's own pandas conversion (mixed types: strings, integers, booleans)


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a worker needs, pickled with the task (small: names and Arrow types, never the model)."""

    model_key: str  # the SparkFiles name of the shipped model archive (unpacked there); unique per model version
    flavor: str  # "sklearn" or "python_function"
    features: tuple[str, ...]  # signature order: the order the input columns arrive in
    passthrough: tuple[str, ...]
    prediction_type: object  # pyarrow.DataType
    probability: str | None  # None, "binary" (P of classes_[1]) or "multiclass" (one per class)
    input_kind: str = FRAME
    model_order: tuple[str, ...] = ()  # NDARRAY: the model's own column order (feature_names_in_), if it has one
    chunk_rows: int = 50_000  # rows per predict call: bounds the worker's extra memory on wide rows
    # (alias, name) of columns renamed on their way in: PySpark's mapInArrow / mapInPandas read a dot in a column
    # name as a struct field, so such columns travel under an alias and get their names back here.
    renamed: tuple[tuple[str, str], ...] = ()


def load_cached(model_key: str, flavor: str):
    from pyspark import SparkFiles

    return _MODELS.get_or_load(model_key, lambda: load_model(SparkFiles.get(model_key), flavor))


def load_model(path: str, flavor: str):
    if flavor == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn.load_model(path)
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def predict(model, X, plan: ScoringPlan):
    """(prediction, probabilities or None) as NumPy arrays. Classifiers go through predict_proba once: scikit-learn
    predicts the class of highest probability, so a second pass through `predict` would only repeat the work."""
    import numpy as np

    with warnings.catch_warnings():
        # An ndarray has no column names; the columns were bound by name on the driver and put in the model's order.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if plan.probability:
            proba = np.asarray(model.predict_proba(X), dtype="float64")
            return model.classes_.take(proba.argmax(axis=1)), proba
        return _as_1d(model.predict(X)), None


def features_from_arrow(columns: dict, plan: ScoringPlan):
    """Feature columns (name -> pyarrow array) as the model takes them; no pandas unless the model needs names."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if plan.input_kind == FRAME:
        return pa.table({name: columns[name] for name in plan.features}).to_pandas()
    order = plan.model_order or plan.features
    X = np.column_stack([columns[name].to_numpy(zero_copy_only=False) for name in order])
    return X if plan.input_kind == NDARRAY else pd.DataFrame(X, columns=list(order), copy=False)


def _chunks(batch, rows: int):
    """Zero-copy slices of an Arrow batch: a wide batch is predicted in parts that fit the chosen size."""
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def arrow_outputs(prediction, proba, plan: ScoringPlan) -> list:
    import pyarrow as pa

    columns = [pa.array(prediction, type=plan.prediction_type, from_pandas=True)]
    if plan.probability == "binary":
        columns.append(pa.array(proba[:, 1]))
    elif plan.probability == "multiclass":
        columns.append(pa.array(list(proba), type=pa.list_(pa.float64())))
    return columns


def output_names(plan: ScoringPlan) -> list[str]:
    return [*plan.passthrough, "prediction", *(["probability"] if plan.probability else [])]


def score_batches(batches: Iterator, plan: ScoringPlan) -> Iterator:
    """mapInArrow body: ids pass through as Arrow columns untouched; features go to the model as NumPy."""
    import pyarrow as pa

    model = load_cached(plan.model_key, plan.flavor)
    names = output_names(plan)
    for whole in batches:
        for batch in _chunks(whole, plan.chunk_rows):
            columns = dict(zip(real_names(batch.schema.names, plan.renamed), batch.columns, strict=True))
            prediction, proba = predict(model, features_from_arrow(columns, plan), plan)
            outputs = [columns[name] for name in plan.passthrough] + arrow_outputs(prediction, proba, plan)
            yield pa.RecordBatch.from_arrays(outputs, names=names)


def score_struct_arrays(arrays: Iterator, plan: ScoringPlan) -> Iterator:
    """arrow_udf body for a column expression: one struct of named features in, one prediction array out."""
    model = load_cached(plan.model_key, plan.flavor)
    for struct in arrays:
        if len(struct) == 0:
            yield arrow_outputs([], None, replace(plan, probability=None))[0]
            continue
        columns = {name: struct.field(name) for name in plan.features}
        prediction, proba = predict(model, features_from_arrow(columns, plan), plan)
        yield arrow_outputs(prediction, proba, plan)[0]


def score_frames(frames: Iterator, plan: ScoringPlan) -> Iterator:
    """mapInPandas body: the model loaded once per worker, fed pandas frames."""
    model = load_cached(plan.model_key, plan.flavor)
    for frame in frames:
        yield _scored_frame(model, frame, plan)


def score_group(frame, plan: ScoringPlan):
    """applyInPandas body (rows in explicit groups): one whole bucket of rows per call."""
    return _scored_frame(load_cached(plan.model_key, plan.flavor), frame, plan)


def _scored_frame(model, frame, plan: ScoringPlan):
    import pandas as pd

    if plan.renamed:
        frame = frame.set_axis(real_names(frame.columns, plan.renamed), axis=1)

    if frame.empty:  # nothing to predict (scikit-learn refuses 0 rows); the schema's columns all the same
        return frame[list(plan.passthrough)].assign(
            **{name: pd.Series(dtype=object) for name in output_names(plan)[len(plan.passthrough) :]}
        )
    X = frame[list(plan.features)]
    if plan.input_kind != FRAME:
        X = X[list(plan.model_order or plan.features)]
        X = X.to_numpy() if plan.input_kind == NDARRAY else X
    prediction, proba = predict(model, X, plan)
    out = frame[list(plan.passthrough)].copy()
    out["prediction"] = pd.Series(prediction, index=frame.index)
    if plan.probability == "binary":
        out["probability"] = proba[:, 1]
    elif plan.probability == "multiclass":
        out["probability"] = list(proba)
    return out


def _as_1d(prediction):
    """pyfunc models may answer with a DataFrame or Series; scikit-learn with an array."""
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        prediction = prediction.iloc[:, 0]
    return np.asarray(prediction).reshape(-1)

"""Code that runs in Spark's Python workers. Kept small and at module level, so the model cache below lives
once per worker process and is reused by every task and batch that worker runs (workers are reused)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

_MAX_CACHED_MODELS = 3  # a stream that follows the registry holds the old and new version for a while
_MODELS: OrderedDict[str, object] = OrderedDict()


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a worker needs, pickled with the task (small: names and Arrow types, never the model)."""

    model_key: str  # the SparkFiles name of the shipped model archive (unpacked there); unique per model version
    flavor: str  # "sklearn" or "python_function"
    features: tuple[str, ...]
    passthrough: tuple[str, ...]
    prediction_type: object  # pyarrow.DataType
    probability: str | None  # None, "binary" (P of classes_[1]) or "multiclass" (one per class)


def load_cached(model_key: str, flavor: str):
    model = _MODELS.get(model_key)
    if model is None:
        from pyspark import SparkFiles

        model = load_model(SparkFiles.get(model_key), flavor)
        _MODELS[model_key] = model
        while len(_MODELS) > _MAX_CACHED_MODELS:
            _MODELS.popitem(last=False)
    else:
        _MODELS.move_to_end(model_key)
    return model


def load_model(path: str, flavor: str):
    if flavor == "sklearn":
        import mlflow.sklearn

        return mlflow.sklearn.load_model(path)
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(path)


def score_batches(batches: Iterator, plan: ScoringPlan) -> Iterator:
    """mapInArrow body: ids pass through as Arrow columns untouched; features go to the model by name."""
    import numpy as np
    import pyarrow as pa

    model = load_cached(plan.model_key, plan.flavor)
    features = list(plan.features)
    names = [*plan.passthrough, "prediction", *(["probability"] if plan.probability else [])]
    for batch in batches:
        X = batch.select(features).to_pandas()
        columns = [batch.column(name) for name in plan.passthrough]
        if plan.probability:
            # One pass through the model: scikit-learn's classifiers predict the class of highest probability.
            proba = np.asarray(model.predict_proba(X), dtype="float64")
            prediction = model.classes_.take(proba.argmax(axis=1))
        else:
            prediction = _as_1d(model.predict(X))
        columns.append(pa.array(prediction, type=plan.prediction_type, from_pandas=True))
        if plan.probability:
            columns.append(pa.array(proba[:, 1]) if plan.probability == "binary" else pa.array(list(proba)))
        yield pa.RecordBatch.from_arrays(columns, names=names)


def _as_1d(prediction):
    """pyfunc models may answer with a DataFrame or Series; scikit-learn with an array."""
    import numpy as np
    import pandas as pd

    if isinstance(prediction, pd.DataFrame):
        prediction = prediction.iloc[:, 0]
    return np.asarray(prediction).reshape(-1)

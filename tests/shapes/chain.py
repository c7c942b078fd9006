"""The lifecycle steps the matrix runs, called in-process as the entry points call them, and the checks on their
output: rows in == rows out, pass-through columns kept, predictions equal to the registered model's own."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from scoring.batch.dataframe import OUTPUT_COLUMNS
from tests.shapes.shapes import SITE, Shape

TRAINERS = ("sklearn", "mllib", "per_group", "hyperopt", "joblib")
SKLEARN_HYPERPARAMS = {"n_estimators": 20}
TUNING_SPACE = {"n_estimators": [20], "max_depth": [3, 6]}
OUTPUTS = OUTPUT_COLUMNS  # what scoring adds to a row (prediction, probability, model name/version, scored_at)


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        frame.to_csv(path, index=False)  # pandas quotes values holding commas and doubles embedded quotes
    else:
        frame.to_parquet(path, index=False)
    return path


def read_table(path: Path, fmt: str) -> pd.DataFrame:
    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


def land(frame: pd.DataFrame, folder: Path, name: str, fmt: str) -> None:
    """Write beside the stream's folder, then move in whole."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{name}"
    write_table(frame, staging, fmt)
    staging.rename(folder / name)


def train(trainer: str, spark, settings, shape: Shape, data: Path, model_name: str):
    """The job's own `run`, as its entry point calls it: small models (fast), ids excluded, registered."""
    common = dict(data=str(data), label=shape.label, exclude=tuple(shape.ids), model_name=model_name)
    if trainer == "sklearn":
        from training.sklearn.train_sklearn import TrainSklearnParams, run

        return run(settings, TrainSklearnParams(estimator="random_forest", hyperparams=SKLEARN_HYPERPARAMS, **common))
    if trainer == "mllib":
        from training.mllib.train_mllib import TrainMllibParams, run

        return run(spark, settings, TrainMllibParams(num_trees=10, max_depth=5, **shape.mllib_kwargs, **common))
    if trainer == "per_group":
        from training.per_group.train_per_group import TrainPerGroupParams, run

        params = TrainPerGroupParams(
            group=SITE, estimator="random_forest", hyperparams=SKLEARN_HYPERPARAMS, min_rows=5, **common
        )
        return run(spark, settings, params)
    if trainer == "hyperopt":
        from training.tuning.tune_hyperopt import TuneHyperoptParams, run

        params = TuneHyperoptParams(estimator="random_forest", space=TUNING_SPACE, max_evals=2, parallelism=1, **common)
        return run(spark, settings, params)
    if trainer == "joblib":
        from training.tuning.tune_joblib import TuneJoblibParams, run

        params = TuneJoblibParams(estimator="random_forest", search="grid", space=TUNING_SPACE, top_k=1, **common)
        return run(spark, settings, params)
    raise AssertionError(trainer)


def signature_inputs(model_uri: str) -> list[str]:
    return mlflow.models.get_model_info(model_uri).signature.inputs.input_names()


def matches(pattern: str, exc: BaseException) -> bool:
    return re.search(pattern, str(exc)) is not None


def last_lines(exc: BaseException, lines: int = 12) -> str:
    text = "".join(traceback.format_exception(exc)).strip().splitlines()
    return "\n".join(text[-lines:])


def all_runs(client: mlflow.MlflowClient) -> list:
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


# --- the model's own predictions ------------------------------------------------------------------------------


def own_predictions(spark, model_uri: str, path: Path, fmt: str, key: str) -> pd.DataFrame:
    """`key`, `prediction` (and `probability` where the model gives one) computed by the registered model itself,
    loaded with its own flavor, on the scoring input as read from its file."""
    info = mlflow.models.get_model_info(model_uri)
    inputs = info.signature.inputs.input_names()
    if "spark" in info.flavors:
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        from common.datasets import read_spark_table

        model = mlflow.spark.load_model(model_uri)
        transformed = model.transform(read_spark_table(spark, str(path)))
        columns = [F.col(f"`{key}`").alias(key), F.col("prediction")]
        if "probability" in transformed.columns:
            columns.append(vector_to_array("probability").alias("probability"))
        own = transformed.select(*columns).toPandas()
        if "probability" in own.columns and len(own) and len(own["probability"].iloc[0]) == 2:
            own["probability"] = [p[1] for p in own["probability"]]  # binary: P(second class), as scoring gives
        return own
    frame = read_table(path, fmt)
    X = frame[inputs]
    if "sklearn" in info.flavors:
        model = mlflow.sklearn.load_model(model_uri)
        own = pd.DataFrame({key: frame[key], "prediction": model.predict(X)})
        if hasattr(model, "predict_proba"):
            proba = model.predict_proba(X)
            own["probability"] = proba[:, 1] if proba.shape[1] == 2 else list(proba)
        return own
    model = mlflow.pyfunc.load_model(model_uri)
    return pd.DataFrame({key: frame[key], "prediction": np.asarray(model.predict(X))})


def assert_nothing_quarantined(quarantine: Path) -> None:
    files = [p for p in quarantine.rglob("*") if p.is_file() and not p.name.startswith(".")]
    reasons = [p.read_text() for p in quarantine.rglob("_reasons.json")]
    assert files == [], f"quarantined: {reasons or files}"


def assert_matches_model(out: pd.DataFrame, own: pd.DataFrame, key: str) -> None:
    """Row by row, joined on `key`: the same rows, the same prediction (and probability) as the model's own."""
    assert out[key].is_unique and own[key].is_unique
    merged = out.merge(own, on=key, how="outer", suffixes=("", "_own"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", [key, "_merge"]].head()
    scored, expected = merged["prediction"], merged["prediction_own"]
    numeric = pd.api.types.is_numeric_dtype(scored) and pd.api.types.is_numeric_dtype(expected)
    if numeric:
        np.testing.assert_allclose(scored.astype(float), expected.astype(float), rtol=1e-9, atol=1e-12)
    else:
        differ = merged.loc[scored.to_numpy() != expected.to_numpy(), [key, "prediction", "prediction_own"]]
        assert differ.empty, f"{len(differ)} row(s) differ from the model's own predictions:\n{differ.head()}"
    assert ("probability" in out.columns) == ("probability" in own.columns)
    if "probability" in own.columns:
        got = np.vstack([np.atleast_1d(p) for p in merged["probability"]]).astype(float)
        want = np.vstack([np.atleast_1d(p) for p in merged["probability_own"]]).astype(float)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def assert_passthrough_kept(out: pd.DataFrame, source: pd.DataFrame, passthrough: list[str], key: str) -> None:
    """Every pass-through column holds exactly the input's values, row by row (joined on `key`)."""
    got = _instants(out[passthrough].sort_values(key, ignore_index=True))
    want = _instants(source[passthrough].sort_values(key, ignore_index=True))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _instants(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps compared as instants: Spark holds microseconds (pandas writes nanoseconds) and gives a zoned
    column back in UTC; the kind of column (naive or zoned) must not change."""
    frame = frame.copy()
    for name in frame.columns:
        values = frame[name]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            frame[name] = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            frame[name] = values.astype("datetime64[ns]")
    return frame


def expected_columns(passthrough: list[str], probability: bool) -> list[str]:
    return [
        *passthrough,
        "prediction",
        *(["probability"] if probability else []),
        "model_name",
        "model_version",
        "scored_at",
    ]


def gives_probability(trained) -> bool:
    """Classifiers scored through the product give `probability`; a per-group (pyfunc) model does not."""
    return trained.shape.task == "classification" and trained.trainer != "per_group"

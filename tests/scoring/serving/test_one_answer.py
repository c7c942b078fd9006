"""One model, one answer, everywhere: a registered version gives the same prediction for every row through
score_batch, score_stream, prediction_column, the REST server and (MLlib) its ONNX export. Three models of the same
real passengers (Titanic): the MLlib pipeline with the title stage, a scikit-learn forest, and a per-group model
(one per passenger class).

prediction_column is a Python column expression, so it takes the scikit-learn and per-group models; an MLlib model
scores through its own transform in the JVM and is refused there by design (tested in tests/scoring)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.onnx_model import ONNX_ARTIFACT_DIR, load_onnx_pipeline
from scoring.batch.dataframe import prediction_column
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.serving.app import build_app
from scoring.serving.model_holder import ModelHolder
from scoring.stream.score_stream import ScoreStreamParams
from scoring.stream.score_stream import run as score_stream
from tests.asgi import post_json
from tests.helpers import scoring_frame
from tests.shapes.conftest import Store, using_store

MODELS = {
    "mllib": ("titanic_mllib", True),  # name, gives probabilities
    "sklearn": ("titanic_sklearn", True),
    "per_group": ("titanic_by_class", False),
}


@pytest.fixture(scope="module")
def trained(spark, template_db, tmp_path_factory):
    from training.mllib.train_mllib import TrainMllibParams
    from training.mllib.train_mllib import run as train_mllib
    from training.per_group.train_per_group import TrainPerGroupParams
    from training.per_group.train_per_group import run as train_per_group
    from training.sklearn.train_sklearn import TrainSklearnParams
    from training.sklearn.train_sklearn import run as train_sklearn

    store = Store(tmp_path_factory.mktemp("one-answer"))
    shutil.copy(template_db, store.db)
    with using_store(store):
        settings = store.settings
        train_mllib(spark, settings, TrainMllibParams(title_from="name", num_trees=20, model_name="titanic_mllib"))
        train_sklearn(
            settings,
            TrainSklearnParams(data="titanic", label="survived", estimator="random_forest",
                               hyperparams={"n_estimators": 30}, model_name="titanic_sklearn"),
        )  # fmt: skip
        train_per_group(
            spark,
            settings,
            # fallback: the data holds a passenger class '*' too few to train a model of its own
            TrainPerGroupParams(data="titanic", label="survived", group="class", hyperparams={"n_estimators": 20},
                                fallback="global", model_name="titanic_by_class"),
        )  # fmt: skip
    frame = scoring_frame("titanic").drop(columns=["survived"])
    data = store.root / "passengers.parquet"
    frame.to_parquet(data, index=False)
    return store, frame, data


def _rows(frame: pd.DataFrame, probability: bool) -> pd.DataFrame:
    columns = ["row_id", "prediction", *(["probability"] if probability else [])]
    return frame[columns].sort_values("row_id", ignore_index=True)


def _batch(spark, store: Store, uri: str, out: Path) -> pd.DataFrame:
    score_batch(spark, store.settings, ScoreBatchParams(model_uri=uri, input=str(out.parent / "in"), output=str(out)))
    return pd.read_parquet(out)


def _stream(spark, store: Store, uri: str, folder: Path) -> pd.DataFrame:
    params = ScoreStreamParams(
        model_uri=uri, input=str(folder / "in"), output=str(folder / "stream"), checkpoint=str(folder / "checkpoint"),
        ids="row_id bigint",
    )  # fmt: skip
    score_stream(spark, store.settings, params)
    return pd.read_parquet(folder / "stream")


def _rest(store: Store, uri: str, frame: pd.DataFrame, probability: bool) -> pd.DataFrame:
    holder = ModelHolder.load(uri, reload_seconds=60)
    split = json.loads(frame.to_json(orient="split"))
    reply = post_json(build_app(holder, 64 * 2**20), {"dataframe_split": split, "params": {"probability": probability}})
    assert reply.status == 200, reply.body[:500]
    predictions = reply.json()["predictions"]
    out = pd.DataFrame({"row_id": frame["row_id"]})
    out["prediction"] = [p["prediction"] for p in predictions] if probability else predictions
    if probability:
        out["probability"] = [p["probability"] for p in predictions]
    return out


def _onnx(uri: str, frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    client = mlflow.MlflowClient()
    name, version = uri.removeprefix("models:/").split("/")
    run_id = client.get_model_version(name, version).run_id
    onnx_dir = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{ONNX_ARTIFACT_DIR}", dst_path=str(folder))
    prediction, proba = load_onnx_pipeline(onnx_dir).predict(frame)
    return pd.DataFrame({"row_id": frame["row_id"], "prediction": prediction, "probability": proba[:, 1]})


def _column(spark, uri: str, data: Path) -> pd.DataFrame:
    df = spark.read.parquet(str(data))
    return df.select("row_id", prediction_column(spark, uri, df).alias("prediction")).toPandas()


def _assert_same(reference: pd.DataFrame, other: pd.DataFrame, path: str, probability_tolerance: float = 1e-12):
    other = _rows(other, "probability" in reference and "probability" in other)
    reference = _rows(reference, "probability" in other)
    assert len(other) == len(reference), f"{path}: {len(other)} rows, batch scoring gave {len(reference)}"
    assert other["row_id"].tolist() == reference["row_id"].tolist(), path
    differ = np.flatnonzero(other["prediction"].to_numpy() != reference["prediction"].to_numpy())
    assert differ.size == 0, f"{path}: {differ.size} prediction(s) differ, first rows {differ[:5].tolist()}"
    if "probability" in other:
        np.testing.assert_allclose(
            other["probability"].astype(float), reference["probability"].astype(float), rtol=0,
            atol=probability_tolerance, err_msg=path,
        )  # fmt: skip


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_version_answers_the_same_through_every_scoring_path(spark, trained, tmp_path, kind):
    store, frame, data = trained
    name, probability = MODELS[kind]
    uri = f"models:/{name}/1"
    (tmp_path / "in").mkdir()
    shutil.copy(data, tmp_path / "in" / data.name)

    with using_store(store):
        batch = _batch(spark, store, uri, tmp_path / "batch")
        paths = {"score_stream": _stream(spark, store, uri, tmp_path), "REST": _rest(store, uri, frame, probability)}
        if kind == "mllib":
            paths["ONNX"] = _onnx(uri, frame, tmp_path / "onnx")
        else:
            paths["prediction_column"] = _column(spark, uri, data)

    assert len(batch) == len(frame) and set(batch["model_version"]) == {"1"}
    for path, scored in paths.items():
        # ONNX runs the same arithmetic as Spark in another order: its export passed parity within 1e-6.
        _assert_same(
            batch, scored, f"{kind} via {path}", 1e-6 if path in ("ONNX", "REST") and kind == "mllib" else 1e-12
        )


def test_an_mllib_version_without_a_passing_onnx_export_is_answered_by_spark_alike(trained):
    """The fallback: the server says it has no ONNX to use and answers with the pipeline's own transform."""
    from common.onnx_model import ONNX_PASSED, ONNX_TAG

    store, frame, _ = trained
    uri = "models:/titanic_mllib/1"
    with using_store(store):
        client = mlflow.MlflowClient()
        from_onnx = _rest(store, uri, frame, probability=True)
        client.set_model_version_tag("titanic_mllib", "1", ONNX_TAG, "failed: withheld by this test")
        try:
            holder = ModelHolder.load(uri, reload_seconds=60)
            from_spark = _rest(store, uri, frame, probability=True)
        finally:
            client.set_model_version_tag("titanic_mllib", "1", ONNX_TAG, ONNX_PASSED)

    assert holder.current.kind == "spark"
    assert "no ONNX: failed: withheld by this test" in holder.current.how
    _assert_same(from_onnx, from_spark, "Spark fallback", 1e-6)

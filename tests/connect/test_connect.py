"""The entry points through a real Spark Connect server (tests/connect/conftest.py starts it): the same jobs, with
SPARK_REMOTE set as a user sets it, give the same rows as in classic mode; and no product module reaches the JVM or
the SparkContext except common/spark_compat.py, which does the Connect-safe thing under Connect."""

from __future__ import annotations

import ast
import os
import random
import signal
import time
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.ml.functions import vector_to_array

from common.datasets import load_table
from common.errors import UserInputError
from common.iot_devices import generate
from registry.stages import promote
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.batch.strategies import BATCH_STRATEGIES
from scoring.stream.score_stream import ScoreStreamParams
from scoring.stream.score_stream import run as score_stream
from tests.connect.conftest import classic_mode
from tests.helpers import REPO, scoring_frame, start_module
from tests.scoring.test_score_stream import _land
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib
from training.per_group.train_per_group import TrainPerGroupParams
from training.per_group.train_per_group import run as train_per_group

PRODUCT_PACKAGES = ("common", "training", "scoring", "registry", "lifecycle", "monitoring")
COMPAT_MODULE = REPO / "common" / "spark_compat.py"
# What a Spark Connect client does not have: py4j's gateway, the SparkContext, RDDs, archives added to a context.
CLASSIC_ONLY_ATTRIBUTES = {"_jvm", "_jsc", "sparkContext", "rdd", "addArchive", "addPyFile"}
CLASSIC_ONLY_NAMES = {"SparkContext"}


def _classic_only_uses(tree: ast.Module) -> list[tuple[int, str]]:
    """Attribute reads and names in the code itself (docstrings and comments may speak of them)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in CLASSIC_ONLY_ATTRIBUTES:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Name) and node.id in CLASSIC_ONLY_NAMES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[-1] in CLASSIC_ONLY_NAMES]
    return found


def test_only_the_compatibility_module_reaches_the_jvm_or_the_spark_context():
    found = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for package in PRODUCT_PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if path != COMPAT_MODULE
        for line, what in _classic_only_uses(ast.parse(path.read_text()))
    ]
    assert found == []
    assert _classic_only_uses(ast.parse(COMPAT_MODULE.read_text()))  # the check sees what it looks for


def test_quickstart_main_through_connect_scores_what_the_model_predicts(connect_settings, client, tmp_path):
    from lifecycle.main import main

    result = main(["--estimator", "logistic_regression", "--output", str(tmp_path / "out" / "predictions.parquet")])

    assert (result.rows_in, result.rows_out) == (569, 569)
    scored = pd.read_parquet(result.output.removeprefix("file:")).sort_values("row_id", ignore_index=True)
    frame = scoring_frame()
    model = mlflow.sklearn.load_model(f"models:/{result.model_name}/{result.model_version}")
    expected = model.predict(frame.drop(columns=["row_id", "target"]))
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), expected)
    for run_id in (result.run_id, result.training_run_id, result.scoring_run_id):
        assert client.get_run(run_id).data.tags["lifecycle.spark.connection"] == "connect"


@pytest.mark.parametrize("strategy", BATCH_STRATEGIES)
def test_score_batch_through_connect_with_each_strategy_predicts_what_the_model_predicts(
    connect_spark, connect_settings, client, production_model, tmp_path, strategy
):
    """`files` (and `auto`, which takes it) in Spark tasks (slices of 200 rows), not in the driver: through Connect
    those tasks are a range mapped in pandas, the classic path an RDD."""
    frame = scoring_frame()
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    params = ScoreBatchParams(
        "models:/cancer/production", str(tmp_path / "in.parquet"), str(tmp_path / "out"), strategy=strategy
    )
    result = score_batch(connect_spark, connect_settings, replace(params, slice_rows=200))

    assert (result.rows_in, result.rows_out) == (569, 569)
    run = client.get_run(result.run_id)
    assert run.data.params["scoring_path"] == ("files" if strategy == "auto" else strategy)
    assert run.data.tags["lifecycle.spark.connection"] == "connect"
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(569))
    model = mlflow.sklearn.load_model("models:/cancer/1")
    features = frame.drop(columns=["row_id", "target"])
    np.testing.assert_array_equal(out["prediction"], model.predict(features))
    if strategy == "spark_udf":  # MLflow's udf calls predict only, in classic mode too
        assert out["probability"].isna().all()
    else:
        np.testing.assert_allclose(out["probability"], model.predict_proba(features)[:, 1], rtol=1e-12)


def test_mllib_titanic_chain_trained_and_scored_through_connect_predicts_as_in_classic_mode(
    spark, connect_spark, connect_settings, client, tmp_path
):
    """train_mllib with the title stage runs on the server (pyspark.ml through Connect), the model reaches the
    registry through MLFLOW_DFS_TMP, and score_batch scores with its own transform there; the same registered model
    loaded in a classic session predicts the same for every passenger. (Cross-validation through Connect passed
    too, at about three times this test's cost: left to the classic tests.)"""
    params = TrainMllibParams(data="titanic", label="survived", title_from="name", num_trees=10, model_name="titanic")
    trained = train_mllib(connect_spark, connect_settings, params)
    promote(client, "titanic", trained.model_version, "Production")
    passengers = load_table("titanic").frame.drop(columns="survived")
    passengers.insert(0, "passenger_id", np.arange(len(passengers)))
    passengers.to_parquet(tmp_path / "passengers.parquet", index=False)
    result = score_batch(
        connect_spark,
        connect_settings,
        ScoreBatchParams("models:/titanic/production", str(tmp_path / "passengers.parquet"), str(tmp_path / "out")),
    )

    assert (result.rows_in, result.rows_out) == (1313, 1313)
    for run_id in (trained.run_id, result.run_id):
        assert client.get_run(run_id).data.tags["lifecycle.spark.connection"] == "connect"
    out = pd.read_parquet(tmp_path / "out").sort_values("passenger_id", ignore_index=True)
    with classic_mode():
        model = mlflow.spark.load_model(f"models:/titanic/{trained.model_version}")
        classic = (
            model.transform(spark.read.parquet(str(tmp_path / "passengers.parquet")))
            .select("passenger_id", "prediction", vector_to_array("probability")[1].alias("probability"))
            .toPandas()
            .sort_values("passenger_id", ignore_index=True)
        )
    assert "title_index" in {stage.getOutputCol() for stage in model.stages if stage.hasParam("outputCol")}
    np.testing.assert_array_equal(out["prediction"], classic["prediction"].astype("int64"))
    np.testing.assert_allclose(out["probability"], classic["probability"], rtol=1e-12)


def test_per_group_models_trained_and_scored_through_connect_predict_what_each_device_model_predicts(
    connect_spark, connect_settings, client, tmp_path
):
    trained = train_per_group(
        connect_spark,
        connect_settings,
        TrainPerGroupParams(data="iot_devices", label="failure", estimator="logistic_regression", model_name="devices"),
    )
    assert len(trained.trained) == 47
    known = generate()
    known = known[known["device_id"].isin(trained.trained)].drop(columns=["failure"])
    known = known.assign(reading_id=np.arange(len(known)))
    known.to_parquet(tmp_path / "readings.parquet", index=False)
    result = score_batch(
        connect_spark,
        connect_settings,
        ScoreBatchParams(
            f"models:/devices/{trained.model_version}", str(tmp_path / "readings.parquet"), str(tmp_path / "out")
        ),
    )

    assert (result.rows_in, result.rows_out) == (9_400, 9_400)
    assert client.get_run(trained.run_id).data.tags["lifecycle.spark.connection"] == "connect"
    out = pd.read_parquet(tmp_path / "out").sort_values("reading_id", ignore_index=True)
    routing = mlflow.pyfunc.load_model(f"models:/devices/{trained.model_version}")
    expected = routing.predict(known.drop(columns=["reading_id"]))
    np.testing.assert_array_equal(out["prediction"], np.asarray(expected))


def test_score_stream_through_connect_killed_and_restarted_scores_every_row_exactly_once(
    spark, connect_spark, connect_settings, production_model, tmp_path
):
    """The first run is `python -m scoring.stream.score_stream` with SPARK_REMOTE set, killed with SIGKILL at a random
    moment after it committed its first micro-batch (a client process start through Connect costs no JVM); the next
    starts in-process on the same checkpoint, with more files landed meanwhile: the last recorded batch is replayed,
    or skipped when it was committed."""
    data = scoring_frame().drop(columns="target")
    chunks = [data.iloc[i::4] for i in range(4)]
    for i in range(2):
        _land(chunks[i], tmp_path / "in", f"part-{i}.parquet")
    params = ScoreStreamParams(
        "models:/cancer/production",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        str(tmp_path / "checkpoint"),
        ids="row_id BIGINT",
        max_files_per_trigger=1,
        trigger="1 second",
    )
    args = ["--model-uri", params.model_uri, "--input", params.input, "--output", params.output]
    args += ["--checkpoint", params.checkpoint, "--ids", "row_id BIGINT", "--max-files-per-trigger", "1"]
    args += ["--trigger", "1 second"]
    log = tmp_path / "stream.log"
    job = start_module("scoring.stream.score_stream", args, connect_settings.tracking_uri, log)
    deadline = time.monotonic() + 300
    while not (tmp_path / "out" / "batch_id=0").exists() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.2)
    assert (tmp_path / "out" / "batch_id=0").exists(), log.read_text()[-3000:]
    time.sleep(random.uniform(0.0, 1.5))
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    for i in range(2, 4):
        _land(chunks[i], tmp_path / "in", f"part-{i}.parquet")
    second = score_stream(connect_spark, connect_settings, replace(params, trigger="available_now"))

    assert second.scored_batches and max(second.scored_batches) == 3
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    assert out["row_id"].tolist() == list(range(len(data)))  # every row, once
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(out["prediction"], model.predict(data.drop(columns="row_id")))
    assert (out["model_version"] == "1").all()
    # The checkpoint keeps the mode it started in: Spark's own file source could not read what this one recorded.
    with classic_mode(), pytest.raises(UserInputError, match="this checkpoint's stream ran through Spark Connect"):
        score_stream(spark, connect_settings, replace(params, trigger="available_now"))


def test_libraries_that_need_the_spark_context_are_refused_before_any_run(connect_spark, connect_settings, client):
    """Through Connect: joblib-spark, Hyperopt's SparkTrials and xgboost.spark each refused in one line naming what
    runs instead; no run is recorded."""
    from training.tuning.tune_hyperopt import TuneHyperoptParams
    from training.tuning.tune_hyperopt import run as tune_hyperopt
    from training.tuning.tune_joblib import TuneJoblibParams
    from training.tuning.tune_joblib import run as tune_joblib

    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    refusals = [
        (lambda: tune_joblib(connect_spark, connect_settings, TuneJoblibParams()), "joblib-spark .* tune_hyperopt"),
        (
            lambda: tune_hyperopt(connect_spark, connect_settings, TuneHyperoptParams(parallelism=2)),
            "SparkTrials .* --backend optuna",
        ),
        (
            lambda: train_mllib(
                connect_spark, connect_settings, TrainMllibParams(data="penguins", label="species", estimator="xgboost")
            ),
            "estimator xgboost .* random_forest or gbt",
        ),
    ]
    for job, message in refusals:
        with pytest.raises(UserInputError, match=message) as refused:
            job()
        assert "cannot run through Spark Connect" in str(refused.value) and "\n" not in str(refused.value)
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before

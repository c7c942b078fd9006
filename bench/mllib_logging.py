"""How long logging an MLlib model takes beyond the fit itself: ours (explicit requirements) vs MLflow inferring
requirements (which loads the model in a subprocess with a JVM of its own). Same fitted pipeline, one run.

    python -m bench.mllib_logging
"""

from __future__ import annotations

import time

import mlflow
from pyspark.sql import types as T

from bench._common import bench_settings, print_table, workdir
from common.spark import build_spark
from training.mllib.model import log_spark_model
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    settings = bench_settings(workdir())
    spark = build_spark(settings, app_name="bench-mllib-logging")
    mlflow.set_experiment("bench")

    # The whole job once (fit, evaluation, plots, logging); then the same fitted model logged both ways.
    job_s = _timed(
        lambda: train_mllib(spark, settings, TrainMllibParams(data="titanic", label="survived", title_from="name"))
    )
    last = mlflow.search_runs(experiment_names=["bench"], order_by=["start_time DESC"], max_results=1).iloc[0]
    model = mlflow.spark.load_model(f"runs:/{last.run_id}/model")
    features = spark.createDataFrame(
        mlflow.artifacts.load_dict(f"runs:/{last.run_id}/model/input_example.json")["data"],
        "name string, class string, age double, sex string",
    )
    example = features.toPandas()

    with mlflow.start_run():
        ours_s = _timed(lambda: log_spark_model(model, features, "prediction", T.LongType()))
    with mlflow.start_run():
        inferred_s = _timed(lambda: mlflow.spark.log_model(model, artifact_path="model", input_example=example))
    print_table(
        "Logging a fitted MLlib pipeline (titanic, title stage + indexers + random forest), seconds",
        ["what", "seconds", "x ours"],
        [
            ["train_mllib job end to end (fit, evaluate, plot, log)", job_s, job_s / ours_s],
            ["log_spark_model (explicit requirements)", ours_s, 1.0],
            ["mlflow.spark.log_model, requirements inferred", inferred_s, inferred_s / ours_s],
        ],
    )
    spark.stop()


if __name__ == "__main__":
    main()

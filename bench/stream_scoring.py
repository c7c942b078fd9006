"""score_stream on 2 cores: per-micro-batch overhead with small files and sustained rows/s with large files, for a
scikit-learn and an MLlib model, with score_batch on the same rows as the reference. One run, side by side.

    python -m bench.stream_scoring [--small-files 20] [--small-rows 100] [--large-files 8] [--large-rows 125000]
                                   [--large-files-per-trigger 2]
"""

from __future__ import annotations

import argparse
import time

import mlflow
from pyspark.sql import types as T
from sklearn.linear_model import LogisticRegression

from bench._common import bench_settings, print_table, synthetic_classification, workdir, write_parquet_files
from common.spark import build_spark
from scoring.batch import score_batch
from scoring.batch.score_batch import ScoreBatchParams
from scoring.stream.score_stream import ScoreStreamParams
from scoring.stream.score_stream import run as run_stream
from scoring.stream.state import StreamState
from training.mllib.model import log_spark_model
from training.mllib.pipeline import PREDICTION, MllibSpec, build_pipeline, plan_features
from training.sklearn.model import log_sklearn_model
from training.tasks import CLASSIFICATION


def _register_models(spark, train) -> dict[str, str]:
    features = [c for c in train.columns if c.startswith("f")]
    with mlflow.start_run():
        log_sklearn_model(LogisticRegression(max_iter=1000).fit(train[features], train["label"]), train[features], "sk")
    frame = spark.createDataFrame(train.drop(columns="id")).withColumnRenamed("label", "label_index")
    spec = MllibSpec(label="label_index", task=CLASSIFICATION, num_trees=20, max_depth=6)
    plan = plan_features(frame, spec)
    model = build_pipeline(plan, spec, None, max_categories=0).fit(frame)
    with mlflow.start_run():
        log_spark_model(model, frame.select(*plan.raw_features), PREDICTION, T.LongType(), "mllib")
    return {"scikit-learn logistic regression": "models:/sk/1", "MLlib random forest (20 trees)": "models:/mllib/1"}


def _stream(spark, settings, folder, uri, name, files_per_trigger) -> tuple[float, list[float]]:
    config = ScoreStreamParams(
        ids="id BIGINT",
        model_uri=uri,
        input=str(folder),
        output=str(folder.parent / f"out-{name}"),
        checkpoint=str(folder.parent / f"checkpoint-{name}"),
        quarantine=str(folder.parent / f"quarantine-{name}"),
        max_files_per_trigger=files_per_trigger,
    )
    started = time.perf_counter()
    run_stream(spark, settings, config)
    seconds = time.perf_counter() - started
    run_id = StreamState(spark, config.checkpoint).run_id()
    latencies = [m.value for m in mlflow.MlflowClient().get_metric_history(run_id, "latency_seconds")]
    return seconds, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-files", type=int, default=20)
    parser.add_argument("--small-rows", type=int, default=100)
    parser.add_argument("--large-files", type=int, default=8)
    parser.add_argument("--large-rows", type=int, default=125_000)
    parser.add_argument("--large-files-per-trigger", type=int, default=2, help="2 cores: 2 files keep both busy")
    args = parser.parse_args()

    root = workdir()
    settings = bench_settings(root)
    spark = build_spark(settings, app_name="bench-stream")
    models = _register_models(spark, synthetic_classification(20_000, 20, seed=1))
    large_rows = args.large_files * args.large_rows
    small = write_parquet_files(
        synthetic_classification(args.small_files * args.small_rows, 20).drop(columns="label"),
        root / "small",
        args.small_files,
    )
    large = write_parquet_files(
        synthetic_classification(large_rows, 20).drop(columns="label"), root / "large", args.large_files
    )

    rows = []
    for index, (label, uri) in enumerate(models.items()):
        _, small_latencies = _stream(spark, settings, small, uri, f"small-{index}", 1)
        large_s, large_latencies = _stream(spark, settings, large, uri, f"large-{index}", args.large_files_per_trigger)
        batch = score_batch.run(
            spark, settings, ScoreBatchParams(model_uri=uri, input=str(large), output=str(root / f"batch-{index}"))
        )
        per_batch = sum(small_latencies) / len(small_latencies)
        batch_rate = large_rows / batch.seconds
        # The first micro-batch pays for starting Python workers and loading the model in them; the rest is the
        # sustained rate.
        rows_per_batch = args.large_rows * args.large_files_per_trigger
        steady = rows_per_batch * (len(large_latencies) - 1) / sum(large_latencies[1:])
        rows.append([label, "stream, small files: s per micro-batch", per_batch, "-"])
        rows.append(
            [label, "stream, large files: rows/s (wall, all)", large_rows / large_s, large_rows / large_s / batch_rate]
        )
        rows.append([label, "stream, large files: rows/s after batch 0", steady, steady / batch_rate])
        rows.append([label, "score_batch, same rows: rows/s", large_rows / batch.seconds, 1.0])
    print_table(
        f"score_stream on local[2]: {args.small_files} files x {args.small_rows} rows (one per micro-batch), "
        f"{args.large_files} files x {args.large_rows:,} rows ({args.large_files_per_trigger} per micro-batch)",
        ["model", "figure", "value", "x score_batch"],
        rows,
    )
    spark.stop()


if __name__ == "__main__":
    main()

"""score_batch's scoring path vs mlflow.pyfunc.spark_udf, same registered model, same Parquet input, one run.

    python -m bench.score_batch_vs_spark_udf [--rows 1000000] [--features 20] [--files 16]

Both sides read the same Parquet folder on local[2] (`--files` files, as a Spark job writes them; one task per
file) and end in Spark's `noop` sink, so the figure is reading + scoring, without the cost of writing. Each is
timed twice after a warm-up; the faster run counts.
"""

from __future__ import annotations

import argparse

import mlflow
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bench._common import (
    bench_settings,
    best_time,
    print_table,
    synthetic_classification,
    workdir,
    write_parquet_files,
)
from common.spark import build_spark
from scoring.batch.dataframe import score_dataframe
from training.sklearn.model import log_sklearn_model

MODELS = {
    "logistic regression": lambda: LogisticRegression(max_iter=1000),
    "random forest (100 trees)": lambda: RandomForestClassifier(
        n_estimators=100, max_depth=8, n_jobs=1, random_state=0
    ),
}


def _identity(batches):
    yield from batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--files", type=int, default=16)
    args = parser.parse_args()

    folder = workdir()
    settings = bench_settings(folder)
    data = synthetic_classification(args.rows, args.features)
    path = write_parquet_files(data.drop(columns="label"), folder / "input", args.files)
    features = [c for c in data.columns if c.startswith("f")]
    train = data.sample(20_000, random_state=0)

    spark = build_spark(settings, app_name="bench")
    df = spark.read.parquet(str(path))
    rows = []
    for index, (label, factory) in enumerate(MODELS.items()):
        name = f"bench_model_{index}"
        with mlflow.start_run():
            log_sklearn_model(
                factory().fit(train[features], train["label"]), train[features], registered_model_name=name
            )
        uri = f"models:/{name}/1"

        ours = score_dataframe(spark, df, uri).frame
        udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="long", env_manager="local")
        theirs = df.select("id", udf(*features).alias("prediction"))
        for frame in (ours, theirs):  # warm-up: JIT, worker start, model download
            frame.limit(10_000).write.format("noop").mode("overwrite").save()
        ours_s = best_time(lambda frame=ours: frame.write.format("noop").mode("overwrite").save())
        theirs_s = best_time(lambda frame=theirs: frame.write.format("noop").mode("overwrite").save())
        rows.append([label, "score_batch (mapInArrow)", args.rows / ours_s, theirs_s / ours_s])
        rows.append([label, "mlflow.pyfunc.spark_udf", args.rows / theirs_s, 1.0])
    # No model at all: every column to a Python worker and back. No scoring path that runs in Python workers can
    # be faster than this on the same machine, so it bounds the achievable speed-up over spark_udf.
    identity = df.mapInArrow(_identity, df.schema)
    identity.limit(10_000).write.format("noop").mode("overwrite").save()
    identity_s = best_time(lambda: identity.write.format("noop").mode("overwrite").save())
    rows.append(["(no model)", "mapInArrow identity: transfer ceiling", args.rows / identity_s, float("nan")])
    print_table(
        f"{args.rows:,} rows x {args.features} features in {args.files} Parquet files, local[2]: "
        "rows/s and speed-up over spark_udf",
        ["model", "path", "rows/s", "x spark_udf"],
        rows,
    )
    spark.stop()


if __name__ == "__main__":
    main()

"""score_batch's path for an MLlib pipeline (its own `transform`, in the JVM) vs the same registered model through
`mlflow.pyfunc.spark_udf`, on data of mixed categorical and numeric columns (categorical + numeric columns -> a price).

    python -m bench.mllib_scoring [--rows 1000000] [--udf-rows 20000]

spark_udf runs the Spark model inside each Python worker (a Spark session of its own per worker), so it is timed
on a sample of `--udf-rows` rows and reported as rows/s; both end in Spark's `noop` sink.
"""

from __future__ import annotations

import argparse

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import functions as F
from pyspark.sql import types as T

from bench._common import bench_settings, best_time, print_table, workdir, write_parquet_files
from common.spark import build_spark
from scoring.batch.dataframe import score_dataframe
from training.mllib.model import log_spark_model
from training.mllib.pipeline import PREDICTION, MllibSpec, build_pipeline, plan_features
from training.tasks import REGRESSION


def listings(rows: int, seed: int = 0) -> pd.DataFrame:
    """Seeded synthetic rental listings: neighbourhood and room type (strings), size and reviews (numbers)."""
    rng = np.random.default_rng(seed)
    neighbourhoods = np.array([f"district_{i:02d}" for i in range(30)])
    rooms = np.array(["entire_home", "private_room", "shared_room"])
    frame = pd.DataFrame(
        {
            "listing_id": np.arange(rows, dtype="int64"),
            "neighbourhood": neighbourhoods[rng.integers(0, 30, rows)],
            "room_type": rooms[rng.integers(0, 3, rows)],
            "accommodates": rng.integers(1, 9, rows).astype("float64"),
            "bedrooms": rng.integers(0, 5, rows).astype("float64"),
            "bathrooms": rng.integers(1, 4, rows).astype("float64"),
            "review_score": rng.uniform(60, 100, rows),
        }
    )
    district_effect = frame["neighbourhood"].str[-2:].astype(int) * 3.0
    room_effect = frame["room_type"].map({"entire_home": 80.0, "private_room": 30.0, "shared_room": 0.0})
    frame["price"] = 40 + district_effect + room_effect + 25 * frame["bedrooms"] + rng.normal(0, 15, rows)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--udf-rows", type=int, default=20_000)
    args = parser.parse_args()

    folder = workdir()
    settings = bench_settings(folder)
    data = listings(args.rows)
    path = write_parquet_files(data.drop(columns="price"), folder / "listings", 16)
    spark = build_spark(settings, app_name="bench-mllib-scoring")

    train = spark.createDataFrame(data.sample(50_000, random_state=0).drop(columns="listing_id"))
    spec = MllibSpec(label="price", task=REGRESSION, num_trees=20, max_depth=6)
    plan = plan_features(train, spec)
    model = build_pipeline(plan, spec, None, max_categories=30).fit(train)
    with mlflow.start_run():
        log_spark_model(model, train.select(*plan.raw_features), PREDICTION, T.DoubleType(), "listings_price")
    uri = "models:/listings_price/1"

    df = spark.read.parquet(str(path))
    ours = score_dataframe(spark, df, uri).frame
    ours.limit(10_000).write.format("noop").mode("overwrite").save()
    ours_s = best_time(lambda: ours.write.format("noop").mode("overwrite").save())

    sample = df.limit(args.udf_rows).cache()
    sample.count()
    udf = mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")
    theirs = sample.select("listing_id", udf(F.struct(*plan.raw_features)).alias("prediction"))
    theirs.limit(100).write.format("noop").mode("overwrite").save()
    theirs_s = best_time(lambda: theirs.write.format("noop").mode("overwrite").save(), repeats=1)

    ours_rate, theirs_rate = args.rows / ours_s, args.udf_rows / theirs_s
    print_table(
        "MLlib pipeline (2 indexed strings + 4 numbers -> random forest, 20 trees), local[2]",
        ["path", "rows", "rows/s", "x spark_udf"],
        [
            ["score_batch: the model's own transform (JVM)", args.rows, ours_rate, ours_rate / theirs_rate],
            ["mlflow.pyfunc.spark_udf", args.udf_rows, theirs_rate, 1.0],
        ],
    )
    spark.stop()


if __name__ == "__main__":
    main()

"""The ways users score a scikit-learn model on Spark without this project, written as tutorials commonly write them.

Each builder takes the input DataFrame (`id`, f0..fn) and returns the scored DataFrame; the timed action writes it
as Parquet. Worker-side functions are closures, so Spark pickles them by value with the model they capture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T


def per_row_udf(spark: SparkSession, model, features: list[str]):
    """A plain Python UDF calling predict on one row at a time, the model broadcast (the usual starting point)."""
    broadcast = spark.sparkContext.broadcast(model)

    @F.udf(T.LongType())
    def predict_row(values):
        return int(broadcast.value.predict(np.asarray([values]))[0])

    def build(df: DataFrame) -> DataFrame:
        return df.select("id", predict_row(F.array(*features)).alias("prediction"))

    return build


def grouped_collect_list(spark: SparkSession, model, features: list[str], rows: int):
    """Grouped collect_list: a global row_number modulo the group count, collect_list of {id: features} maps per
    group, one UDF call per group returning {id: probability}, exploded back to rows. Groups of 50k rows, as that
    recipe advises (fewer rows for wide inputs, so a group's maps fit in a Python worker)."""
    broadcast = spark.sparkContext.broadcast(model)
    per_group = min(50_000, 2_000_000 // len(features))
    groups = max(rows // per_group, 2)

    @F.udf(T.MapType(T.LongType(), T.DoubleType()))
    def predict_group(feature_maps):
        ids, values = zip(*[(k, v) for d in feature_maps for k, v in d.items()], strict=True)
        index = broadcast.value.classes_.tolist().index(1)
        probabilities = broadcast.value.predict_proba(np.asarray(values))[:, index]
        return dict(zip(ids, (float(p) for p in probabilities), strict=True))

    def build(df: DataFrame) -> DataFrame:
        grouper = F.row_number().over(Window.partitionBy(F.lit(1)).orderBy(F.lit(1))) % groups
        return (
            df.select(F.create_map("id", F.array(*features)).alias("feature_map"), grouper.alias("grouper"))
            .groupBy("grouper")
            .agg(F.collect_list("feature_map").alias("feature_map"))
            .select(predict_group("feature_map").alias("results"))
            .select(F.explode("results").alias("id", "probability"))
        )

    return build


def grouped_apply_in_pandas(spark: SparkSession, model, features: list[str]):
    """Grouped map: rows put in explicit groups, a grouped-map pandas UDF with the model captured in its closure."""
    buckets = max(int(spark.conf.get("spark.sql.shuffle.partitions")), spark.sparkContext.defaultParallelism)

    def predict_group(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"id": frame["id"], "prediction": model.predict(frame[features].to_numpy())})

    def build(df: DataFrame) -> DataFrame:
        bucketed = df.withColumn("bucket", F.pmod(F.col("id"), F.lit(buckets)))
        return bucketed.groupBy("bucket").applyInPandas(predict_group, "id long, prediction long")

    return build


def map_in_pandas(spark: SparkSession, model, features: list[str]):
    """mapInPandas with the model captured once per task (unpickled once per partition, not per batch)."""

    def predict_frames(frames):
        for frame in frames:
            yield pd.DataFrame({"id": frame["id"], "prediction": model.predict(frame[features].to_numpy())})

    def build(df: DataFrame) -> DataFrame:
        return df.mapInPandas(predict_frames, "id long, prediction long")

    return build


def mlflow_spark_udf(spark: SparkSession, model_uri: str, features: list[str]):
    """MLflow's own spark_udf, called the way its documentation shows: feature columns as arguments."""
    import mlflow.pyfunc

    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="long", env_manager="local")

    def build(df: DataFrame) -> DataFrame:
        return df.select("id", udf(*features).alias("prediction"))

    return build

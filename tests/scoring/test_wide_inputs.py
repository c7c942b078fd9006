"""A model with 300 features scores without Python's 255-argument limit, from 300 named columns,
one array column or one MLlib vector column."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import types as T
from sklearn.linear_model import LogisticRegression

from common.errors import UserInputError
from scoring.batch.dataframe import prediction_column, score_dataframe
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.batch.strategies import STRATEGIES
from training.sklearn.model import log_sklearn_model

N_FEATURES, N_ROWS = 300, 240
NAMES = [f"f{i}" for i in range(N_FEATURES)]


@pytest.fixture
def wide_model(settings):
    """A logistic regression on 300 features, trained here on small rows, registered as 'wide' version 1."""
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.standard_normal((N_ROWS, N_FEATURES)), columns=NAMES)
    y = (X.to_numpy() @ rng.standard_normal(N_FEATURES) > 0).astype("int64")
    model = LogisticRegression(max_iter=2000).fit(X, y)
    with mlflow.start_run():
        log_sklearn_model(model, X, registered_model_name="wide")
    return model, X.assign(id=np.arange(N_ROWS))[["id", *NAMES]]


def _sorted(df) -> pd.DataFrame:
    return df.toPandas().sort_values("id", ignore_index=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_300_named_columns_score_with_every_strategy(spark, settings, wide_model, strategy):
    model, frame = wide_model
    out = _sorted(score_dataframe(spark, spark.createDataFrame(frame), "models:/wide/1", strategy=strategy).frame)
    assert list(out.columns) == ["id", "prediction", "probability", "model_name", "model_version", "scored_at"]
    assert out["id"].tolist() == list(range(N_ROWS))
    np.testing.assert_array_equal(out["prediction"], model.predict(frame[NAMES]))


def test_features_from_one_array_column_or_one_vector_column(spark, settings, wide_model, tmp_path):
    model, frame = wide_model
    expected = model.predict(frame[NAMES])
    values = frame[NAMES].to_numpy()
    as_array = spark.createDataFrame(
        [(int(i), row.tolist()) for i, row in zip(frame["id"], values, strict=True)],
        T.StructType([T.StructField("id", T.LongType()), T.StructField("features", T.ArrayType(T.DoubleType()))]),
    )
    as_vector = spark.createDataFrame(
        [(int(i), Vectors.dense(row)) for i, row in zip(frame["id"], values, strict=True)],
        T.StructType([T.StructField("id", T.LongType()), T.StructField("features", VectorUDT())]),
    )
    for df in (as_array, as_vector):
        scored = score_dataframe(spark, df, "models:/wide/1", features_column="features").frame
        out = _sorted(scored)
        assert list(out.columns) == ["id", "prediction", "probability", "model_name", "model_version", "scored_at"]
        assert out["id"].tolist() == list(range(N_ROWS))
        np.testing.assert_array_equal(out["prediction"], expected)
        np.testing.assert_allclose(out["probability"], model.predict_proba(frame[NAMES])[:, 1], rtol=1e-12)

    # The batch job takes the same option: Parquet with one array column in, scored Parquet out.
    path = tmp_path / "arrays.parquet"
    as_array.write.parquet(str(path))
    out_path = tmp_path / "out"
    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri="models:/wide/1", input=str(path), output=str(out_path), features_column="features"),
    )
    assert (result.rows_in, result.rows_out) == (N_ROWS, N_ROWS)
    written = pd.read_parquet(tmp_path / "out").sort_values("id", ignore_index=True)
    np.testing.assert_array_equal(written["prediction"], expected)


def test_a_features_column_of_the_wrong_kind_or_length_is_named(spark, settings, wide_model):
    short = spark.createDataFrame([(1, [0.5] * 299)], "id BIGINT, features ARRAY<DOUBLE>")
    with pytest.raises(Exception, match="features column 'features' holds 299 values; 300 expected"):
        score_dataframe(spark, short, "models:/wide/1", features_column="features").frame.collect()
    text = spark.createDataFrame([(1, "0.5")], "id BIGINT, features STRING")
    with pytest.raises(UserInputError, match="features column 'features': expected an array of numbers or an MLlib"):
        score_dataframe(spark, text, "models:/wide/1", features_column="features")
    with pytest.raises(UserInputError, match="features column 'vec' is not in the input; columns: id, features"):
        score_dataframe(spark, text, "models:/wide/1", features_column="vec")


def test_prediction_column_on_300_named_columns_in_reverse_order(spark, settings, wide_model):
    model, frame = wide_model
    df = spark.createDataFrame(frame[["id", *reversed(NAMES)]])
    out = _sorted(df.select("id", prediction_column(spark, "models:/wide/1").alias("prediction")))
    assert len(out) == N_ROWS
    np.testing.assert_array_equal(out["prediction"], model.predict(frame[NAMES]))


def test_score_batch_command_takes_the_features_column(spark, settings, wide_model, tmp_path, run_in_process):
    """The command in-process (`python -m scoring.batch.score_batch` in a process of its own:
    test_standalone_cluster)."""
    model, frame = wide_model
    rows = [(int(i), row.tolist()) for i, row in zip(frame["id"], frame[NAMES].to_numpy(), strict=True)]
    pd.DataFrame(rows, columns=["id", "features"]).to_parquet(tmp_path / "arrays.parquet", index=False)
    args = ["--model-uri", "models:/wide/1", "--input", str(tmp_path / "arrays.parquet"), "--output"]
    completed = run_in_process(
        "scoring.batch.score_batch", [*args, str(tmp_path / "out"), "--features-column", "features"]
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"scored {N_ROWS} rows in, {N_ROWS} rows out with wide v1" in completed.stdout
    written = pd.read_parquet(tmp_path / "out").sort_values("id", ignore_index=True)
    np.testing.assert_array_equal(written["prediction"], model.predict(frame[NAMES]))

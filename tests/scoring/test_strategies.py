"""Every scoring strategy keeps the same contract: ids, prediction (+ probability), model name and version, rows out
equal to rows in, and predictions equal to the model's own predict."""

import logging

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from scoring.batch.dataframe import prediction_column, score_dataframe
from scoring.batch.executor import FRAME_FROM_NDARRAY, NDARRAY
from scoring.batch.plan import plan_python_scoring
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from scoring.batch.strategies import STRATEGIES
from tests.helpers import scoring_frame

CONTRACT = ["row_id", "target", "prediction", "probability", "model_name", "model_version", "scored_at"]


def _scored(spark, frame: pd.DataFrame, uri: str, strategy: str) -> pd.DataFrame:
    scored = score_dataframe(spark, spark.createDataFrame(frame), uri, strategy=strategy)
    return scored.frame.toPandas().sort_values("row_id", ignore_index=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_predicts_what_the_pipeline_itself_predicts(spark, settings, production_model, strategy):
    frame = scoring_frame()
    out = _scored(spark, frame, "models:/cancer/production", strategy)

    assert list(out.columns) == CONTRACT
    assert out["row_id"].tolist() == list(range(569))
    model = mlflow.sklearn.load_model("models:/cancer/1")
    features = frame.drop(columns=["row_id", "target"])
    np.testing.assert_array_equal(out["prediction"], model.predict(features))
    if strategy == "spark_udf":  # MLflow's udf calls predict only
        assert out["probability"].isna().all()
    else:
        np.testing.assert_allclose(out["probability"], model.predict_proba(features)[:, 1], rtol=1e-12)
    assert (out["model_name"] == "cancer").all() and (out["model_version"] == "1").all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_predicts_what_a_bare_multiclass_forest_predicts(spark, settings, wine_forest, strategy):
    model, frame = wine_forest
    out = _scored(spark, frame, "models:/wine_forest/1", strategy)

    assert list(out.columns) == CONTRACT
    assert out["row_id"].tolist() == list(range(178))
    features = frame.drop(columns=["row_id", "target"])
    np.testing.assert_array_equal(out["prediction"], model.predict(features))
    if strategy != "spark_udf":
        np.testing.assert_allclose(np.stack(out["probability"]), model.predict_proba(features), rtol=1e-12)


def test_workers_get_numpy_when_the_model_takes_it_and_a_named_frame_when_it_selects_by_name(
    spark, settings, production_model, wine_forest
):
    from pyspark.sql import types as T

    from common.model_uri import resolve_model_uri
    from scoring.batch.dataframe import model_info, prediction_arrow_type

    planned = {}
    for name, uri in (("pipeline", "models:/cancer/1"), ("forest", "models:/wine_forest/1")):
        resolved = resolve_model_uri(mlflow.MlflowClient(), uri)
        info = model_info(mlflow.get_tracking_uri(), resolved.load_uri)
        names = info.signature.inputs.input_names()
        planned[name] = plan_python_scoring(
            spark,
            resolved,
            info.flavors,
            names,
            [],
            [T.DoubleType()] * len(names),
            prediction_arrow_type(info.signature),
        ).plan
    # The training pipeline's ColumnTransformer selects columns by name: it gets a DataFrame around the array.
    assert planned["pipeline"].input_kind == FRAME_FROM_NDARRAY
    assert planned["forest"].input_kind == NDARRAY and planned["forest"].probability == "multiclass"
    assert planned["forest"].chunk_rows == 50_000  # 13 narrow features: the largest batch


def test_an_unknown_strategy_is_refused_naming_the_allowed_ones(spark, settings, production_model, tmp_path):
    allowed = r"unknown scoring strategy 'fastest'; choose one of: auto, arrow, pandas, grouped, spark_udf"
    df = spark.createDataFrame(scoring_frame())
    with pytest.raises(UserInputError, match=allowed):
        score_dataframe(spark, df, "models:/cancer/production", strategy="fastest")
    path = tmp_path / "in.parquet"
    scoring_frame().to_parquet(path)
    with pytest.raises(UserInputError, match=allowed):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out"), strategy="fastest"
            ),
        )
    assert not (tmp_path / "out").exists()


def test_score_batch_takes_a_strategy_and_logs_it(spark, settings, client, production_model, tmp_path):
    path = tmp_path / "in.parquet"
    scoring_frame().to_parquet(path)
    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(
            model_uri="models:/cancer/production", input=str(path), output=str(tmp_path / "out"), strategy="grouped"
        ),
    )
    assert (result.rows_in, result.rows_out) == (569, 569)
    out = pd.read_parquet(tmp_path / "out").sort_values("row_id", ignore_index=True)
    model = mlflow.sklearn.load_model("models:/cancer/1")
    np.testing.assert_array_equal(out["prediction"], model.predict(scoring_frame().drop(columns=["row_id", "target"])))
    params = client.get_run(result.run_id).data.params
    assert (params["strategy"], params["scoring_path"]) == ("grouped", "grouped")


def test_prediction_column_binds_by_name_whatever_the_column_order(spark, settings, production_model):
    frame = scoring_frame()
    features = frame.drop(columns=["row_id", "target"])
    reordered = frame[["target", *reversed(features.columns), "row_id"]]
    expected = mlflow.sklearn.load_model("models:/cancer/1").predict(features)
    for pandas_frame, df_arg in ((frame, False), (reordered, True), (reordered, False)):
        df = spark.createDataFrame(pandas_frame)
        column = prediction_column(spark, "models:/cancer/production", df=df if df_arg else None)
        out = df.select("row_id", column.alias("p")).toPandas().sort_values("row_id", ignore_index=True)
        assert len(out) == 569
        np.testing.assert_array_equal(out["p"], expected)


def test_prediction_column_checks_a_given_frame_against_the_signature(spark, settings, production_model):
    df = spark.createDataFrame(scoring_frame().drop(columns="worst_area"))
    with pytest.raises(UserInputError, match=r"column 'worst_area' is missing \(expected double\)"):
        prediction_column(spark, "models:/cancer/production", df=df)


def test_model_size_is_logged_and_a_large_model_against_executor_memory_warns(
    spark, settings, client, wine_forest, tmp_path, caplog
):
    import pickle

    path = tmp_path / "in.parquet"
    wine_forest[1].to_parquet(path)
    loaded = mlflow.sklearn.load_model("models:/wine_forest/1")
    size = len(pickle.dumps(loaded, protocol=pickle.HIGHEST_PROTOCOL))
    assert size > sum(tree.tree_.node_count for tree in loaded.estimators_) * 8  # the trees' arrays are counted

    with caplog.at_level(logging.WARNING, logger="scoring.batch.model_size"):
        quiet = score_batch(
            spark,
            settings,
            # arrow: the model is copied into the executors' Python workers (`files` on so small an input scores
            # in the driver, one copy and no executors).
            ScoreBatchParams(
                model_uri="models:/wine_forest/1", input=str(path), output=str(tmp_path / "a"), strategy="arrow"
            ),
        )
    assert not caplog.records  # a small forest against 1g of driver memory: no warning at the default threshold
    run = client.get_run(quiet.run_id).data
    assert run.metrics["model_size_bytes"] == size
    # local[2]: two Python workers, each with its own copy, against the driver's memory (1g in the tests).
    assert run.params["python_workers_per_executor"] == "2"
    assert run.params["executor_memory_source"] == "spark.driver.memory"
    assert run.metrics["model_memory_per_executor_bytes"] == 2 * size
    assert run.metrics["executor_memory_bytes"] == 2**30

    threshold = size / 2**30  # one copy fits under this fraction of executor memory; two copies do not
    with caplog.at_level(logging.WARNING, logger="scoring.batch.model_size"):
        score_batch(
            spark,
            settings,
            ScoreBatchParams(
                model_uri="models:/wine_forest/1", input=str(path), output=str(tmp_path / "b"), strategy="arrow"
            ),
            memory_warn_fraction=threshold,
        )
    (warning,) = caplog.records
    assert "model wine_forest v1 takes" in warning.message
    assert "2 Python workers per executor" in warning.message and "of spark.driver.memory" in warning.message


def test_batch_rows_follow_the_row_width_and_apply_only_inside_the_block(spark):
    from scoring.batch.plan import arrow_batch_rows, batch_rows

    assert batch_rows(10) == 50_000  # narrow rows: the largest batch
    assert batch_rows(300) == 8 * 2**20 // (8 * 301)  # 3,483 rows: about 8 MB of values per batch
    assert batch_rows(5000) == 1_000

    def largest_batch(batches):
        import pyarrow as pa

        for batch in batches:
            yield pa.RecordBatch.from_arrays([pa.array([batch.num_rows])], names=["rows"])

    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    sizes = spark.range(30_000).repartition(1).mapInArrow(largest_batch, "rows long")
    before = spark.conf.get(key)
    with arrow_batch_rows(spark, 25_000):
        assert max(r.rows for r in sizes.collect()) == 25_000  # Spark reads the setting when the job runs
    assert spark.conf.get(key) == before
    assert max(r.rows for r in sizes.collect()) == int(before)

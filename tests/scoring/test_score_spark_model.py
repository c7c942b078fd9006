import os
import re
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.ml.feature import StringIndexerModel
from pyspark.ml.functions import vector_to_array

from common.datasets import load_table
from common.errors import UserInputError
from registry.stages import promote
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.shapes.conftest import Store, using_store
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib


@pytest.fixture(scope="module")
def titanic_store(spark, template_db, tmp_path_factory):
    """One MLlib Titanic model (title stage, 10 trees) in Production, trained once for this module's tests, which
    only score it: a store of its own, so each test's scoring runs land beside it."""
    store = Store(tmp_path_factory.mktemp("titanic"))
    shutil.copy(template_db, store.db)
    with using_store(store):
        trained = train_mllib(
            spark,
            store.settings,
            TrainMllibParams(data="titanic", label="survived", title_from="name", num_trees=10, model_name="titanic"),
        )
        promote(store.client(), "titanic", trained.model_version, "Production")
    return store


@pytest.fixture
def titanic(titanic_store):
    """The module's store, with MLflow pointed at it for the test."""
    with using_store(titanic_store) as store:
        yield store


@pytest.fixture
def passengers(tmp_path):
    """The real passengers without their fate, plus one class and one title that training never saw.

    The real table's class '*' is on one row: the model gives it no index of its own, so it counts as unseen too."""
    frame = load_table("titanic").frame.drop(columns="survived")
    frame.insert(0, "passenger_id", np.arange(len(frame)))
    frame.loc[0, "class"] = "4th"
    frame.loc[1, "name"] = "Doe, Captain John"
    path = tmp_path / "passengers.parquet"
    frame.to_parquet(path, index=False)
    return frame, path


def test_mllib_model_scores_in_the_jvm_with_its_own_transform_and_counts_unseen_categories(
    spark, titanic, passengers, tmp_path
):
    frame, path = passengers
    result = score_batch(
        spark,
        titanic.settings,
        ScoreBatchParams(model_uri="models:/titanic/production", input=str(path), output=str(tmp_path / "out")),
    )
    assert (result.rows_in, result.rows_out) == (1313, 1313)

    out = pd.read_parquet(tmp_path / "out").sort_values("passenger_id", ignore_index=True)
    assert list(out.columns) == [
        "passenger_id",
        "prediction",
        "probability",
        "model_name",
        "model_version",
        "scored_at",
    ]
    assert out["prediction"].dtype == np.int64 and (out["model_version"] == "1").all()

    model = mlflow.spark.load_model("models:/titanic/1")
    own = (
        model.transform(spark.read.parquet(str(path)))
        .select("passenger_id", "prediction", vector_to_array("probability")[1].alias("probability"))
        .toPandas()
        .sort_values("passenger_id", ignore_index=True)
    )
    np.testing.assert_array_equal(out["prediction"], own["prediction"].astype("int64"))
    np.testing.assert_allclose(out["probability"], own["probability"], rtol=1e-12)

    # One StringIndexerModel per string column (a multi-column one pads shorter label lists with nulls).
    indexers = [s for s in model.stages if isinstance(s, StringIndexerModel)]
    known = {i.getInputCol(): set(i.labels) for i in indexers}
    titles = frame["name"].map(lambda n: (re.match(r"^[^,]*,\s*([A-Za-z]+)", n) or [None, "Unknown"])[1])
    unseen_class = ~frame["class"].isin(known["class"])
    unseen_title = ~titles.isin(known["title"])
    metrics = titanic.client().get_run(result.run_id).data.metrics
    # '4th' and '*' (one training row: too rare for an index of its own, it shares 'other' with unseen values)
    assert metrics["unseen_class"] == unseen_class.sum() == 2
    assert metrics["unseen_title"] == unseen_title.sum() >= 1
    assert metrics["unseen_category_rows"] == (unseen_class | unseen_title).sum()


def test_a_missing_feature_is_refused_for_mllib_models_too(spark, titanic, passengers, tmp_path):
    frame, _ = passengers
    path = tmp_path / "no_sex.parquet"
    frame.drop(columns="sex").to_parquet(path, index=False)
    with pytest.raises(UserInputError, match=r"column 'sex' is missing \(expected string\)"):
        score_batch(
            spark,
            titanic.settings,
            ScoreBatchParams(model_uri="models:/titanic/production", input=str(path), output=str(tmp_path / "out")),
        )
    assert not (tmp_path / "out").exists()


def test_an_mllib_model_scores_a_csv_stream_with_unseen_categories_counted_per_batch(
    spark, titanic, passengers, tmp_path
):
    from scoring.stream.score_stream import ScoreStreamParams
    from scoring.stream.score_stream import run as run_stream
    from scoring.stream.state import StreamState

    frame, _ = passengers
    landing = tmp_path / "landing"
    landing.mkdir()
    frame.iloc[:700].to_csv(landing / "a.csv", index=False)
    frame.iloc[700:].to_csv(landing / "b.csv", index=False)
    os.utime(landing / "a.csv", (1_000_000_000, 1_000_000_000))  # a.csv lands first, so it is batch 0
    config = ScoreStreamParams(
        ids="passenger_id BIGINT",
        model_uri="models:/titanic/production",
        input=str(landing),
        output=str(tmp_path / "scored"),
        checkpoint=str(tmp_path / "checkpoint"),
        quarantine=str(tmp_path / "quarantine"),
        format="csv",
        max_files_per_trigger=1,
    )
    run_stream(spark, titanic.settings, config)

    out = pd.read_parquet(tmp_path / "scored").sort_values("passenger_id", ignore_index=True)
    assert out["passenger_id"].tolist() == list(range(1313))
    assert set(out["prediction"]) <= {0, 1} and (out["model_version"] == "1").all()
    run_id = StreamState(spark, config.checkpoint).run_id()
    unseen_class = {m.step: m.value for m in titanic.client().get_metric_history(run_id, "unseen_class")}
    assert unseen_class == {0: 2.0, 1: 0.0}  # '4th' and the one-row '*' class are both in the first file


def test_a_strategy_is_ignored_for_an_mllib_model_with_a_log_line(spark, titanic, passengers, caplog):
    import logging

    from scoring.batch.dataframe import prediction_column, score_dataframe

    _, path = passengers
    df = spark.read.parquet(str(path))
    with caplog.at_level(logging.INFO, logger="scoring.batch.strategies"):
        chosen = score_dataframe(spark, df, "models:/titanic/production", strategy="pandas")
    assert (chosen.flavor, chosen.strategy) == ("spark", "spark_transform")
    assert "strategy 'pandas' ignored for titanic v1: an MLlib model scores through its own transform" in caplog.text
    auto = score_dataframe(spark, df, "models:/titanic/production").frame.toPandas().sort_values("passenger_id")
    out = chosen.frame.toPandas().sort_values("passenger_id")
    assert len(out) == 1313
    np.testing.assert_array_equal(out["prediction"], auto["prediction"])
    with pytest.raises(UserInputError, match="titanic v1 is a Spark MLlib model: .* use score_dataframe"):
        prediction_column(spark, "models:/titanic/production")


@pytest.mark.parametrize(
    ("strings", "unseen"),
    [
        ((), {}),
        (("species",), {"unseen_species": 1}),
        (("species", "island"), {"unseen_species": 1, "unseen_island": 2}),
    ],
    ids=["no-string-column", "one-string-column", "two-string-columns"],
)
def test_unseen_categories_are_counted_for_any_number_of_string_columns(
    spark, settings, client, tmp_path, strings, unseen
):
    penguins = load_table("penguins").frame.dropna(subset=["body_mass_g"])
    frame = penguins[["bill_length_mm", "flipper_length_mm", *strings, "body_mass_g"]]
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    trained = train_mllib(
        spark,
        settings,
        TrainMllibParams(
            data=str(tmp_path / "train.parquet"), label="body_mass_g", task="regression", num_trees=5, model_name="mass"
        ),
    )
    new = frame.drop(columns="body_mass_g").reset_index(drop=True)
    new.insert(0, "penguin.id", np.arange(len(new)))  # a dot: an id is never read as a struct field
    if strings:
        new.loc[0, "species"] = "Emperor"  # never seen in training
    if "island" in strings:
        new.loc[[1, 2], "island"] = "Ross"
    new.to_parquet(tmp_path / "new.parquet", index=False)

    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri="models:/mass/1", input=str(tmp_path / "new.parquet"), output=str(tmp_path / "out")),
    )
    assert result.rows_in == result.rows_out == len(new)
    out = pd.read_parquet(tmp_path / "out").sort_values("penguin.id", ignore_index=True)
    own = mlflow.spark.load_model(trained.model_uri).transform(spark.read.parquet(str(tmp_path / "new.parquet")))
    own = own.select("`penguin.id`", "prediction").toPandas().sort_values("penguin.id", ignore_index=True)
    np.testing.assert_allclose(out["prediction"], own["prediction"], rtol=1e-12)
    metrics = client.get_run(result.run_id).data.metrics
    assert {k: v for k, v in metrics.items() if k.startswith("unseen_")} == (
        {**unseen, "unseen_category_rows": 3 if len(strings) == 2 else 1} if strings else {}
    )

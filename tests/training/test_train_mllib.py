import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel

from common.errors import UserInputError
from common.onnx_model import ONNX_PASSED, ONNX_TAG, load_onnx_pipeline
from tests.training.test_train_sklearn import _artifact_paths
from training.baseline import BEATS_BASELINE, QUALITY_TAG
from training.held_out import logged_test_split
from training.mllib.features import TitleAgeImputerModel
from training.mllib.train_mllib import TrainMllibParams, run
from training.mllib.tree_sizes import FOREST_TREES, sized_trees


def test_titanic_pipeline_with_title_stage_is_tracked_and_registered(spark, settings, client):
    result = run(
        spark,
        settings,
        TrainMllibParams(data="titanic", label="survived", title_from="name", num_trees=20, model_name="titanic"),
    )
    tracked = client.get_run(result.run_id)
    assert set(tracked.data.metrics) >= {"accuracy", "roc_auc", "f1", "log_loss", "n_rows_train", "n_rows_test"}
    assert tracked.data.metrics["n_rows_train"] + tracked.data.metrics["n_rows_test"] == 1313
    assert 0.7 < result.metrics["accuracy"] <= 1.0
    assert tracked.data.params["features"] == "name,class,age,sex"
    assert _artifact_paths(client, result.run_id, "evaluation") == [
        "evaluation/confusion_matrix.png",
        "evaluation/feature_importances.csv",
        "evaluation/feature_importances.png",
        "evaluation/roc_curve.png",
    ]
    importances = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="evaluation/feature_importances.csv")
    )
    assert set(importances["feature"]) == {"class_index", "sex_index", "title_index", "age_imputed"}
    (dataset,) = tracked.inputs.dataset_inputs
    assert dataset.dataset.name == "titanic"

    info = mlflow.models.get_model_info("models:/titanic/1")
    assert info.signature.inputs.input_names() == ["name", "class", "age", "sex"]
    assert info.signature.outputs.inputs[0].type.name == "long"  # survived is 0/1, so are the predictions
    loaded = mlflow.spark.load_model("models:/titanic/1")
    assert isinstance(loaded, PipelineModel) and isinstance(loaded.stages[0], TitleAgeImputerModel)
    assert {"Mr", "Mrs", "Miss", "Master"} <= set(loaded.stages[0].means())


def test_penguins_regression_with_cross_validation_logs_grid_and_best_values(spark, settings, client):
    result = run(
        spark,
        settings,
        TrainMllibParams(
            data="penguins",
            label="body_mass_g",
            num_trees=10,
            cv_folds=2,
            grid_num_trees=[5, 15],
            grid_max_depth=[2, 4],
        ),
    )
    tracked = client.get_run(result.run_id)
    assert result.task == "regression" and set(result.metrics) == {"rmse", "mae", "r2"}
    assert tracked.data.params["n_rows_missing_label"] == "2"  # two penguins were never weighed
    assert tracked.data.params["best_numTrees"] in ("5", "15") and tracked.data.params["best_maxDepth"] in ("2", "4")
    assert "cv_rmse" in tracked.data.metrics
    cv_results = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="evaluation/cv_results.csv")
    )
    assert len(cv_results) == 4 and set(cv_results.columns) == {"numTrees", "maxDepth", "mean_rmse"}
    assert tracked.data.metrics["cv_rmse"] == pytest.approx(cv_results["mean_rmse"].min())
    assert "evaluation/residuals.png" in _artifact_paths(client, result.run_id, "evaluation")


def test_string_labels_predict_their_names(spark, settings):
    result = run(
        spark,
        settings,
        TrainMllibParams(data="penguins", label="species", estimator="logistic_regression", model_name="species"),
    )
    assert result.task == "classification" and "roc_auc" not in result.metrics  # three classes
    info = mlflow.models.get_model_info("models:/species/1")
    assert info.signature.outputs.inputs[0].type.name == "string"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "nope"}, "label column 'nope' not found"),
        ({"data": "penguins", "label": "year"}, "numeric classification labels must be 0..k-1"),
        ({"estimator": "gbt", "data": "penguins", "label": "species"}, "gbt classifies two classes"),
        ({"cv_folds": 1}, "cv_folds must be 0"),
        ({"grid_num_trees": [5]}, "needs cv_folds >= 2"),
        ({"title_from": "full_name"}, r"column\(s\) not found: full_name"),
        ({"estimator": "linear_regression"}, "'linear_regression' does not do classification"),
    ],
)
def test_bad_input_fails_before_any_run_or_version_exists(spark, settings, client, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        run(spark, settings, TrainMllibParams(**{"data": "titanic", "label": "survived", "model_name": "m", **kwargs}))
    assert client.search_registered_models() == []
    assert client.get_experiment_by_name(settings.experiment_name) is None


def test_single_class_unsupported_type_and_empty_data_are_named(spark, settings, tmp_path, client):
    one_class = tmp_path / "one.parquet"
    pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "a"]}).to_parquet(one_class)
    with pytest.raises(UserInputError, match="label column 'y' has a single class"):
        run(spark, settings, TrainMllibParams(data=str(one_class), label="y", model_name="m"))
    blobs = tmp_path / "blobs.parquet"
    pd.DataFrame({"blob": [b"a", b"b"], "y": [0, 1]}).to_parquet(blobs)
    with pytest.raises(UserInputError, match="feature column 'blob' has unsupported type binary"):
        run(spark, settings, TrainMllibParams(data=str(blobs), label="y", model_name="m"))
    dated = tmp_path / "dated.parquet"  # a time column is not a feature (left out): nothing is left
    when = pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]")
    pd.DataFrame({"when": when, "y": [0, 1]}).to_parquet(dated)
    with pytest.raises(UserInputError, match=r"no feature columns left after leaving out when \(a time column"):
        run(spark, settings, TrainMllibParams(data=str(dated), label="y", model_name="m"))
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"x": pd.Series([], dtype=float), "y": pd.Series([], dtype=int)}).to_parquet(empty)
    with pytest.raises(UserInputError, match="has no rows"):
        run(spark, settings, TrainMllibParams(data=str(empty), label="y", model_name="m"))
    assert client.search_registered_models() == []


def test_titanic_defaults_leave_the_name_out_and_beat_the_baseline(spark, settings, client, caplog):
    with caplog.at_level(logging.WARNING):
        result = run(spark, settings, TrainMllibParams(data="titanic", label="survived", model_name="defaults"))
    assert "left out column 'name': id-like" in caplog.text
    tracked = client.get_run(result.run_id)
    assert tracked.data.params["features"] == "class,age,sex"
    assert tracked.data.params["dropped_columns"].startswith("name (id-like: ")
    metrics = tracked.data.metrics
    assert metrics["accuracy"] > metrics["baseline_test_accuracy"] and metrics["roc_auc"] > 0.5
    assert metrics["lift_test_accuracy"] == pytest.approx(metrics["accuracy"] - metrics["baseline_test_accuracy"])
    assert metrics["baseline_test_roc_auc"] == 0.5
    assert tracked.data.tags[QUALITY_TAG] == BEATS_BASELINE
    assert client.get_model_version("defaults", "1").tags[QUALITY_TAG] == BEATS_BASELINE
    stage = mlflow.spark.load_model("models:/defaults/1").stages[-1]
    assert stage.getNumTrees == FOREST_TREES and stage.getMaxDepth() == sized_trees("random_forest", 1313)[1]
    assert stage.getFeatureSubsetStrategy() == "all"  # a classifier's every split weighs every feature


def test_a_model_that_does_not_beat_the_baseline_is_tagged_and_said_loudly(spark, settings, client, tmp_path, caplog):
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.parquet"
    pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)}).to_parquet(noise)
    with caplog.at_level(logging.WARNING):
        result = run(spark, settings, TrainMllibParams(data=str(noise), label="y", num_trees=5, model_name="noise"))
    verdict = client.get_model_version("noise", "1").tags[QUALITY_TAG]
    assert verdict.startswith("below baseline: rmse") and result.model_version == "1"
    assert f"does not beat the trivial baseline on the held-out rows — {verdict}" in caplog.text
    assert result.warning in caplog.text


def test_xgboost_trains_logs_registers_and_answers_from_onnx_as_spark_does(spark, settings, client):
    params = TrainMllibParams(
        data="penguins", label="species", estimator="xgboost", hyperparams={"learning_rate": 0.2}, num_trees=10,
        model_name="xgb",
    )  # fmt: skip
    result = run(spark, settings, params)
    version = client.get_model_version("xgb", "1")
    assert version.tags[ONNX_TAG] == ONNX_PASSED  # the parity certificate against Spark's transform
    tracked = client.get_run(result.run_id)
    assert "learning_rate" in tracked.data.params["hyperparams"]
    loaded = mlflow.spark.load_model("models:/xgb/1")
    assert type(loaded.stages[-2]).__name__ == "SparkXGBClassifierModel"
    assert loaded.stages[-2].getOrDefault("num_workers") == spark.sparkContext.defaultParallelism
    # The REST path (ONNX, no JVM) and Spark's transform, row by row on the logged held-out split.
    folder = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="onnx")
    onnx_pipeline = load_onnx_pipeline(folder)
    rows = logged_test_split(result.run_id).to_pandas()[list(onnx_pipeline.input_columns)]
    expected = loaded.transform(spark.createDataFrame(rows)).select("prediction").toPandas()["prediction"]
    prediction, _ = onnx_pipeline.predict(rows)
    assert prediction.tolist() == expected.tolist()

"""XGBoost outside the default path: train_mllib's cross-validation (with a grid over its trees), the classes its
Spark classifier needs among the rows it is fitted on, and per-group models that list XGBoost in their logged
requirements."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.errors import UserInputError
from training.mllib.estimator_classes import FOLD, check_classes, stratified_folds
from training.mllib.pipeline import LABEL_INDEX, MllibSpec
from training.mllib.train_mllib import TrainMllibParams
from training.mllib.train_mllib import run as train_mllib
from training.per_group.train_per_group import TrainPerGroupParams
from training.per_group.train_per_group import run as train_per_group


def test_xgboost_cross_validates_over_a_grid_with_every_class_in_every_fold(spark, settings, client):
    params = TrainMllibParams(
        data="penguins", label="species", estimator="xgboost", num_trees=4, cv_folds=2, grid_max_depth=(2, 3)
    )
    result = train_mllib(spark, settings, params)
    assert set(result.best_params) == {"max_depth"} and result.best_params["max_depth"] in (2, 3)
    run = client.get_run(result.run_id)
    assert run.data.params["best_max_depth"] == str(result.best_params["max_depth"])
    assert 0.0 < run.data.metrics["cv_f1"] <= 1.0 and result.metrics["accuracy"] > 0.8
    folder = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="evaluation")
    cv_results = pd.read_csv(Path(folder, "cv_results.csv"))
    assert cv_results["max_depth"].tolist() == [2, 3] and cv_results["mean_f1"].between(0, 1).all()
    model = mlflow.spark.load_model(result.model_uri)
    assert type(model.stages[-2]).__name__ == "SparkXGBClassifierModel"
    assert model.stages[-2].getOrDefault("max_depth") == result.best_params["max_depth"]


def test_xgboost_refuses_labels_its_classifier_cannot_take_before_any_run(spark, settings, client):
    with pytest.raises(UserInputError, match="numeric classification labels must be 0..k-1"):
        train_mllib(spark, settings, TrainMllibParams(data="penguins", label="year", estimator="xgboost"))
    assert client.get_experiment_by_name(settings.experiment_name) is None
    spec = MllibSpec("kind", "classification", "xgboost")
    two_of_three = spark.createDataFrame([(0.1, 0.0), (0.2, 2.0), (0.3, 0.0)], ["x", LABEL_INDEX])
    with pytest.raises(UserInputError, match=r"every class of 'kind' in the training split; 'b' drew no training"):
        check_classes(spec, two_of_three, ["a", "b", "c"], 3)
    check_classes(MllibSpec("kind", "classification", "random_forest"), two_of_three, ["a", "b", "c"], 3)


def test_xgboost_folds_are_dealt_per_class(spark):
    rows = [(float(i), float(k)) for k, n in ((0, 30), (1, 7), (2, 2)) for i in range(n)]
    train = spark.createDataFrame(rows, ["x", LABEL_INDEX])
    folds = stratified_folds(train, 3, 42, "kind", None).toPandas()
    assert sorted(folds[FOLD].unique()) == [0, 1, 2] and len(folds) == len(rows)
    for fold in range(3):  # each fold trains on the other folds' rows: every class is there
        assert set(folds.loc[folds[FOLD] != fold, LABEL_INDEX]) == {0.0, 1.0, 2.0}
    assert folds.groupby(LABEL_INDEX)[FOLD].value_counts().max() == 10  # 30 rows of class 0: 10 a fold
    single = spark.createDataFrame([*rows, (1.0, 3.0)], ["x", LABEL_INDEX])
    with pytest.raises(UserInputError, match="at least twice in the training split.*'d' has one"):
        stratified_folds(single, 3, 42, "kind", ["a", "b", "c", "d"])


def test_per_group_xgboost_models_list_xgboost_in_their_requirements(spark, settings, tmp_path):
    rng = np.random.default_rng(5)
    n = 120
    frame = pd.DataFrame({"site": np.repeat(["north", "south"], n // 2), "x": rng.normal(size=n)})
    frame["y"] = (frame["x"] + rng.normal(scale=0.3, size=n) > 0).astype(int)
    path = tmp_path / "sites.parquet"
    frame.to_parquet(path, index=False)
    params = TrainPerGroupParams(
        data=str(path), label="y", group="site", estimator="xgboost", hyperparams={"n_estimators": 5}, min_rows=20
    )
    result = train_per_group(spark, settings, params)
    assert result.trained == ["north", "south"]
    model_dir = mlflow.artifacts.download_artifacts(result.model_uri)
    requirements = Path(model_dir, "requirements.txt").read_text().split()
    assert f"xgboost-cpu=={version('xgboost-cpu')}" in requirements
    predicted = mlflow.pyfunc.load_model(result.model_uri).predict(frame[["site", "x"]])
    assert len(predicted) == n and set(np.asarray(predicted).tolist()) <= {0, 1}

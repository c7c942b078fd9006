from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from common.errors import UserInputError
from common.params import parse_params
from common.profile import PROFILE_ARTIFACT
from training.evaluation import evaluate
from training.held_out import TEST_SPLIT, logged_test_split
from training.sklearn.train_sklearn import TrainSklearnParams, run


def _artifact_paths(client, run_id, path=None):
    paths = []
    for item in client.list_artifacts(run_id, path):
        paths += _artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return sorted(paths)


def test_classifier_run_tracks_params_metrics_plots_data_and_a_registered_skops_model(settings, client):
    result = run(
        settings,
        TrainSklearnParams(
            data="breast_cancer", estimator="random_forest", hyperparams={"n_estimators": 50}, model_name="cancer"
        ),
    )
    tracked = client.get_run(result.run_id)

    assert tracked.data.params["estimator"] == "random_forest"
    assert tracked.data.params["estimator.n_estimators"] == "50"
    assert tracked.data.params["task"] == "auto" and tracked.data.params["resolved_task"] == "classification"
    assert tracked.data.params["n_rows_train"] == "455" and tracked.data.params["n_rows_test"] == "114"
    held_out = {"accuracy", "roc_auc", "f1", "log_loss"}
    assert set(tracked.data.metrics) == held_out | {f"{k}_test_{m}" for k in ("baseline", "lift") for m in held_out}
    assert tracked.data.metrics["roc_auc"] > 0.95

    assert _artifact_paths(client, result.run_id) == [
        TEST_SPLIT,
        "evaluation/confusion_matrix.png",
        "evaluation/feature_importances.csv",
        "evaluation/feature_importances.png",
        "evaluation/roc_curve.png",
        PROFILE_ARTIFACT,
        "reproducibility/environment.json",
    ]
    importances = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="evaluation/feature_importances.csv")
    )
    assert len(importances) == 30 and importances["importance"].is_monotonic_decreasing
    assert importances["importance"].sum() == pytest.approx(1.0)

    (dataset_input,) = tracked.inputs.dataset_inputs
    assert dataset_input.dataset.name == "breast_cancer" and len(dataset_input.dataset.digest) == 8
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"

    version = client.get_model_version("cancer", "1")
    assert version.run_id == result.run_id and version.tags["task"] == "classification"
    model_dir = mlflow.artifacts.download_artifacts("models:/cancer/1")
    flavor = yaml.safe_load(Path(model_dir, "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert "sklearn.tree._tree.Tree" in flavor["skops_trusted_types"]
    info = mlflow.models.get_model_info("models:/cancer/1")
    assert info.signature.inputs.input_names()[:2] == ["mean_radius", "mean_texture"]

    # The logged metrics are the loaded model's own on the logged held-out split.
    test_split = logged_test_split(result.run_id).to_pandas()
    loaded = mlflow.sklearn.load_model("models:/cancer/1")
    recomputed = evaluate(loaded, test_split.drop(columns="target"), test_split["target"], "classification")
    assert recomputed == pytest.approx({m: tracked.data.metrics[m] for m in held_out})


def test_regressor_logs_error_metrics_and_residuals(settings, client):
    result = run(
        settings, TrainSklearnParams(data="diabetes", estimator="gradient_boosting", hyperparams={"n_estimators": 30})
    )
    assert result.task == "regression" and result.model_version is None
    metrics = client.get_run(result.run_id).data.metrics
    held_out = {"rmse", "mae", "r2"}
    assert set(metrics) == held_out | {f"{k}_test_{m}" for k in ("baseline", "lift") for m in held_out}
    assert metrics["rmse"] >= metrics["mae"] > 0
    assert "evaluation/residuals.png" in _artifact_paths(client, result.run_id)
    assert client.search_registered_models() == []


def test_multiclass_logistic_regression_has_roc_auc_and_no_importances(settings, client):
    result = run(settings, TrainSklearnParams(data="wine", estimator="logistic_regression"))
    assert 0.9 < result.metrics["roc_auc"] <= 1.0
    assert not any("importances" in p for p in _artifact_paths(client, result.run_id))


def test_user_csv_with_string_features_and_an_excluded_id(settings, tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "tenure": rng.integers(1, 60, n).astype(float),
        }
    )
    frame["churned"] = ((frame["plan"] == "basic") & (frame["tenure"] < 20)).astype(int)
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False)
    result = run(
        settings, TrainSklearnParams(data=str(path), label="churned", exclude=["customer_id"], model_name="churn")
    )
    signature = mlflow.models.get_model_info("models:/churn/1").signature
    assert signature.inputs.input_names() == ["plan", "tenure"]
    assert result.metrics["accuracy"] > 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "nope"}, "label column 'nope' not found"),
        ({"estimator": "random_forest", "hyperparams": {"depth": 2}}, "does not accept depth"),
        ({"test_fraction": 1.5}, "test_fraction must be between 0 and 1"),
        ({"data": "no_such_set"}, "neither an existing path nor a bundled data set"),
    ],
)
def test_bad_input_fails_before_any_run_or_model_version_exists(settings, client, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        run(settings, TrainSklearnParams(**{"data": "breast_cancer", "model_name": "cancer", **kwargs}))
    assert client.search_registered_models() == []
    assert client.get_experiment_by_name(settings.experiment_name) is None


def test_single_class_label_is_refused(settings, tmp_path, client):
    path = tmp_path / "one_class.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]}).to_parquet(path)
    with pytest.raises(UserInputError, match="label column 'y' has a single class"):
        run(settings, TrainSklearnParams(data=str(path), label="y", model_name="m"))
    assert client.search_registered_models() == []


@pytest.mark.parametrize(("text", "message"), [("{bad", "not valid JSON"), ("[1, 2]", "must be a JSON object")])
def test_hyperparams_must_be_a_json_object(text, message):
    with pytest.raises(UserInputError, match=message):
        parse_params(TrainSklearnParams, ["--hyperparams", text])

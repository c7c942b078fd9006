"""train_sklearn's defaults on real tables: the boosting ensemble (HistGradientBoosting and XGBoost averaged; for a
regression the member, or both, with the smallest out-of-fold error) beats the trivial baseline (logged beside every
metric), identifiers and constant columns are left out, rare categories share one bucket, XGBoost by name; the
logged models answer through pyfunc exactly as the fitted estimators do."""

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from common.errors import UserInputError
from training.baseline import QUALITY_TAG, baseline_metrics, quality_verdict
from training.sklearn.train_sklearn import TrainSklearnParams, run


def _test_rows(run_id: str) -> pd.DataFrame:
    """The held-out rows the run logged (data/test.parquet)."""
    return pd.read_parquet(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/test.parquet"))


def test_default_beats_the_baseline_on_titanic_and_leaves_the_names_out(settings, client, caplog):
    with caplog.at_level(logging.WARNING):
        result = run(settings, TrainSklearnParams(data="titanic", label="survived", model_name="titanic"))
    assert "left out column 'name': id-like: 1310 distinct of 1313 values" in caplog.text
    tracked = client.get_run(result.run_id).data
    assert tracked.params["estimator"] == "boosting_ensemble"
    # Each member's own parameters are logged under its name.
    assert tracked.params["estimator.hist_gradient_boosting.min_samples_leaf"] == "20"
    assert tracked.params["estimator.xgboost.random_state"] == "42"
    assert tracked.params["dropped_columns"] == "name (id-like: 1310 distinct of 1313 values)"
    # Baseline: the most frequent training class (most passengers died); lift = metric - baseline.
    test = _test_rows(result.run_id)
    assert tracked.metrics["baseline_test_accuracy"] == pytest.approx(float((test["survived"] == 0).mean()))
    assert tracked.metrics["baseline_test_roc_auc"] == 0.5
    assert tracked.metrics["lift_test_accuracy"] == pytest.approx(
        tracked.metrics["accuracy"] - tracked.metrics["baseline_test_accuracy"]
    )
    assert tracked.metrics["lift_test_accuracy"] > 0.1 and tracked.metrics["lift_test_roc_auc"] > 0.3
    assert tracked.tags[QUALITY_TAG] == "beats baseline" and result.warning is None
    assert client.get_model_version("titanic", "1").tags[QUALITY_TAG] == "beats baseline"

    # The name is not in the signature: scoring neither needs it nor sees it; pyfunc answers as the estimator.
    info = mlflow.models.get_model_info("models:/titanic/1")
    assert info.signature.inputs.input_names() == ["class", "age", "sex"]
    assert "name" not in test.columns
    pyfunc = mlflow.pyfunc.load_model("models:/titanic/1")
    estimator = mlflow.sklearn.load_model("models:/titanic/1")
    rows = test.drop(columns="survived").assign(name="Somebody, Mr New")
    assert np.array_equal(np.asarray(pyfunc.predict(rows)), estimator.predict(rows.drop(columns="name")))


def test_default_regressor_beats_the_mean_on_diabetes(settings, client):
    result = run(settings, TrainSklearnParams(data="diabetes"))
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["baseline_test_r2"] <= 0.0 < metrics["r2"]
    # Smaller is better for RMSE: its lift is baseline - metric.
    assert metrics["lift_test_rmse"] == pytest.approx(metrics["baseline_test_rmse"] - metrics["rmse"])
    assert metrics["lift_test_rmse"] > 0


def test_default_regressor_keeps_the_member_with_the_smallest_out_of_fold_error(settings, client):
    chosen = run(settings, TrainSklearnParams(data="diabetes", model_name="chosen"))
    alone = run(settings, TrainSklearnParams(data="diabetes", estimator="hist_gradient_boosting"))
    tracked = client.get_run(chosen.run_id).data
    errors = {k.removeprefix("cv_rmse_"): v for k, v in tracked.metrics.items() if k.startswith("cv_rmse_")}
    assert set(errors) == {"mean", "hist_gradient_boosting", "xgboost"}
    # On diabetes (442 rows) XGBoost over-fits: HistGradientBoosting alone has the smallest out-of-fold RMSE.
    assert tracked.params["ensemble_choice"] == min(errors, key=errors.get) == "hist_gradient_boosting"
    assert not any(k.startswith("estimator.xgboost.") for k in tracked.params)
    # The logged model answers as HistGradientBoosting trained alone on the same split.
    assert chosen.metrics["r2"] == pytest.approx(alone.metrics["r2"], abs=1e-12)
    test = _test_rows(chosen.run_id).drop(columns="target")
    np.testing.assert_allclose(
        mlflow.pyfunc.load_model("models:/chosen/1").predict(test),
        mlflow.sklearn.load_model(alone.model_uri).predict(test),
        rtol=1e-12,
    )


def test_a_regression_on_few_rows_keeps_the_mean_of_both_members(settings, client, tmp_path):
    rows = pd.DataFrame({"x": np.arange(30.0), "y": np.arange(30.0) * 2})  # 24 training rows: below the 30 needed
    rows.to_parquet(tmp_path / "few.parquet", index=False)
    result = run(settings, TrainSklearnParams(data=str(tmp_path / "few.parquet"), label="y"))
    tracked = client.get_run(result.run_id).data
    assert tracked.params["ensemble_choice"] == "mean"
    assert not any(k.startswith("cv_rmse_") for k in tracked.metrics)
    assert {k.split(".")[1] for k in tracked.params if k.startswith("estimator.")} == {
        "hist_gradient_boosting",
        "xgboost",
    }


def test_a_model_no_better_than_the_baseline_is_tagged_and_said_loudly(settings, client, caplog):
    # One boosting step of a vanishing size: every row gets (nearly) the prior, so the most frequent class.
    weak = {"max_iter": 1, "learning_rate": 1e-9}
    params = TrainSklearnParams(
        data="breast_cancer", estimator="hist_gradient_boosting", hyperparams=weak, model_name="weak"
    )
    with caplog.at_level(logging.WARNING):
        result = run(settings, params)
    verdict = client.get_model_version("weak", "1").tags[QUALITY_TAG]
    assert verdict.startswith("below baseline: accuracy ")
    assert client.get_run(result.run_id).data.tags[QUALITY_TAG] == verdict
    assert result.warning.startswith("WARNING: this model does not beat the trivial baseline")
    assert result.summary().splitlines()[-1] == result.warning and result.warning in caplog.text


def test_rare_categories_share_one_bucket_at_training_and_at_scoring(settings, tmp_path):
    rng = np.random.default_rng(0)
    n = 1200
    city = np.where(rng.random(n) < 0.7, rng.choice(["north", "south", "east"], n), [f"town_{i}" for i in range(n)])
    frame = pd.DataFrame({"city": city, "size": rng.normal(size=n), "region": "EU"})
    frame["y"] = frame["size"] * 2 + frame["city"].map({"north": 5.0, "south": -5.0}).fillna(0.0)
    path = tmp_path / "cities.parquet"
    frame.to_parquet(path)
    params = TrainSklearnParams(
        data=str(path), label="y", estimator="hist_gradient_boosting", max_categories=4, model_name="c"
    )
    result = run(settings, params)
    params = mlflow.get_run(result.run_id).data.params
    assert params["dropped_columns"] == "region (one value for every row)"
    encoder = mlflow.sklearn.load_model("models:/c/1")["preprocess"].named_transformers_["categorical"]
    towns = {c for c in encoder.categories_[0] if c.startswith("town_")}
    assert len(towns) > 250 and set(encoder.infrequent_categories_[0]) == towns  # kept: north, south, east
    # Two rare towns and one never seen score alike: they are the same "other" category to the model.
    pyfunc = mlflow.pyfunc.load_model("models:/c/1")
    rows = pd.DataFrame({"city": ["town_5", "town_7", "nowhere", "north"], "size": [0.5] * 4, "region": "EU"})
    predicted = np.asarray(pyfunc.predict(rows)).ravel()
    assert predicted[0] == predicted[1] and predicted[3] != predicted[0]


def test_xgboost_learns_named_classes_and_loads_as_it_predicts(settings, client):
    result = run(settings, TrainSklearnParams(data="penguins", label="species", estimator="xgboost", model_name="p"))
    assert result.metrics["accuracy"] > client.get_run(result.run_id).data.metrics["baseline_test_accuracy"]
    version = client.get_model_version("p", "1")
    assert version.tags["classes"] == '["Adelie", "Chinstrap", "Gentoo"]'
    model_dir = mlflow.artifacts.download_artifacts("models:/p/1")
    flavor = yaml.safe_load(Path(model_dir, "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert {"xgboost.core.Booster", "training.sklearn.xgboost_labels.LabelIndexedXGBClassifier"} <= set(
        flavor["skops_trusted_types"]
    )
    assert any(line.startswith("xgboost-cpu==") for line in Path(model_dir, "requirements.txt").read_text().split())
    rows = _test_rows(result.run_id).drop(columns="species")
    estimator = mlflow.sklearn.load_model("models:/p/1")
    assert set(estimator.predict(rows)) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert np.array_equal(np.asarray(mlflow.pyfunc.load_model("models:/p/1").predict(rows)), estimator.predict(rows))


def test_xgboost_regressor_through_pyfunc(settings):
    result = run(settings, TrainSklearnParams(data="diabetes", estimator="xgboost", hyperparams={"n_estimators": 30}))
    rows = _test_rows(result.run_id).drop(columns="target")
    estimator = mlflow.sklearn.load_model(result.model_uri)
    assert np.allclose(np.asarray(mlflow.pyfunc.load_model(result.model_uri).predict(rows)), estimator.predict(rows))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"exclude": ("no_such_column",)}, r"excluded column\(s\) not found: no_such_column"),
        ({"estimator": "xgboost", "hyperparams": {"depth": 3}}, "XGBClassifier does not accept depth; .*max_depth"),
        ({"id_like_ratio": 0.0}, "id_like_ratio must be above 0"),
        ({"max_categories": 1}, "max_categories must be at least 2"),
        ({"max_categories": 300}, "hist_gradient_boosting takes at most 255 categories a column"),
        ({"hyperparams": {"max_depth": 3}}, "'boosting_ensemble' averages .* takes no hyperparams; .*choose one"),
    ],
)
def test_bad_input_is_refused_before_any_run_exists(settings, client, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        run(settings, TrainSklearnParams(**{"data": "breast_cancer", "model_name": "m", **kwargs}))
    assert client.get_experiment_by_name(settings.experiment_name) is None


def test_xgboost_refuses_labels_it_cannot_order():
    from training.sklearn.xgboost_labels import LabelIndexedXGBClassifier

    with pytest.raises(UserInputError, match="cannot order the label's values"):
        LabelIndexedXGBClassifier(n_estimators=2).fit(np.zeros((4, 1)), np.array([1, "a", 2, "b"], dtype=object))


def test_baseline_is_the_most_frequent_class_or_the_mean():
    classes = baseline_metrics("classification", pd.Series(["a", "a", "b"]), pd.Series(["a", "b", "b", "b"]))
    assert classes["accuracy"] == 0.25 and classes["roc_auc"] == 0.5
    numbers = baseline_metrics("regression", pd.Series([1.0, 3.0]), pd.Series([2.0, 4.0]))
    assert numbers["rmse"] == pytest.approx(np.sqrt((0 + 4) / 2)) and numbers["mae"] == 1.0
    assert quality_verdict("regression", {"rmse": 1.0}, numbers) == "beats baseline"
    assert quality_verdict("regression", {"rmse": 2.0}, numbers) == "below baseline: rmse 2 vs 1.414"


@pytest.mark.parametrize("name", ["hist_gradient_boosting", "xgboost"])
def test_tuning_has_a_search_space_the_estimator_takes(name):
    from training.sklearn.estimators import build_estimator
    from training.tuning.search_space import SKLEARN_SPACES, check_sklearn_space, parse_space

    for task in ("classification", "regression"):
        check_sklearn_space(parse_space(None, SKLEARN_SPACES[name]), build_estimator(name, task, {}, 0))

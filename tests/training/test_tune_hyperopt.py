import json
import logging

import mlflow
import numpy as np
import pytest

from common.datasets import load_table
from common.errors import UserInputError
from training.sklearn.estimators import build_pipeline
from training.sklearn.fit import split_train_test
from training.tasks import split_features
from training.tuning.search_space import parse_space, to_grid
from training.tuning.tune_hyperopt import TuneHyperoptParams, run

C_SPACE = {"C": {"low": 0.01, "high": 10.0, "log": True}}


def _children(client, parent_id):
    run = client.get_run(parent_id)
    return client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000)


def test_32_parallel_trials_on_sqlite_record_32_child_runs_and_the_best_one_is_refit(spark, settings, client):
    result = run(
        spark,
        settings,
        TuneHyperoptParams(
            data="breast_cancer",
            estimator="logistic_regression",
            space=C_SPACE,
            max_evals=32,
            parallelism=2,
            model_name="tuned",
        ),
    )

    children = _children(client, result.run_id)
    assert len(children) == 32
    assert sorted(int(c.data.tags["lifecycle.trial"]) for c in children) == list(range(32))
    assert {c.info.status for c in children} == {"FINISHED"}
    assert all({"loss", "cv_log_loss", "cv_log_loss_std", "fit_seconds"} <= set(c.data.metrics) for c in children)
    assert all(0.01 <= float(c.data.params["C"]) <= 10.0 for c in children)

    parent = client.get_run(result.run_id)
    assert parent.data.params["trials_backend"] == "SparkTrials" and parent.data.params["parallelism"] == "2"
    assert parent.data.tags["lifecycle.reproducible"].startswith("not exact: 2 trials ran at once")
    assert parent.data.metrics["n_trials_ok"] == 32 and parent.data.metrics["n_trials_failed"] == 0
    best_child = min(children, key=lambda c: c.data.metrics["loss"])
    assert parent.data.metrics["best_loss"] == pytest.approx(best_child.data.metrics["loss"])
    assert float(parent.data.params["best.C"]) == pytest.approx(float(best_child.data.params["C"]))
    assert result.best_params["C"] == pytest.approx(float(best_child.data.params["C"]))

    # The logged model is the best point refit on the training split: the same predictions as refitting it here.
    labeled = split_features(load_table("breast_cancer").frame, "target", "auto", [])
    X_train, X_test, y_train, _ = split_train_test(labeled, 0.2, 42)
    expected = build_pipeline("logistic_regression", labeled, result.best_params, 42).fit(X_train, y_train)
    logged = mlflow.sklearn.load_model("models:/tuned/1")
    np.testing.assert_allclose(logged.predict_proba(X_test), expected.predict_proba(X_test))
    assert {"accuracy", "roc_auc", "log_loss"} <= set(parent.data.metrics)
    trials = json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/tuning/trials.json"))
    assert len(trials["data"]) == 32


def test_a_failing_trial_is_a_failed_child_run_and_the_others_still_count(spark, settings, client):
    # An L1 penalty passes every check made before fitting; the default solver (lbfgs) refuses it in the trial.
    space = {"l1_ratio": [1.0, 0.0]}
    result = run(
        spark, settings, TuneHyperoptParams(data="wine", estimator="logistic_regression", space=space, max_evals=6)
    )
    children = _children(client, result.run_id)
    failed = [c for c in children if c.info.status == "FAILED"]
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert len(children) == 6 and failed and finished
    assert all("supports only 'l2' or None penalties" in c.data.tags["lifecycle.trial_error"] for c in failed)
    assert {c.data.params["l1_ratio"] for c in failed} == {"1.0"}
    assert result.best_params == {"l1_ratio": 0.0}


@pytest.mark.parametrize(
    ("space", "max_evals", "message"),
    [
        ({"n_neighbors": [3, 5]}, 4, "LogisticRegression does not accept n_neighbors; it accepts: C,"),
        ({"C": {"low": -1.0, "high": 1.0}}, 4, "space parameter 'C': LogisticRegression refuses -1.0"),
        ({"C": {"low": 0.0, "high": 1.0, "log": True}}, 4, "'C' is on a log scale, so low must be > 0"),
        ({"C": []}, 4, "space parameter 'C' lists no values"),
        ("{not json", 4, "space is not valid JSON"),
        (C_SPACE, 0, "max_evals must be at least 1, got 0"),
    ],
)
def test_bad_space_or_budget_fails_before_any_run(spark, settings, client, space, max_evals, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")):
        run(
            spark,
            settings,
            TuneHyperoptParams(data="breast_cancer", estimator="logistic_regression", space=space, max_evals=max_evals),
        )
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []


def test_default_spaces_are_grids_of_real_parameters():
    space = parse_space("", {"n_estimators": {"low": 50, "high": 200, "int": True}, "max_depth": [4, None]})
    assert to_grid(space, 3) == {"n_estimators": [50, 125, 200], "max_depth": [4, None]}


def test_mllib_tuning_runs_sequential_trials_says_so_and_registers_the_refit_pipeline(spark, settings, client, caplog):
    caplog.set_level(logging.WARNING, logger="training.tuning.mllib_search")
    space = {"numTrees": {"low": 5, "high": 15, "int": True}, "maxDepth": [2, 4]}
    params = TuneHyperoptParams(
        library="mllib", data="penguins", label="body_mass_g", space=space, max_evals=2, parallelism=2, cv_folds=2,
        model_name="penguins_tuned",
    )  # fmt: skip
    result = run(spark, settings, params)
    assert "running 2 trials one after another with Hyperopt's Trials" in caplog.text
    parent = client.get_run(result.run_id)
    assert parent.data.params["trials_backend"] == "Trials" and parent.data.params["metric"] == "rmse"
    children = _children(client, result.run_id)
    # Each trial is judged by cv_folds-fold cross-validation on the training split.
    assert len(children) == 2 and all({"cv_rmse", "cv_rmse_std"} <= set(c.data.metrics) for c in children)
    assert parent.data.params["cv_folds"] == "2"
    assert 5 <= result.best_params["numTrees"] <= 15 and result.best_params["maxDepth"] in (2, 4)
    version = client.get_model_version("penguins_tuned", "1")
    model = mlflow.spark.load_model(f"models:/penguins_tuned/{version.version}")
    trees = model.stages[-1]
    assert (trees.getNumTrees, trees.getMaxDepth()) == (result.best_params["numTrees"], result.best_params["maxDepth"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"test_fraction": 1.5}, "test_fraction must be between 0 and 1"),
        ({"cv_folds": 1}, "cv_folds must be at least 2, got 1"),
    ],
)
def test_mllib_tuning_refuses_a_bad_split_before_any_run(spark, settings, client, params, message):
    with pytest.raises(UserInputError, match=message):
        run(spark, settings, TuneHyperoptParams(library="mllib", data="penguins", label="body_mass_g", **params))
    assert client.get_experiment_by_name(settings.experiment_name) is None


def test_mllib_tuning_refuses_a_parameter_the_estimator_lacks(spark, settings):
    with pytest.raises(UserInputError, match="RandomForestRegressor does not accept C; it accepts: "):
        run(
            spark,
            settings,
            TuneHyperoptParams(library="mllib", data="penguins", label="body_mass_g", space={"C": [1.0]}, max_evals=1),
        )


def test_when_every_trial_fails_the_user_gets_the_first_error_and_the_failed_trials(spark, settings, client):
    with pytest.raises(UserInputError, match="every trial failed; the first error: ValueError: Solver lbfgs supports"):
        run(
            spark,
            settings,
            TuneHyperoptParams(data="wine", estimator="logistic_regression", space={"l1_ratio": [1.0]}, max_evals=2),
        )
    experiment = client.get_experiment_by_name(settings.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED", "FAILED"]  # the tuning run and both trials


def test_optuna_backend_nests_its_study_and_trials_under_the_tuning_run(spark, settings, client):
    result = run(
        spark,
        settings,
        TuneHyperoptParams(
            data="breast_cancer",
            estimator="logistic_regression",
            space=C_SPACE,
            max_evals=8,
            parallelism=2,
            backend="optuna",
        ),
    )
    parent = client.get_run(result.run_id)
    assert parent.data.params["trials_backend"] == "MlflowSparkStudy"
    (study,) = _children(client, result.run_id)
    assert study.info.run_id == parent.data.params["optuna_study_run_id"]
    trials = _children(client, study.info.run_id)
    assert len(trials) == 8 and {t.info.status for t in trials} == {"FINISHED"}
    best_trial = min(trials, key=lambda t: t.data.metrics["value"])
    assert parent.data.metrics["best_loss"] == pytest.approx(best_trial.data.metrics["value"])
    assert result.best_params["C"] == pytest.approx(float(best_trial.data.params["C"]))
    assert parent.data.metrics["n_trials_ok"] == 8


def test_an_unknown_backend_is_refused(spark, settings):
    with pytest.raises(UserInputError, match="backend must be one of hyperopt, optuna, got 'ray'"):
        run(spark, settings, TuneHyperoptParams(data="breast_cancer", estimator="logistic_regression", backend="ray"))


def test_mllib_tuning_with_the_optuna_backend_is_refused_before_spark_starts():
    from training.tuning.tune_hyperopt import main

    with pytest.raises(UserInputError, match="backend='optuna' tunes scikit-learn estimators; MLlib pipelines use"):
        main(["--library", "mllib", "--backend", "optuna", "--data", "penguins", "--label", "body_mass_g"])


def _trials(client, run_id) -> list[tuple[str, float]]:
    ordered = sorted(_children(client, run_id), key=lambda c: int(c.data.tags["lifecycle.trial"]))
    return [(c.data.params["C"], c.data.metrics["loss"]) for c in ordered]


def test_parallelism_one_runs_sequential_trials_on_the_driver_and_repeats_them_exactly(spark, settings, client):
    params = TuneHyperoptParams(data="wine", estimator="logistic_regression", space=C_SPACE, max_evals=3, parallelism=1)
    result, again = run(spark, settings, params), run(spark, settings, params)
    assert client.get_run(result.run_id).data.params["trials_backend"] == "Trials"
    children = _children(client, result.run_id)
    assert len(children) == 3 and {c.info.status for c in children} == {"FINISHED"}
    # Seeded and sequential: the same trials in the same order, the same best, the same refit model's metrics.
    assert _trials(client, result.run_id) == _trials(client, again.run_id)
    assert result.best_params == again.best_params
    timings = ("fit_seconds",)
    metrics = [
        {k: v for k, v in client.get_run(r.run_id).data.metrics.items() if not k.endswith(timings)}
        for r in (result, again)
    ]
    assert metrics[0] == metrics[1]
    assert client.get_run(result.run_id).data.tags["lifecycle.reproducible"] == "exact"


def test_timeout_stops_starting_trials_on_the_sequential_path_too(spark, settings, client):
    params = TuneHyperoptParams(
        data="wine", estimator="random_forest", space='{"n_estimators": [300]}', max_evals=50, parallelism=1,
        timeout=1.0,
    )  # fmt: skip
    result = run(spark, settings, params)
    trials = _children(client, result.run_id)
    # A 300-tree forest's 3-fold CV takes longer than the second given: one trial starts, no second one.
    assert 1 <= len(trials) <= 3 and client.get_run(result.run_id).data.params["timeout"] == "1.0"

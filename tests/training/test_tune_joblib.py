import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from common.datasets import load_table
from common.errors import UserInputError
from training.sklearn.estimators import build_pipeline
from training.sklearn.fit import split_train_test
from training.tasks import split_features
from training.tuning.tune_joblib import TuneJoblibParams, run


def _split(data="breast_cancer", label="target"):
    labeled = split_features(load_table(data).frame, label, "auto", [])
    return labeled, *split_train_test(labeled, 0.2, 42)


def test_grid_search_on_spark_matches_scikit_learn_and_logs_table_best_candidates_and_model(spark, settings, client):
    space = {"C": [0.01, 0.1, 1.0, 10.0]}
    result = run(
        spark,
        settings,
        TuneJoblibParams(
            data="breast_cancer",
            estimator="logistic_regression",
            search="grid",
            space=space,
            n_jobs=2,
            top_k=2,
            model_name="grid_tuned",
        ),
    )

    # The same search in this process, without Spark: the same scores for every candidate, the same winner.
    labeled, X_train, X_test, y_train, _ = _split()
    local = GridSearchCV(
        build_pipeline("logistic_regression", labeled, {}, 42),
        {"estimator__C": space["C"]},
        scoring="neg_log_loss",
        cv=StratifiedKFold(3, shuffle=True, random_state=42),
    ).fit(X_train, y_train)
    table = pd.DataFrame(**json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/tuning/cv_results.json")))
    assert len(table) == 4 and list(table["rank_test_score"]) == [1, 2, 3, 4]
    expected = {str(c): -s for c, s in zip(space["C"], local.cv_results_["mean_test_score"], strict=True)}
    assert {row.param_C: row.mean_test_score for row in table.itertuples()} == pytest.approx(expected)
    assert result.best_params == {"C": local.best_params_["estimator__C"]}

    parent = client.get_run(result.run_id)
    assert parent.data.params["search"] == "grid" and parent.data.params["n_candidates"] == "4"
    assert parent.data.metrics["best_cv_log_loss"] == pytest.approx(-local.best_score_)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'", order_by=["metrics.rank"]
    )
    assert [c.info.run_name for c in children] == ["rank-001", "rank-002"]
    assert [c.data.params["C"] for c in children] == list(table["param_C"][:2])

    logged = mlflow.sklearn.load_model("models:/grid_tuned/1")
    refit = local.best_estimator_
    np.testing.assert_allclose(logged.predict_proba(X_test), refit.predict_proba(X_test))


def test_random_search_tries_n_iter_candidates_drawn_from_ranges_and_repeats_them_exactly(spark, settings, client):
    space = {"n_estimators": {"low": 5, "high": 20, "int": True}, "max_depth": [2, 3]}
    params = TuneJoblibParams(
        data="diabetes", estimator="random_forest", search="random", space=space, n_iter=3, n_jobs=2
    )
    result, again = run(spark, settings, params), run(spark, settings, params)
    tables = [
        pd.DataFrame(**json.loads(mlflow.artifacts.load_text(f"runs:/{r.run_id}/tuning/cv_results.json")))
        for r in (result, again)
    ]
    table = tables[0]
    assert len(table) == 3
    assert all(5 <= int(v) <= 20 for v in table["param_n_estimators"]) and set(table["param_max_depth"]) <= {"2", "3"}
    assert client.get_run(result.run_id).data.params["metric"] == "rmse"
    assert "rmse" in client.get_run(result.run_id).data.metrics
    # Seeded candidates on seeded folds, fitted as two Spark tasks at a time: the same scores and best again.
    scores = ["param_n_estimators", "param_max_depth", "mean_test_score", "std_test_score", "rank_test_score"]
    pd.testing.assert_frame_equal(tables[0][scores], tables[1][scores])
    assert result.best_params == again.best_params
    assert client.get_run(result.run_id).data.metrics == client.get_run(again.run_id).data.metrics


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"search": "bayes"}, "search must be one of grid, random, got 'bayes'"),
        ({"n_jobs": 0}, "n_jobs must be at least 1, got 0"),
        ({"space": {"depth": [1]}}, "LogisticRegression does not accept depth"),
        ({"metric": "rmse"}, "metric 'rmse' does not judge classification; choose one of: accuracy, log_loss, roc_auc"),
        ({"cv_folds": 1}, "cv_folds must be at least 2, got 1"),
    ],
)
def test_bad_search_input_fails_before_any_run(spark, settings, client, kwargs, message):
    with pytest.raises(UserInputError, match=message):
        run(spark, settings, TuneJoblibParams(data="breast_cancer", estimator="logistic_regression", **kwargs))
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment is None or client.search_runs([experiment.experiment_id]) == []

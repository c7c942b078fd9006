"""The same job, parameters and data give the same model twice, in-process on the session's Spark: an MLlib forest
with cross-validation whose rows come in one file or shuffled into three (the split, folds and bagging must not
depend on the layout), a gradient-boosted pipeline, a sequential Hyperopt search (same trials, same best) and a
joblib-spark random search over two tasks; and a parallel search says on its run that it cannot repeat."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import pandas as pd

from common.datasets import load_table
from common.provenance import EXACT_TAG
from training.train_mllib import TrainMllibParams
from training.train_mllib import run as train_mllib
from training.tune_hyperopt import TuneHyperoptParams
from training.tune_hyperopt import run as tune_hyperopt
from training.tune_joblib import TuneJoblibParams
from training.tune_joblib import run as tune_joblib

C_SPACE = {"C": {"low": 0.01, "high": 10.0, "log": True}}


def _trained_metrics(client, run_id) -> dict[str, float]:
    return {k: v for k, v in client.get_run(run_id).data.metrics.items() if not k.endswith("_seconds")}


def _trials(client, run_id) -> list[tuple[str, float]]:
    run = client.get_run(run_id)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    ordered = sorted(children, key=lambda c: int(c.data.tags["lifecycle.trial"]))
    return [(c.data.params["C"], c.data.metrics["loss"]) for c in ordered]


def _predictions(model_uri: str, rows) -> pd.DataFrame:
    scored = mlflow.spark.load_model(model_uri).transform(rows).select("probability", "prediction").toPandas()
    return scored.assign(probability=scored["probability"].map(list))


def test_an_mllib_split_folds_and_forest_do_not_depend_on_how_the_rows_are_laid_out_in_files(
    spark, settings, client, tmp_path
):
    """The same passengers as one Parquet file, and shuffled into three: the same split, folds, trees."""
    frame = load_table("titanic").frame
    one, many = tmp_path / "one.parquet", tmp_path / "many"
    frame.to_parquet(one, index=False)
    many.mkdir()
    shuffled = frame.sample(frac=1.0, random_state=7, ignore_index=True)
    for part, start in enumerate(range(0, len(shuffled), 500)):
        shuffled.iloc[start : start + 500].to_parquet(many / f"part-{part}.parquet", index=False)
    params = {"label": "survived", "title_from": "name", "num_trees": 10, "cv_folds": 2, "grid_max_depth": (3, 5)}
    first = train_mllib(spark, settings, TrainMllibParams(data=str(one), **params))
    second = train_mllib(spark, settings, TrainMllibParams(data=str(many), **params))

    assert _trained_metrics(client, first.run_id) == _trained_metrics(client, second.run_id)
    splits = [
        pd.read_parquet(mlflow.artifacts.download_artifacts(f"runs:/{r.run_id}/data/test.parquet")).sort_values(
            ["name", "age"], ignore_index=True
        )
        for r in (first, second)
    ]
    pd.testing.assert_frame_equal(splits[0], splits[1])
    test = spark.read.parquet(mlflow.artifacts.download_artifacts(f"runs:/{first.run_id}/data/test.parquet"))
    pd.testing.assert_frame_equal(_predictions(first.model_uri, test), _predictions(second.model_uri, test))


def test_a_gradient_boosted_mllib_pipeline_trains_to_the_same_trees_twice(spark, settings, client):
    params = TrainMllibParams(data="titanic", estimator="gbt", num_trees=10, title_from="name")
    first, second = train_mllib(spark, settings, params), train_mllib(spark, settings, params)

    assert _trained_metrics(client, first.run_id) == _trained_metrics(client, second.run_id)
    test = spark.read.parquet(mlflow.artifacts.download_artifacts(f"runs:/{first.run_id}/data/test.parquet"))
    a, b = (_predictions(r.model_uri, test) for r in (first, second))
    assert len(a) > 200
    pd.testing.assert_frame_equal(a, b)
    assert client.get_run(first.run_id).data.tags[EXACT_TAG] == "exact"


def test_a_sequential_hyperopt_search_proposes_the_same_trials_and_picks_the_same_best(spark, settings, client):
    params = TuneHyperoptParams(data="wine", estimator="logistic_regression", space=C_SPACE, max_evals=4, parallelism=1)
    first, second = tune_hyperopt(spark, settings, params), tune_hyperopt(spark, settings, params)

    assert len(_trials(client, first.run_id)) == 4 and _trials(client, first.run_id) == _trials(client, second.run_id)
    assert first.best_params == second.best_params
    assert _trained_metrics(client, first.run_id) == _trained_metrics(client, second.run_id)
    assert client.get_run(first.run_id).data.tags[EXACT_TAG] == "exact"

    parallel = tune_hyperopt(spark, settings, replace(params, max_evals=2, parallelism=2))
    assert client.get_run(parallel.run_id).data.tags[EXACT_TAG].startswith("not exact: 2 trials ran at once")


def test_a_random_search_over_two_spark_tasks_scores_the_same_candidates_twice(spark, settings, client):
    space = {"n_estimators": {"low": 5, "high": 20, "int": True}, "max_depth": [2, 3]}
    params = TuneJoblibParams(data="diabetes", estimator="random_forest", search="random", space=space, n_iter=3)
    first, second = tune_joblib(spark, settings, params), tune_joblib(spark, settings, params)

    tables = [
        pd.DataFrame(**json.loads(mlflow.artifacts.load_text(f"runs:/{r.run_id}/tuning/cv_results.json")))
        for r in (first, second)
    ]
    scores = ["param_n_estimators", "param_max_depth", "mean_test_score", "std_test_score", "rank_test_score"]
    pd.testing.assert_frame_equal(tables[0][scores], tables[1][scores])
    assert first.best_params == second.best_params
    assert _trained_metrics(client, first.run_id) == _trained_metrics(client, second.run_id)

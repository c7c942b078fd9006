"""End to end: the MLproject entry points run as a user runs them, `mlflow run . -e ... --env-manager local`,
each in a new process with its own JVM, against this test's SQLite store.

Every entry point goes through `mlflow run` at least once in the suite (score_stream and the MLlib score_batch in
tests/shapes/test_shapes_entry_points.py, train_per_group in tests/training); a step of a chain whose `mlflow run`
is proven elsewhere runs the same command in-process (`run_in_process`: its `main` through common.cli.run_cli), which
saves a JVM start of 20-30 s per step and checks the same output."""

import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.datasets import load_table
from tests.helpers import run_entry_point, scoring_frame
from tests.registry.conftest import state
from tests.reproduce.checks import (
    assert_reproduced_exactly,
    logged_test_rows,
    reproduce_in_process,
    reproduction_run,
    train,
)

pytestmark = pytest.mark.e2e


def _ok(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return completed.stdout


def test_main_runs_the_whole_lifecycle_and_says_what_it_did(settings, client, tmp_path):
    output = tmp_path / "quickstart" / "predictions.parquet"
    stdout = _ok(run_entry_point("main", {"output": str(output)}, tmp_path, settings.tracking_uri))

    assert "Lifecycle complete" in stdout
    assert "breast_cancer_classifier version 1, stage Production" in stdout
    assert "569 in, 569 out" in stdout
    assert f"open the UI    MLFLOW_TRACKING_URI={settings.tracking_uri} python -m lifecycle.ui" in stdout
    assert state(client, "breast_cancer_classifier") == ({"1": "Production"}, {"production": "1"})

    scored = pd.read_parquet(output).sort_values("row_id", ignore_index=True)
    assert len(scored) == 569 and (scored["model_version"] == "1").all()
    features = scoring_frame().drop(columns=["row_id", "target"])
    model = mlflow.sklearn.load_model("models:/breast_cancer_classifier/1")
    np.testing.assert_array_equal(scored["prediction"], model.predict(features))

    experiment_id = client.get_experiment_by_name("e2e").experiment_id
    (parent,) = [r for r in client.search_runs([experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(r.info.run_name.split("-")[0] for r in children) == [
        "promote",
        "promote",
        "score_batch",
        "train_sklearn",
    ]


def test_train_promote_and_score_a_users_csv_through_entry_points(settings, client, tmp_path, run_in_process):
    data = scoring_frame("diabetes").rename(columns={"row_id": "patient_id"})
    data_path = tmp_path / "diabetes.csv"
    data.to_csv(data_path, index=False)

    _ok(
        run_entry_point(
            "train_sklearn",
            {
                "data": data_path,
                "estimator": "gradient_boosting",
                "exclude": "patient_id",
                "model_name": "diabetes",
                "hyperparams": '{"n_estimators": 20}',
            },
            tmp_path,
            settings.tracking_uri,
        )
    )
    # The same modules run directly, for users who do not use `mlflow run` (`python -m registry.promote` in its own
    # processes: tests/registry/test_promotion_gate.py).
    promote = run_in_process("registry.promote", ["--model-name", "diabetes", "--stage", "staging"])
    assert "diabetes version 1: None -> Staging" in _ok(promote)
    _ok(
        run_entry_point(
            "promote",
            {"model_name": "diabetes", "version": "1", "stage": "production"},
            tmp_path,
            settings.tracking_uri,
        )
    )
    assert state(client, "diabetes") == ({"1": "Production"}, {"production": "1"})

    out = tmp_path / "scored"
    score_input = tmp_path / "to_score.csv"
    data.drop(columns="target").to_csv(score_input, index=False)
    # score_batch in-process: its `mlflow run` is proven by the refused input below (its exit) and by
    # tests/shapes/test_shapes_entry_points.py (an MLlib version scored in a JVM of its own); a process here cost a
    # JVM start (20-30 s) and checked the same output.
    args = ["--model-uri", "models:/diabetes/production", "--input", str(score_input), "--output", str(out)]
    stdout = _ok(run_in_process("scoring.batch.score_batch", args))
    assert "442 rows in, 442 rows out with diabetes v1" in stdout
    scored = pd.read_parquet(out).sort_values("patient_id", ignore_index=True)
    assert list(scored.columns) == ["patient_id", "prediction", "model_name", "model_version", "scored_at"]
    model = mlflow.sklearn.load_model("models:/diabetes/1")
    np.testing.assert_allclose(
        scored["prediction"], model.predict(data.drop(columns=["patient_id", "target"])), rtol=1e-9
    )


def test_bad_input_exits_non_zero_naming_the_problem_and_writes_nothing(
    settings, client, production_model, tmp_path, run_in_process
):
    bad = tmp_path / "bad.parquet"
    scoring_frame().drop(columns=["worst_area"]).to_parquet(bad, index=False)
    out = tmp_path / "out"
    completed = run_entry_point(
        "score_batch",
        {"model_uri": "models:/cancer/production", "input": bad, "output": out},
        tmp_path,
        settings.tracking_uri,
    )
    assert completed.returncode != 0
    assert (
        "error: input does not match the signature of model cancer v1: column 'worst_area' is missing (expected double)"
        in completed.stderr
    )
    assert not out.exists()

    # The promote command refuses the same way (its exit through `mlflow run` is the one above).
    completed = run_in_process("registry.promote", ["--model-name", "nope", "--stage", "production"])
    assert completed.returncode == 2
    assert completed.stderr == "error: registered model 'nope' does not exist; registered models: cancer\n"
    assert state(client, "cancer") == ({"1": "Production"}, {"production": "1"})


def test_mllib_pipeline_cross_validated_is_reproduced_promoted_and_scored_through_entry_points(
    settings, client, tmp_path, run_in_process, snapshot
):
    params = {"data": "titanic", "label": "survived", "title_from": "name", "num_trees": 10, "cv_folds": 2}
    version = train("train_mllib", {**params, "model_name": "titanic"}, settings, tmp_path, snapshot)
    # Rebuilt bit for bit from its run's record: same commit, parameters, data and Spark settings (local[2], two
    # shuffle partitions), so the same split, folds, best candidate and trees.
    # (reproduce in-process: its `mlflow run` is tests/reproduce/test_reproduce.py's; the replay is its own process.)
    done = reproduce_in_process(run_in_process, "models:/titanic/1", snapshot)
    assert_reproduced_exactly(client, version, done, logged_test_rows(client, version.run_id, tmp_path))
    _, replay = reproduction_run(client, version)
    assert replay.data.metrics["cv_areaUnderROC"] == client.get_run(version.run_id).data.metrics["cv_areaUnderROC"]

    # Promoted (through the gate) and scored by the same commands in-process: an MLlib version loaded by
    # score_batch in a JVM of its own is tests/shapes/test_shapes_entry_points.py's.
    assert "titanic version 1: None -> Production" in _ok(
        run_in_process("registry.promote", ["--model-name", "titanic", "--stage", "production"])
    )
    assert state(client, "titanic") == ({"1": "Production"}, {"production": "1"})

    passengers = load_table("titanic").frame.drop(columns="survived")
    passengers.insert(0, "passenger_id", range(len(passengers)))
    source = tmp_path / "passengers.csv"
    passengers.to_csv(source, index=False)
    out = tmp_path / "scored"
    args = ["--model-uri", "models:/titanic/production", "--input", str(source), "--output", str(out)]
    stdout = _ok(run_in_process("scoring.batch.score_batch", args))
    assert "1313 rows in, 1313 rows out with titanic v1" in stdout
    scored = pd.read_parquet(out)
    assert sorted(scored["passenger_id"]) == list(range(1313)) and set(scored["prediction"]) <= {0, 1}


def test_score_stream_entry_point_scores_a_folder_and_stops(settings, production_model, tmp_path, run_in_process):
    """The command in-process; score_stream through `mlflow run` is tests/shapes/test_shapes_entry_points.py's."""
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = scoring_frame().drop(columns="target")
    frame.iloc[:300].to_parquet(landing / "a.parquet", index=False)
    frame.iloc[300:].to_parquet(landing / "b.parquet", index=False)
    args = ["--model-uri", "models:/cancer/production", "--input", str(landing), "--output", str(tmp_path / "scored")]
    args += ["--checkpoint", str(tmp_path / "checkpoint"), "--ids", "row_id BIGINT", "--max-files-per-trigger", "1"]
    stdout = _ok(run_in_process("scoring.stream.score_stream", args))
    assert "stream stopped (scored micro-batch(es) 0, 1)" in stdout
    scored = pd.read_parquet(tmp_path / "scored")
    assert sorted(scored["row_id"]) == list(range(569)) and sorted(scored["batch_id"].unique()) == [0, 1]


def test_force_rollback_and_history_through_entry_points(settings, client, production_model, tmp_path, run_in_process):
    from training.sklearn.train_sklearn import TrainSklearnParams
    from training.sklearn.train_sklearn import run as train

    train(
        settings, TrainSklearnParams(data="breast_cancer", estimator="random_forest", model_name="cancer")
    )  # version 2
    # The forced promotion in-process (promote's `mlflow run` is the CSV chain's); rollback, history as users run them.
    args = ["--model-name", "cancer", "--version", "2", "--stage", "production", "--force", "true"]
    args += ["--reason", "hotfix"]
    assert "cancer version 2: None -> Production; archived 1" in _ok(run_in_process("registry.promote", args))
    stdout = _ok(
        run_entry_point("rollback", {"model_name": "cancer", "reason": "bad"}, tmp_path, settings.tracking_uri)
    )
    assert "cancer: version 1 is back in Production; archived 2" in stdout
    assert state(client, "cancer") == ({"1": "Production", "2": "Archived"}, {"production": "1"})
    stdout = _ok(run_entry_point("history", {"model_name": "cancer"}, tmp_path, settings.tracking_uri))
    assert "cancer: 2 promotion(s)" in stdout and "why: rollback from version 2: bad" in stdout
    assert "stages and aliases agree" in stdout


def test_tuning_entry_points_log_trials_as_child_runs_of_the_mlflow_run(settings, client, tmp_path, run_in_process):
    space = '{"C": {"low": 0.01, "high": 10, "log": true}}'
    params = {"estimator": "logistic_regression", "space": space, "max_evals": 4, "model_name": "tuned"}
    stdout = _ok(run_entry_point("tune_hyperopt", params, tmp_path, settings.tracking_uri))
    assert "registered tuned version 1" in stdout and 'best parameters: {"C": ' in stdout

    # tune_joblib in-process, inside a run started as `mlflow run` starts one (created in the store, handed to the job
    # in MLFLOW_RUN_ID and MLFLOW_EXPERIMENT_ID): adopting that run is common.tracking's, proven through `mlflow run`
    # just above and by every other `mlflow run` test; what is tune_joblib's own is that its trials nest under it.
    # A process of its own here cost a JVM start (about 20 s) and proved nothing more.
    experiment_id = client.get_experiment_by_name("e2e").experiment_id
    started = client.create_run(experiment_id, tags={"mlflow.project.entryPoint": "tune_joblib"})
    args = ["--estimator", "logistic_regression", "--space", '{"C": [0.1, 1.0]}', "--n-jobs", "2", "--top-k", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_RUN_ID", started.info.run_id)
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        _ok(run_in_process("training.tuning.tune_joblib", args))
    joblib_run = client.get_run(started.info.run_id)
    assert joblib_run.info.status == "FINISHED" and joblib_run.data.tags["lifecycle.entry_point"] == "tune_joblib"

    parents = [r for r in client.search_runs([experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.data.tags["mlflow.project.entryPoint"] for r in parents) == ["tune_hyperopt", "tune_joblib"]
    for parent in parents:
        children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        expected = 4 if parent.data.tags["mlflow.project.entryPoint"] == "tune_hyperopt" else 2
        assert len(children) == expected and {c.info.status for c in children} == {"FINISHED"}

"""The three shapes of the known defects, as a user runs them: score_batch and score_stream through
`mlflow run . -e <entry point> --env-manager local`, each in a new process with its own JVM, against this test's
store; promote through its command in-process (its `mlflow run` is tests/test_entry_points.py's). And a refused
shape's exit code (2)."""

from __future__ import annotations

import subprocess

import mlflow
import pandas as pd
import pytest

from registry.stages import promote as move_to_stage
from scoring.batch.score_batch import ScoreBatchParams
from scoring.batch.score_batch import run as score_batch
from tests.helpers import run_entry_point
from tests.registry.conftest import state
from tests.shapes import chain
from tests.shapes.shapes import BY_ID

pytestmark = pytest.mark.e2e


def _ok(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return completed.stdout


def test_mllib_regression_with_one_string_column_scores_through_mlflow_run(trained_models, own_store, tmp_path):
    """Known defect 1: x1, x2 (numbers), color (three values), label y; score_batch failed with
    [WRONG_NUM_COLUMNS] Function greatest should take at least 2 columns. The model is the matrix's (train_mllib
    in-process, row_id excluded; train_mllib through `mlflow run` is tests/test_entry_points.py's): the defect was in
    scoring."""
    shape = BY_ID["one_string_regression"]
    trained = trained_models.get("mllib", shape)
    trained.require_model()
    settings = own_store(trained)
    frame = trained.frame
    assert list(frame.columns) == ["row_id", "x1", "x2", "color", "y"] and frame["color"].nunique() == 3
    assert trained.features == ["x1", "x2", "color"]

    out = tmp_path / "scored"
    params = {"model_uri": f"models:/{trained.model_name}/1", "input": trained.data, "output": out}
    stdout = _ok(run_entry_point("score_batch", params, tmp_path, settings.tracking_uri))

    n = len(frame)
    assert f"{n} rows in, {n} rows out with {trained.model_name} v1" in stdout
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["row_id", "y", "prediction", "model_name", "model_version", "scored_at"]
    chain.assert_passthrough_kept(scored, frame, ["row_id", "y"], "row_id")
    chain.assert_matches_model(scored, trained_models.own_predictions(trained), "row_id")


def test_per_group_model_is_promoted_through_the_gate_by_the_promote_command(
    spark, trained_models, own_store, tmp_path, settings, run_in_process
):
    """Known defect 3: promote to Production failed with "version 1's run logged no test split". The model is the
    matrix's per-group model (trained and scored in-process; both entry points run through `mlflow run` in
    tests/training and tests/test_entry_points.py); the defect was in the promotion, which runs through its command
    (`python -m registry.promote`) in-process: its `mlflow run` is tests/test_entry_points.py's (a JVM start here
    cost 20-30 s and checked the same gate)."""
    trained = trained_models.get("per_group", BY_ID["no_strings_binary01"])
    trained.require_model()
    # own_store copies the trained store onto this test's `settings` store (tmp_path/mlflow.db), the store the
    # command runs against.
    assert own_store(trained).tracking_uri == settings.tracking_uri
    client = mlflow.MlflowClient()
    name, frame = trained.model_name, trained.frame
    assert "site" in frame.columns and frame["site"].nunique() == 3

    # no --data: the gate uses the logged test split
    promoted = run_in_process("registry.promote", ["--model-name", name, "--stage", "Production"])
    assert f"{name} version 1: None -> Production" in _ok(promoted)
    assert state(client, name) == ({"1": "Production"}, {"production": "1"})
    assert client.get_model_version(name, "1").tags["gate"] == "passed"

    out = tmp_path / "scored"
    result = score_batch(
        spark,
        settings,
        ScoreBatchParams(model_uri=f"models:/{name}/production", input=str(trained.data), output=str(out)),
    )
    n = len(frame)
    assert (result.rows_in, result.rows_out, result.model.label) == (n, n, f"{name} v1")
    scored = pd.read_parquet(out)
    assert list(scored.columns) == [
        "row_id",
        "site",
        "target",
        "prediction",
        "model_name",
        "model_version",
        "scored_at",
    ]
    chain.assert_passthrough_kept(scored, frame, ["row_id", "site", "target"], "row_id")
    chain.assert_matches_model(scored, trained_models.own_predictions(trained), "row_id")


def test_score_stream_without_ids_keeps_what_score_batch_keeps_through_mlflow_run(
    spark, trained_models, own_store, tmp_path
):
    """Known defect 2: without `ids`, score_stream dropped every non-feature column. CSV input whose values hold
    commas (quoted), ids (passenger_id, name) and the label passing through. The model is the matrix's train_sklearn
    model of that shape (a random forest of 20 trees, the ids excluded)."""
    trained = trained_models.get("sklearn", BY_ID["csv_quoted_commas"])
    trained.require_model()
    settings = own_store(trained)
    frame = trained.frame
    move_to_stage(mlflow.MlflowClient(), trained.model_name, "1", "Production")
    uri = f"models:/{trained.model_name}/production"
    data = trained.data
    assert data.suffix == ".csv"

    # The batch job in-process (its entry point is tested elsewhere); the stream as a user runs it.
    score_batch(spark, settings, ScoreBatchParams(model_uri=uri, input=str(data), output=str(tmp_path / "batch")))
    n = len(frame)
    chain.land(frame.iloc[: n // 2], tmp_path / "landing", "a.csv", "csv")
    chain.land(frame.iloc[n // 2 :], tmp_path / "landing", "b.csv", "csv")
    params = {
        "model_uri": uri,
        "input": tmp_path / "landing",
        "output": tmp_path / "stream",
        "checkpoint": tmp_path / "checkpoint",
        "format": "csv",
        "max_files_per_trigger": "1",
    }
    stdout = _ok(run_entry_point("score_stream", params, tmp_path, settings.tracking_uri))

    assert "stream stopped (scored micro-batch(es) 0, 1)" in stdout
    batch = pd.read_parquet(tmp_path / "batch")
    stream = pd.read_parquet(tmp_path / "stream").drop(columns="batch_id")
    kept = ["passenger_id", "name", "survived"]  # the non-feature columns
    assert list(batch.columns) == [*kept, "prediction", "probability", "model_name", "model_version", "scored_at"]
    assert sorted(stream.columns) == sorted(batch.columns)
    assert len(stream) == len(batch) == n
    chain.assert_matches_model(stream, batch[["passenger_id", "prediction", "probability"]], "passenger_id")
    chain.assert_passthrough_kept(stream, batch, kept, "passenger_id")


def test_a_shape_a_job_refuses_exits_2_with_one_line_before_any_run_or_version(
    settings, client, tmp_path, run_in_process
):
    """20 rows, a class of 2: tune_joblib's 3-fold cross-validation cannot see it in every fold. The command runs
    in-process (tune_joblib through `mlflow run` is tests/test_entry_points.py's)."""
    data = tmp_path / "tiny.parquet"
    BY_ID["tiny_rare_class"].frame().to_parquet(data, index=False)
    args = ["--data", str(data), "--label", "target", "--exclude", "row_id", "--model-name", "tiny"]
    completed = run_in_process("training.tuning.tune_joblib", args)

    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    assert (
        completed.stderr.strip()
        .splitlines()[-1]
        .startswith("error: cv_folds=3 needs every class of 'target' at least 3 times in the training split")
    )
    assert chain.all_runs(client) == [] and client.search_registered_models() == []

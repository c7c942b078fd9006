"""The three shapes of the known defects, as a user runs them: `mlflow run . -e <entry point> --env-manager local`,
each in a new process with its own JVM, against this test's store. And a refused shape's exit code (2)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from registry.stages import promote as move_to_stage
from scoring.score_batch import ScoreBatchParams
from scoring.score_batch import run as score_batch
from tests.helpers import run_entry_point
from tests.registry.conftest import state
from tests.shapes import chain
from tests.shapes.shapes import BY_ID
from training.train_mllib import TrainMllibParams
from training.train_mllib import run as train_mllib
from training.train_per_group import TrainPerGroupParams
from training.train_per_group import run as train_per_group

pytestmark = pytest.mark.e2e


def _ok(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return completed.stdout


def test_mllib_regression_with_one_string_column_scores_through_mlflow_run(spark, settings, client, tmp_path):
    """Known defect 1: x1, x2 (numbers), color (three values), label y; score_batch failed with
    [WRONG_NUM_COLUMNS] Function greatest should take at least 2 columns."""
    frame = BY_ID["one_string_regression"].frame()
    assert list(frame.columns) == ["row_id", "x1", "x2", "color", "y"] and frame["color"].nunique() == 3
    data = tmp_path / "onecat.parquet"
    frame.drop(columns="row_id").to_parquet(data, index=False)
    # Trained in-process (train_mllib through `mlflow run` is tests/test_entry_points.py's); the defect was in scoring.
    train_mllib(
        spark, settings,
        TrainMllibParams(data=str(data), label="y", task="regression", num_trees=10, model_name="onecat"),
    )  # fmt: skip

    source = tmp_path / "to_score.parquet"
    frame.to_parquet(source, index=False)
    out = tmp_path / "scored"
    params = {"model_uri": "models:/onecat/1", "input": source, "output": out}
    stdout = _ok(run_entry_point("score_batch", params, tmp_path, settings.tracking_uri))

    n = len(frame)
    assert f"{n} rows in, {n} rows out with onecat v1" in stdout
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["row_id", "y", "prediction", "model_name", "model_version"]
    chain.assert_passthrough_kept(scored, frame, ["row_id", "y"], "row_id")
    chain.assert_matches_model(
        scored, chain.own_predictions(spark, "models:/onecat/1", source, "parquet", "row_id"), "row_id"
    )


def test_per_group_model_is_promoted_through_the_gate_through_mlflow_run(spark, settings, client, tmp_path):
    """Known defect 3: promote to Production failed with "version 1's run logged no test split"."""
    frame = BY_ID["no_strings_binary01"].per_group_frame()
    data = tmp_path / "sites.parquet"
    frame.to_parquet(data, index=False)
    # Trained and scored in-process (both entry points run through `mlflow run` in tests/training and
    # tests/test_entry_points.py); the defect was in the promotion, which runs as a user runs it.
    train_per_group(
        spark, settings,
        TrainPerGroupParams(data=str(data), label="target", group="site", exclude=("row_id",), min_rows=20,
                            hyperparams={"n_estimators": 20}, model_name="sites"),
    )  # fmt: skip

    params = {"model_name": "sites", "stage": "Production"}  # no data=: the gate uses the logged test split
    assert "sites version 1: None -> Production" in _ok(
        run_entry_point("promote", params, tmp_path, settings.tracking_uri)
    )
    assert state(client, "sites") == ({"1": "Production"}, {"production": "1"})
    assert client.get_model_version("sites", "1").tags["gate"] == "passed"

    out = tmp_path / "scored"
    result = score_batch(
        spark, settings, ScoreBatchParams(model_uri="models:/sites/production", input=str(data), output=str(out))
    )
    n = len(frame)
    assert (result.rows_in, result.rows_out, result.model.label) == (n, n, "sites v1")
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["row_id", "site", "target", "prediction", "model_name", "model_version"]
    chain.assert_passthrough_kept(scored, frame, ["row_id", "site", "target"], "row_id")
    own = chain.own_predictions(spark, "models:/sites/1", data, "parquet", "row_id")
    chain.assert_matches_model(scored, own, "row_id")


def test_score_stream_without_ids_keeps_what_score_batch_keeps_through_mlflow_run(spark, settings, client, tmp_path):
    """Known defect 2: without `ids`, score_stream dropped every non-feature column. CSV input whose values hold
    commas (quoted), ids (passenger_id, name) and the label passing through."""
    from training.train_sklearn import TrainSklearnParams
    from training.train_sklearn import run as train

    shape = BY_ID["csv_quoted_commas"]
    frame = shape.frame()
    data = tmp_path / "passengers.csv"
    frame.to_csv(data, index=False)
    train(
        settings,
        TrainSklearnParams(
            data=str(data),
            label="survived",
            exclude=list(shape.ids),
            hyperparams={"n_estimators": 20},
            model_name="passengers",
        ),
    )
    move_to_stage(client, "passengers", "1", "Production")
    uri = "models:/passengers/production"

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
    assert list(batch.columns) == [*kept, "prediction", "probability", "model_name", "model_version"]
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
    completed = run_in_process("training.tune_joblib", args)

    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    assert (
        completed.stderr.strip()
        .splitlines()[-1]
        .startswith("error: cv_folds=3 needs every class of 'target' at least 3 times in the training split")
    )
    assert chain.all_runs(client) == [] and client.search_registered_models() == []

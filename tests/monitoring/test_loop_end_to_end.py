"""The loop closed, end to end: train -> promote -> score windows that drift -> `mlflow run . -e monitor -P
retrain=true` flags them, retrains on the recent labelled rows, the gate judges the challenger on the latest
labelled window and promotes it -> the stream, following the Production stage, scores with the new version.

One `mlflow run` (monitor, the step this test exists for: its JVM, the retraining's own `mlflow run` of train_sklearn
and the gate); the steps whose `mlflow run` is proven elsewhere (train_sklearn, promote, score_batch, score_stream in
tests/test_entry_points.py and tests/shapes) run their commands in-process on the session's Spark."""

from __future__ import annotations

import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.profile import MONITORING_STATUS_TAG
from monitoring.retrain import GATE_TAG, MONITOR_RUN_TAG, RETRAINED_FOR_TAG, RETRAINED_FROM_TAG, RETRAINING_TAG
from tests.helpers import run_entry_point
from tests.registry.conftest import state

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

MODEL = "loop"
DAY = pd.Timestamp("2024-06-01", tz="UTC")
ROWS = 600


def _ok(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-6000:]
    return completed.stdout


def _rows(rng: np.random.Generator, n: int, shift: float, concept: str) -> pd.DataFrame:
    """Concept A: y = x0 > 0; concept B (what the world turns into): y = x1 > 0, with x0 shifted."""
    frame = pd.DataFrame({"x0": rng.normal(shift, 1.0, n), "x1": rng.normal(0, 1.0, n), "x2": rng.normal(0, 1.0, n)})
    frame["y"] = ((frame.x0 if concept == "A" else frame.x1) > 0).astype(int)
    return frame


def test_drift_retrains_through_the_gate_and_the_stream_scores_with_the_new_version(
    settings, client, tmp_path, run_in_process
):
    rng = np.random.default_rng(5)
    _rows(rng, 2_000, 0.0, "A").to_parquet(tmp_path / "concept_a.parquet")
    _rows(rng, 2_000, 1.0, "B").to_parquet(tmp_path / "recent_labelled.parquet")

    # train -> promote
    train = ["--data", str(tmp_path / "concept_a.parquet"), "--label", "y", "--estimator", "logistic_regression"]
    _ok(run_in_process("training.sklearn.train_sklearn", [*train, "--model-name", MODEL]))
    _ok(run_in_process("registry.promote", ["--model-name", MODEL, "--version", "1", "--stage", "production"]))

    # score three days: day 0 like the training rows, days 1-2 drifted (x0 shifted, the label's meaning changed)
    days = []
    for day in range(3):
        frame = _rows(rng, ROWS, 1.0 if day else 0.0, "B" if day else "A")
        frame["event_time"] = DAY + pd.Timedelta(days=day) + pd.to_timedelta(rng.integers(0, 86_400, ROWS), "s")
        days.append(frame)
    rows = pd.concat(days, ignore_index=True)
    rows.insert(0, "row_id", np.arange(len(rows), dtype="int64"))
    rows.drop(columns="y").to_parquet(tmp_path / "to_score.parquet", coerce_timestamps="us")
    rows[["row_id", "y"]].to_parquet(tmp_path / "labels.parquet")
    scored = tmp_path / "scored"
    score = ["--model-uri", f"models:/{MODEL}/production", "--input", str(tmp_path / "to_score.parquet")]
    _ok(run_in_process("scoring.batch.score_batch", [*score, "--output", str(scored), "--keep-features", "true"]))

    # monitor flags the drifted days, retrains, the gate judges, the winner is promoted: through `mlflow run`
    params = {
        "model_name": MODEL,
        "input": scored,
        "output": tmp_path / "monitoring",
        "window": "1d",
        "time_column": "event_time",
        "labels": tmp_path / "labels.parquet",
        "ids": "row_id",
        "retrain": "true",
        "retrain_data": tmp_path / "recent_labelled.parquet",
    }
    stdout = _ok(run_entry_point("monitor", params, tmp_path, settings.tracking_uri))
    assert "3 window(s) computed" in stdout and "retrained as v2" in stdout and ": promoted" in stdout, stdout

    stages, aliases = state(client, MODEL)
    assert stages["2"] == "Production" and stages["1"] != "Production" and aliases["production"] == "2"
    v1, v2 = client.get_model_version(MODEL, "1"), client.get_model_version(MODEL, "2")
    assert v1.tags[MONITORING_STATUS_TAG].startswith(("drift: ", "degraded: "))
    monitor_run = client.get_run(v1.tags["lifecycle.monitoring.run_id"])
    assert v2.tags[MONITOR_RUN_TAG] == monitor_run.info.run_id and v2.tags[RETRAINED_FROM_TAG] == "1"
    assert v2.tags[GATE_TAG].startswith("promoted: won the gate on window")
    drifted_days = [int((DAY + pd.Timedelta(days=d)).timestamp()) for d in (1, 2)]
    assert v2.tags[RETRAINED_FOR_TAG] == ",".join(map(str, drifted_days))
    assert "retrained as v2" in monitor_run.data.tags[RETRAINING_TAG]
    retraining_run = client.get_run(v2.run_id)
    assert retraining_run.data.tags[MONITOR_RUN_TAG] == monitor_run.info.run_id
    assert retraining_run.data.params["estimator"] == "logistic_regression"  # the recorded parameters, replayed
    drift = pd.read_parquet(tmp_path / "monitoring" / "drift_metrics")
    drifted = drift[(drift.statistic == "drift") & (drift.comparison == "baseline") & drift.drifted]
    assert set(drifted.column_name) >= {"x0"} and "x2" not in set(drifted.column_name)

    # the stream follows the Production stage: new rows are scored by v2, with v2's own predictions
    landing = tmp_path / "landing"
    landing.mkdir()
    fresh = _rows(rng, 300, 1.0, "B").drop(columns="y")
    fresh.insert(0, "row_id", np.arange(300, dtype="int64"))
    fresh.to_parquet(landing / "a.parquet", index=False)
    stream = ["--model-uri", f"models:/{MODEL}/production", "--input", str(landing)]
    stream += ["--output", str(tmp_path / "streamed"), "--checkpoint", str(tmp_path / "checkpoint")]
    _ok(run_in_process("scoring.stream.score_stream", [*stream, "--ids", "row_id BIGINT"]))
    streamed = pd.read_parquet(tmp_path / "streamed").sort_values("row_id", ignore_index=True)
    assert len(streamed) == 300 and set(streamed.model_version.astype(str)) == {"2"}
    challenger = mlflow.sklearn.load_model(f"models:/{MODEL}/2")
    np.testing.assert_array_equal(streamed.prediction, challenger.predict(fresh[["x0", "x1", "x2"]]))

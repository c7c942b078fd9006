"""What every reproduction test checks: a version's training run replayed (`mlflow run -e reproduce`, or the same
command in-process) and found the same, run by run and prediction by prediction."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from common.provenance import ENTRY_POINT_TAG, GIT_DIRTY_TAG, REPRODUCTION_RUN_TAG, REPRODUCTION_VERDICT_TAG, SPARK_TAGS
from lifecycle.reproduce import ORIGINAL_RUN_TAG
from tests.helpers import run_entry_point
from training.held_out import download_test_split


def train(entry_point, params, settings, tmp_path, project):
    done = run_entry_point(entry_point, params, tmp_path, settings.tracking_uri, project=project)
    assert done.returncode == 0, done.stderr[-3000:]
    name = params["model_name"]
    return mlflow.MlflowClient().get_model_version(name, "1")


def reproduce(model_uri, settings, tmp_path, project, **params):
    return run_entry_point(
        "reproduce", {"model_uri": model_uri, **params}, tmp_path, settings.tracking_uri, project=project
    )


def reproduce_in_process(run_in_process, model_uri, project):
    """The `reproduce` command in this process (its `mlflow run` is tests/reproduce/test_reproduce.py's), reading the
    commit from `project` as it does from the checkout it runs in; the replay is still `mlflow run` of the recorded
    entry point in a worktree, its own process. Saves the reproduce process's start and its JVM (20-30 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("lifecycle.reproduce.PROJECT_ROOT", Path(project))
        return run_in_process("lifecycle.reproduce", ["--model-uri", model_uri])


def children(client, parent_run_id):
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, f"tags.mlflow.parentRunId = '{parent_run_id}'")


def reproduction_run(client, version):
    run = client.get_run(client.get_model_version(version.name, version.version).tags[REPRODUCTION_RUN_TAG])
    (replay,) = children(client, run.info.run_id)
    return run, replay


def assert_reproduced_exactly(client, version, done, test_rows: int):
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{version.name} v1 (run {version.run_id}" in done.stdout and "reproduced exactly" in done.stdout
    original = client.get_run(version.run_id)
    run, replay = reproduction_run(client, version)
    assert client.get_model_version(version.name, "1").tags[REPRODUCTION_VERDICT_TAG] == "reproduced exactly"
    assert run.data.tags[ORIGINAL_RUN_TAG] == version.run_id
    assert run.data.tags[REPRODUCTION_VERDICT_TAG] == "reproduced exactly"
    # The replay ran the recorded entry point from the recorded commit, on the recorded Spark settings.
    assert replay.data.tags["mlflow.source.git.commit"] == original.data.tags["mlflow.source.git.commit"]
    assert replay.data.tags[ENTRY_POINT_TAG] == original.data.tags[ENTRY_POINT_TAG]
    assert replay.data.tags[GIT_DIRTY_TAG] == "false"
    for tag in SPARK_TAGS.values():
        assert replay.data.tags.get(tag) == original.data.tags.get(tag)
    # Every metric but timings and what the ONNX export logs on registration (a replay registers nothing).
    trained = {k: v for k, v in original.data.metrics.items() if not k.endswith("_seconds") and "onnx" not in k}
    assert trained and replay.data.metrics == trained
    assert run.data.metrics == {
        "max_metric_difference": 0.0,
        "max_prediction_difference": 0.0,
        "test_rows_compared": float(test_rows),
        "test_rows_predicted_differently": 0.0,
    }
    # A reproduction registers nothing.
    assert [str(v.version) for v in client.search_model_versions(f"name = '{version.name}'")] == ["1"]


def logged_test_rows(client, run_id, tmp_path) -> int:
    return len(pd.read_parquet(download_test_split(run_id, str(tmp_path), client)))

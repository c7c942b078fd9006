"""`reproduce` through `mlflow run`, as a user runs it: a train_sklearn version of a CSV file replayed from its commit
in a worktree and found the same (every metric, predictions on the logged test split), what its run recorded, and
each refusal, with nothing replayed and nothing registered. The MLlib (cross-validated, title stage) and per-group
reproductions extend those jobs' own `mlflow run` tests: tests/test_entry_points.py and
tests/training/test_train_per_group.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from common.provenance import (
    DATA_SHA256_TAG,
    DATA_SOURCE_TAG,
    ENTRY_POINT_TAG,
    ENVIRONMENT_FILE,
    EXACT_TAG,
    GIT_DIRTY_TAG,
    REPRODUCTION_RUN_TAG,
    REPRODUCTION_VERDICT_TAG,
    files_sha256,
)
from lifecycle.training_record import environment_differences
from tests.helpers import REPO, git
from tests.reproduce.checks import assert_reproduced_exactly, logged_test_rows, reproduce, reproduction_run, train
from training.held_out import download_test_split

pytestmark = pytest.mark.timeout(600)


def test_a_train_sklearn_version_of_a_csv_file_is_reproduced_exactly_and_refused_once_the_file_changed(
    settings, client, tmp_path, snapshot, run_in_process
):
    from sklearn.datasets import load_wine

    data = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(data, index=False)
    params = {"data": data, "estimator": "random_forest", "hyperparams": '{"n_estimators": 20}', "model_name": "wine"}
    version = train("train_sklearn", params, settings, tmp_path, snapshot)

    # The record: code, entry point, data and environment, each as the run saw them.
    tags = client.get_run(version.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == git(snapshot, "rev-parse", "HEAD")
    assert tags[GIT_DIRTY_TAG] == "false" and tags[ENTRY_POINT_TAG] == "train_sklearn" and tags[EXACT_TAG] == "exact"
    assert tags[DATA_SOURCE_TAG] == str(data) and tags[DATA_SHA256_TAG] == files_sha256(data)
    environment = json.loads(
        Path(client.download_artifacts(version.run_id, ENVIRONMENT_FILE, str(tmp_path))).read_text()
    )
    installed = __import__("sklearn").__version__
    assert environment["packages"]["scikit-learn"] == installed
    assert environment_differences(environment, environment) == []
    older = {**environment, "packages": {**environment["packages"], "scikit-learn": "1.0"}}
    assert environment_differences(environment, older) == [f"scikit-learn {installed} recorded, 1.0 installed"]

    done = reproduce("models:/wine/1", settings, tmp_path, snapshot)
    assert_reproduced_exactly(client, version, done, logged_test_rows(client, version.run_id, tmp_path))
    # The two models, loaded here, predict the logged test split alike to the last bit.
    _, replay = reproduction_run(client, version)
    test = pd.read_parquet(download_test_split(version.run_id, str(tmp_path), client))
    features = test.drop(columns="target")
    replayed = mlflow.sklearn.load_model(f"models:/{replay.outputs.model_outputs[0].model_id}")
    original = mlflow.sklearn.load_model("models:/wine/1")
    np.testing.assert_array_equal(replayed.predict_proba(features), original.predict_proba(features))
    history = run_in_process("registry.history", ["--model-name", "wine"])
    reproduction_run_id = client.get_model_version("wine", "1").tags[REPRODUCTION_RUN_TAG]
    assert f"v1 reproduction: reproduced exactly (run {reproduction_run_id})" in history.stdout

    # The refusals run the same command in-process (a failing job's exit through `mlflow run` is proven in
    # tests/test_entry_points.py), from this checkout: nothing is replayed, tagged or registered.
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    # A repository without the commit (this checkout's): refused, naming the commit.
    elsewhere = run_in_process("lifecycle.reproduce", ["--model-uri", "models:/wine/1"])
    assert elsewhere.returncode == 2
    assert f"commit {tags['mlflow.source.git.commit']} (run {version.run_id}) is not in the repository at {REPO}" in (
        elsewhere.stderr
    )
    # One changed value in the data file: refused, naming the file and the run (data is checked first).
    frame = pd.read_csv(data)
    frame.loc[0, "alcohol"] += 0.1
    frame.to_csv(data, index=False)
    refused = run_in_process("lifecycle.reproduce", ["--model-uri", "models:/wine/1"])
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"error: data {data} changed since run {version.run_id}: sha256 ")
    assert client.get_model_version("wine", "1").tags[REPRODUCTION_RUN_TAG] == reproduction_run_id
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before


def test_a_run_from_a_dirty_tree_or_not_from_a_training_entry_point_is_refused(
    settings, client, tmp_path, snapshot, three_versions, run_in_process
):
    dirty = tmp_path / "dirty"
    shutil.copytree(snapshot, dirty)
    with open(dirty / "training" / "sklearn" / "estimators.py", "a") as source:
        source.write("\n# a change that was never committed\n")
    # Trained in-process with the project's folder taken to be the dirty copy (what git says of the tree is read
    # there, as under `mlflow run` of that copy): a process of its own proved nothing more (train_sklearn's
    # `mlflow run` and its clean-tree record are the test above) and cost about 20 s.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("common.tracking.PROJECT_ROOT", dirty)
        trained = run_in_process(
            "training.sklearn.train_sklearn",
            ["--data", "wine", "--estimator", "logistic_regression", "--model-name", "dirty"],
        )
    assert trained.returncode == 0, trained.stderr[-3000:]
    version = client.get_model_version("dirty", "1")
    tags = client.get_run(version.run_id).data.tags
    assert tags[GIT_DIRTY_TAG] == "true" and tags["mlflow.source.git.commit"] == git(snapshot, "rev-parse", "HEAD")

    refused = run_in_process("lifecycle.reproduce", ["--model-uri", "models:/dirty/1"])
    assert refused.returncode == 2
    assert f"run {version.run_id} ran from a dirty tree" in refused.stderr

    # `three_versions` logged its models from a plain mlflow.start_run(), not from a training job.
    not_ours = run_in_process("lifecycle.reproduce", ["--model-uri", "models:/m/2"])
    assert not_ours.returncode == 2
    assert "was not made by one of this project's training entry points" in not_ours.stderr
    missing = run_in_process("lifecycle.reproduce", ["--model-uri", "runs:/0123456789abcdef/model"])
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: run 0123456789abcdef does not exist in the tracking store sqlite:")
    for name in ("dirty", "m"):
        versions = client.search_model_versions(f"name = '{name}'")
        assert all(REPRODUCTION_VERDICT_TAG not in v.tags for v in versions)
    assert len(client.search_model_versions("name = 'dirty'")) == 1

"""The entry points, unchanged, against the team stack: tracking and registry on the basic-auth `mlflow server`
(PostgreSQL behind it, artifacts proxied through it), Spark on the standalone cluster."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from common.tracking import EXPERIMENT_KIND_TAG, TRAINING_EXPERIMENT_KIND, training_runs_url
from lifecycle.team.processes import running_pid
from tests.helpers import scoring_frame
from tests.team.conftest import QUICKSTART_EXPERIMENT, QUICKSTART_MODEL, python_module, run_job, team_env

pytestmark = pytest.mark.e2e


def test_the_quickstart_runs_on_the_cluster_with_artifacts_through_the_server(team, quickstart_on_team, admin_client):
    done, output = quickstart_on_team
    experiment = admin_client.get_experiment_by_name(QUICKSTART_EXPERIMENT)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == TRAINING_EXPERIMENT_KIND
    assert training_runs_url(team.server.url, experiment.experiment_id) in done.stderr

    runs = admin_client.search_runs([experiment.experiment_id])
    names = sorted(r.info.run_name for r in runs)
    assert any(name.startswith("train_sklearn") for name in names), names
    # Proxied artifacts: every run's artifacts live behind the server, none at a path the client could write.
    assert {r.info.artifact_uri.split(":", 1)[0] for r in runs} == {"mlflow-artifacts"}
    training = next(r for r in runs if r.info.run_name.startswith("train_sklearn"))
    assert set(training.data.metrics) >= {"accuracy", "f1", "roc_auc", "log_loss"}

    production = admin_client.get_model_version_by_alias(QUICKSTART_MODEL, "production")
    assert production.current_stage == "Production" and production.run_id == training.info.run_id
    on_server = team.server.root / "artifacts" / experiment.experiment_id
    assert list(on_server.rglob("MLmodel")), f"no model files under the server's artifact root {on_server}"

    scored = pd.read_parquet(output)
    assert len(scored) == len(scoring_frame()) and set(scored["model_version"]) == {production.version}

    # The cluster scored it: the executor received the model as an archive, with no credentials of its own.
    shipped = list((team.spark.root / "work").glob(f"app-*/*/model-{QUICKSTART_MODEL}_v{production.version}-*.zip"))
    assert shipped, "the executor never received the model"
    worker_pid = running_pid(team.spark.root / "worker.pid")
    worker_env = Path(f"/proc/{worker_pid}/environ").read_bytes().split(b"\0")
    assert not [var for var in worker_env if var.startswith(b"MLFLOW_TRACKING_")]


def test_an_mllib_pipeline_logged_through_the_server_scores_on_the_cluster(team, spark, admin_client, tmp_path):
    """A Spark-native model, saved by the driver and uploaded through the server (with its ONNX export), then
    scored on the cluster from its registry URI by `python -m scoring.batch.score_batch`. (Fitted on the session's local
    Spark: fitting on executors is what the quickstart's own Spark jobs already show.)"""
    from training.mllib import train_mllib

    trained = train_mllib.main(["--data", "penguins", "--label", "species", "--num-trees", "10",
                                "--model-name", "penguins"])  # fmt: skip
    version = admin_client.get_model_version("penguins", trained.model_version)
    assert version.tags.get("onnx") == "passed"  # exported at registration, its files uploaded through the server

    source = tmp_path / "penguins.parquet"
    scoring_frame("penguins").to_parquet(source, index=False)
    out = tmp_path / "scored"
    cluster = team_env(team, SPARK_MASTER=team.spark.master_url, MLFLOW_EXPERIMENT_NAME="team-mllib")
    command = python_module("scoring.batch.score_batch", "--model-uri", f"models:/penguins/{version.version}",
                            "--input", str(source), "--output", str(out))  # fmt: skip
    scored = run_job(command, cluster)
    assert scored.returncode == 0, scored.stderr[-3000:]
    result = pd.read_parquet(out)
    assert sorted(result["row_id"]) == list(range(len(scoring_frame("penguins"))))
    assert result["prediction"].notna().all() and set(result["model_version"]) == {version.version}


def test_per_group_training_stream_scoring_and_the_registry_jobs_against_the_server(spark, admin_client, tmp_path):
    """The jobs that need no cluster, each through its own `main` as `python -m` calls it, against the server
    (in this process, on the session's local Spark: the server is what is under test here)."""
    from registry import history, promote, rollback
    from scoring.stream import score_stream
    from training.per_group import train_per_group

    # Six of the fifty devices: what is under test is the server, not the size of the fleet.
    devices = scoring_frame("iot_devices")
    devices = devices[devices["device_id"].isin(sorted(set(devices["device_id"]))[:6])].drop(columns="row_id")
    fleet = tmp_path / "fleet.parquet"
    devices.to_parquet(fleet, index=False)
    trained = train_per_group.main(["--data", str(fleet), "--fallback", "global", "--estimator",
                                    "logistic_regression", "--model-name", "devices"])  # fmt: skip
    # A second version of the same model, for a promotion to roll back from.
    first = admin_client.get_model_version("devices", trained.model_version)
    second = mlflow.register_model(first.source, "devices").version
    for version in (trained.model_version, second):
        promote.main(["--model-name", "devices", "--stage", "production", "--version", version, "--force", "true",
                      "--reason", f"fleet model v{version}"])  # fmt: skip
    rollback.main(["--model-name", "devices", "--reason", "v2 misbehaves"])
    assert admin_client.get_model_version_by_alias("devices", "production").version == trained.model_version
    timeline = history.main(["--model-name", "devices"])
    events, problems = timeline.events, timeline.problems
    assert [(e.version, e.stage) for e in events] == [
        (v, "Production") for v in (trained.model_version, second, trained.model_version)
    ]
    assert problems == []

    landing, out = tmp_path / "landing", tmp_path / "scored"
    landing.mkdir()
    frame = devices.reset_index(drop=True)
    frame.insert(0, "row_id", range(len(frame)))
    for part, rows in enumerate((frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :])):
        rows.to_parquet(landing / f"part-{part}.parquet", index=False)
    score_stream.main(["--model-uri", "models:/devices/production", "--input", str(landing), "--output", str(out),
                       "--checkpoint", str(tmp_path / "checkpoint"), "--ids", "row_id BIGINT"])  # fmt: skip
    scored = pd.read_parquet(out)
    assert sorted(scored["row_id"]) == list(range(len(frame)))
    assert set(scored["model_version"]) == {trained.model_version}

"""The team server under the load and the failures a team brings: concurrent tuning jobs, a server killed mid-job,
and restarts of the database and the server (concurrent promotions: test_promotion_lock.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from lifecycle.team.tracking_server import AUTH_DATABASE, TRACKING_DATABASE
from tests.helpers import REPO
from tests.team.conftest import python_module, register_versions, team_env

pytestmark = pytest.mark.e2e


def _start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(jobs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each job, once it has ended."""
    outputs = [job.communicate(timeout=timeout) for job in jobs]
    return [(job.returncode, out, err) for job, (out, err) in zip(jobs, outputs, strict=True)]


def test_two_tuning_jobs_at_once_log_every_trial_as_a_child_run(team, admin_client):
    env = team_env(team, MLFLOW_EXPERIMENT_NAME="team-tuning")
    space = '{"C": {"low": 0.01, "high": 10, "log": true}}'
    jobs = [
        _start(python_module("training.tuning.tune_hyperopt", "--estimator", "logistic_regression", "--space", space,
                             "--max-evals", "8", "--parallelism", "2", "--model-name", f"tuned-{i}"), env)
        for i in range(2)
    ]  # fmt: skip
    outcomes = _finish(jobs)
    # A string, not a list: pytest shortens the items of a list it shows, and the traceback's last lines are the point.
    assert [code for code, _, _ in outcomes] == [0, 0], "\n\n".join(err[-3000:] for _, _, err in outcomes)
    assert not [line for _, _, err in outcomes for line in err.splitlines() if " ERROR " in line or "Traceback" in line]

    experiment = admin_client.get_experiment_by_name("team-tuning").experiment_id
    runs = admin_client.search_runs([experiment])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(int(c.data.tags["lifecycle.trial"]) for c in children) == list(range(8))
        assert {c.info.status for c in children} == {"FINISHED"}
        assert all({"loss", "cv_log_loss", "fit_seconds"} <= set(c.data.metrics) and "C" in c.data.params
                   for c in children)  # fmt: skip
        assert parent.data.metrics["n_trials_ok"] == 8 and parent.data.metrics["n_trials_failed"] == 0
        assert parent.data.metrics["best_loss"] == pytest.approx(min(c.data.metrics["loss"] for c in children))
    assert {v.name for v in admin_client.search_model_versions("name LIKE 'tuned-%'")} == {"tuned-0", "tuned-1"}


def _snapshot(client: mlflow.MlflowClient) -> dict:
    """Every run with its status, parameters, metrics and artifact files; every model version with its stage."""
    runs = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            files = _files(get_artifact_repository(run.info.artifact_uri))
            runs[run.info.run_id] = (run.info.status, run.data.params, run.data.metrics, files)
    versions = {
        (v.name, v.version): (v.current_stage, v.source, v.run_id)
        for model in client.search_registered_models()
        for v in client.search_model_versions(f"name = '{model.name}'")
    }
    return {"runs": runs, "versions": versions}


def _files(artifacts, path: str | None = None) -> list[tuple[str, int]]:
    """Every file under the run's artifact root (listed there directly: client.list_artifacts reads the run again for
    every folder, hundreds of requests over the session's runs)."""
    found = []
    for entry in artifacts.list_artifacts(path):
        found += _files(artifacts, entry.path) if entry.is_dir else [(entry.path, entry.file_size)]
    return sorted(found)


def test_a_server_killed_mid_job_fails_it_in_one_line_and_a_restart_loses_nothing(
    team, quickstart_on_team, admin_settings, admin_client
):
    """(After the quickstart, which must not be running when the server dies.)"""
    register_versions("team-kept", "kept", 1)  # something of its own to keep, whatever ran before
    before = _snapshot(admin_client)
    # The client's default is to retry for about four minutes (a restart inside that is ridden out); fewer
    # retries here so the job gives up while the server is down.
    env = team_env(team, MLFLOW_EXPERIMENT_NAME="team-crash", MLFLOW_HTTP_REQUEST_MAX_RETRIES="1",
                   MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1")  # fmt: skip
    job = _start(python_module("training.sklearn.train_sklearn", "--model-name", "crashed"), env)
    deadline = time.monotonic() + 180
    while not _has_runs(admin_client, "team-crash"):
        assert job.poll() is None and time.monotonic() < deadline, "the job never started logging"
        time.sleep(0.2)
    team.server.kill()
    code, _, err = _finish([job], 300)[0]
    assert code == 2, err[-3000:]
    assert err.strip().splitlines()[-1].startswith(f"error: cannot reach the tracking server at {team.server.url}")

    team.server.stop()
    team.postgres.stop()
    team.postgres.start(databases=(TRACKING_DATABASE, AUTH_DATABASE))
    team.server.start(team.postgres)

    after = _snapshot(admin_client)
    assert {run_id: after["runs"].get(run_id) for run_id in before["runs"]} == before["runs"]
    assert {key: after["versions"].get(key) for key in before["versions"]} == before["versions"]
    # No version without its model: the killed job registered nothing, and every version's files are all there.
    assert not [key for key in after["versions"] if key[0] == "crashed"]
    # Versions registered from one logged model (the lock race's eight) share its files: each downloaded once.
    files_of = {}
    for name, version in after["versions"]:
        files_of.setdefault(admin_client.get_model_version_download_uri(name, version), []).append((name, version))
    for uri, versions in files_of.items():
        local = Path(mlflow.artifacts.download_artifacts(uri))
        assert (local / "MLmodel").exists(), f"{versions} (at {uri}) have no model files"


def _has_runs(client: mlflow.MlflowClient, experiment_name: str) -> bool:
    experiment = client.get_experiment_by_name(experiment_name)
    return experiment is not None and bool(client.search_runs([experiment.experiment_id]))

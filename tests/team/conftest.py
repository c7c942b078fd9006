"""One team stack per test session (PostgreSQL, `mlflow server` with basic-auth and proxied artifacts, a Spark
standalone master and worker), started once by the first test that asks for it and stopped at the end.

Its directory is made with tempfile rather than pytest's tmp_path: pytest's base directory is private to this user,
and PostgreSQL's own account must pass through the directories above its data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pytest

from lifecycle.team.postgres import find_binaries
from lifecycle.team.processes import free_port
from lifecycle.team.stack import StackConfig, TeamStack
from lifecycle.team.system_packages import can_install
from tests.conftest import make_settings
from tests.helpers import REPO, job_env

QUICKSTART_EXPERIMENT = "model-lifecycle"
QUICKSTART_MODEL = "breast_cancer_classifier"


@pytest.fixture(scope="session")
def team():
    if find_binaries() is None and not can_install():  # as root, the stack installs it itself
        pytest.skip("PostgreSQL's server is not installed and this user cannot install it: "
                    "install the Debian package `postgresql`")  # fmt: skip
    directory = Path(tempfile.mkdtemp(prefix="team-stack-"))
    ports = {name: free_port() for name in StackConfig().ports()}
    stack = TeamStack(directory, StackConfig(**ports, worker_cores=2, worker_memory="2g", mlflow_workers=2))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(directory, ignore_errors=True)


def team_env(stack: TeamStack, username: str | None = None, password: str | None = None, **extra) -> dict:
    """A job's environment against the stack, as `source .team/env` gives it (the admin unless told otherwise);
    Spark local unless `SPARK_MASTER` is passed."""
    env = job_env(stack.server.url)
    env.update({k: v for k, v in stack.env().items() if k != "SPARK_MASTER"})
    if username is not None:
        env.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password or "")
    env.update(extra)
    return env


def run_job(command: list[str], env: dict, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@pytest.fixture
def admin_settings(team, monkeypatch):
    """In-process jobs against the stack as its admin (local Spark: the session's own), logging into an experiment
    of their own (not the quickstart's)."""
    for key, value in team.env().items():
        if key.startswith("MLFLOW_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-in-process")
    mlflow.set_tracking_uri(team.server.url)
    return make_settings(team.server.url)


@pytest.fixture
def admin_client(team, admin_settings) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(team.server.url)


@pytest.fixture(scope="session")
def quickstart_on_team(team, _quickstart_started):
    """The README's first command against the stack: `mlflow run . -e main` on the standalone cluster. Started in
    the background as soon as the stack is up (the tests before the first that needs it run meanwhile)."""
    job, output = _quickstart_started
    stdout, stderr = job.communicate(timeout=900)
    assert job.returncode == 0, stderr[-5000:]
    return subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr), output


@pytest.fixture(scope="session", autouse=True)
def _quickstart_started(team, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quickstart")
    output = workdir / "predictions.parquet"  # `mlflow run` runs in the project folder: an absolute path
    command = [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "main", "--env-manager", "local",
               "--experiment-name", QUICKSTART_EXPERIMENT, "-P", f"output={output}"]  # fmt: skip
    env = team_env(team, SPARK_MASTER=team.spark.master_url)
    del env["MLFLOW_EXPERIMENT_NAME"]  # `mlflow run --experiment-name` says where the runs go
    job = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield job, output
    if job.poll() is None:  # the session ended before a test needed it
        job.kill()
        job.communicate()


def register_versions(experiment: str, name: str, count: int) -> list[str]:
    """`count` versions of a tiny real model under `name`, logged once and registered `count` times (the registry
    does not care how good they are), as whoever the environment's credentials name."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from training.sklearn.model import log_sklearn_model

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    mlflow.set_experiment(experiment)
    with mlflow.start_run():
        first = log_sklearn_model(LogisticRegression().fit(X, [0.0, 1.0, 0.0, 1.0]), X, registered_model_name=name)
    source = mlflow.MlflowClient().get_model_version(name, first.registered_model_version).source
    return [first.registered_model_version] + [mlflow.register_model(source, name).version for _ in range(count - 1)]


def registry_state(client: mlflow.MlflowClient, name: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(version -> stage, alias -> version, model tags): everything a promotion may change."""
    model = client.get_registered_model(name)
    versions = {v.version: v.current_stage for v in client.search_model_versions(f"name = '{name}'")}
    return versions, dict(model.aliases), dict(model.tags)

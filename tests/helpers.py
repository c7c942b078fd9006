"""Helpers the tests import: bundled data as scoring input, and running an entry point like a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from common.datasets import load_table

REPO = Path(__file__).resolve().parent.parent
TEST_MASTER = "local[2]"


def scoring_frame(name: str = "breast_cancer") -> pd.DataFrame:
    """A bundled data set as scoring input: row_id first, features, and the label kept as a pass-through."""
    frame = load_table(name).frame
    frame.insert(0, "row_id", range(len(frame)))
    return frame


def job_env(tracking_uri: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a job process sees: this test's store, a small local Spark, the venv's `python` first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_EXPERIMENT_NAME="e2e",
        SPARK_MASTER=TEST_MASTER,
        SPARK_SHUFFLE_PARTITIONS="2",
        SPARK_DRIVER_MEMORY="1g",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    env.update(extra_env or {})
    return env


def run_entry_point(entry_point: str, params: dict, cwd: Path, tracking_uri: str, extra_env=None, project=REPO):
    """`mlflow run <project> -e <entry point> --env-manager local` in a new process, as a user runs it."""
    command = [sys.executable, "-m", "mlflow", "run", str(project), "-e", entry_point, "--env-manager", "local"]
    command += ["--experiment-name", "e2e"]
    for key, value in params.items():
        command += ["-P", f"{key}={value}"]
    return _run(command, cwd, job_env(tracking_uri, extra_env))


def run_module(module: str, args: list[str], tracking_uri: str, extra_env=None):
    """`python -m <module> ...` from the repository root, for users who do not use `mlflow run`."""
    return _run([sys.executable, "-m", module, *args], REPO, job_env(tracking_uri, extra_env))


def start_module(module: str, args: list[str], tracking_uri: str, log_path: Path) -> subprocess.Popen:
    """`python -m <module>` in a session of its own, so a test can kill the job with its JVM and workers at once."""
    log = open(log_path, "ab")  # noqa: SIM115 - the child writes to it after this returns
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=job_env(tracking_uri),
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def popen_module(module: str, args: list[str], tracking_uri: str) -> subprocess.Popen:
    """`python -m <module>` started and left running; the caller collects its output with communicate()."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=job_env(tracking_uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


_GIT_USER = ["-c", "user.name=tests", "-c", "user.email=tests@localhost"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *_GIT_USER, *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()

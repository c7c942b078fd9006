"""A training run's record, read back for `reproduce`, and every reason it cannot be replayed here: each refusal is
one line naming what differs, raised before anything runs, so a refused reproduction leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from common.errors import UserInputError
from common.provenance import (
    CONNECTION_TAGS,
    DATA_SHA256_TAG,
    DATA_SOURCE_TAG,
    ENTRY_POINT_TAG,
    ENVIRONMENT_FILE,
    EXACT,
    EXACT_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    TRAINING_ENTRY_POINTS,
    current_environment,
    data_fingerprint,
)
from common.registry_lookup import is_not_found
from common.spark_compat import CLASSIC, CONNECT


@dataclass(frozen=True)
class TrainingRecord:
    run: Run
    entry_point: str
    commit: str
    data_source: str
    data_sha256: str | None
    environment: dict
    exact: bool  # False: the run itself recorded why a rerun cannot give the same model

    @property
    def run_id(self) -> str:
        return self.run.info.run_id

    @property
    def spark_settings(self) -> dict:
        return self.environment.get("spark_settings", {})

    @property
    def connection(self) -> str | None:
        """How the run reached Spark: classic or connect; None when it used no Spark (every run is tagged with the
        mode it was started in, a scikit-learn job too). A Spark run from before the tag existed was classic."""
        if not self.spark_settings:
            return None
        return self.run.data.tags.get(CONNECTION_TAGS["mode"], CLASSIC)

    @property
    def server_version(self) -> str | None:
        """The Spark version of the side that ran the job (the Connect server's, under Connect)."""
        return self.run.data.tags.get(CONNECTION_TAGS["spark_version"])


def read_record(client: mlflow.MlflowClient, run_id: str) -> TrainingRecord:
    """The run's record, or the reason it is not one `reproduce` can use."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not is_not_found(exc):
            raise
        raise UserInputError(f"run {run_id} does not exist in the tracking store {mlflow.get_tracking_uri()}") from exc
    tags = run.data.tags
    entry_point = tags.get(ENTRY_POINT_TAG)
    if entry_point not in TRAINING_ENTRY_POINTS:
        made_by = tags.get("mlflow.project.entryPoint") or tags.get("mlflow.source.name") or "unknown code"
        if made_by in TRAINING_ENTRY_POINTS:
            raise UserInputError(
                f"run {run_id} ({made_by}) was made before training runs recorded what reproduce needs "
                f"(it has no {ENTRY_POINT_TAG} tag): train it again to have a reproducible version"
            )
        raise UserInputError(
            f"run {run_id} was not made by one of this project's training entry points "
            f"({', '.join(TRAINING_ENTRY_POINTS)}) but by {made_by}: it has no record to replay"
        )
    commit = tags.get(GIT_COMMIT_TAG)
    if not commit:
        raise UserInputError(f"run {run_id} recorded no git commit: its code was not a git checkout")
    if tags.get(GIT_DIRTY_TAG) is None:
        raise UserInputError(f"run {run_id} did not record whether its tree was clean ({GIT_DIRTY_TAG})")
    if tags[GIT_DIRTY_TAG] != "false":
        raise UserInputError(
            f"run {run_id} ran from a dirty tree (changes not committed on top of {commit[:12]}): "
            "the code that trained it is not in any commit"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, ENVIRONMENT_FILE, tmp)
        except Exception as exc:
            raise UserInputError(f"run {run_id} logged no {ENVIRONMENT_FILE}: its environment is unknown") from exc
        environment = json.loads(Path(local).read_text())
    return TrainingRecord(
        run, entry_point, commit, tags[DATA_SOURCE_TAG], tags.get(DATA_SHA256_TAG), environment,
        tags.get(EXACT_TAG) == EXACT,
    )  # fmt: skip


def check_commit(repo: Path, record: TrainingRecord) -> None:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{record.commit}^{{commit}}"], cwd=repo, capture_output=True, text=True
    )
    if found.returncode != 0:
        raise UserInputError(
            f"commit {record.commit} (run {record.run_id}) is not in the repository at {repo}: "
            "fetch it (git fetch --all) or reproduce from a clone that has it"
        )


def check_data(record: TrainingRecord) -> None:
    """The data must be what the run read: same content hash (a remote source cannot be hashed; it is read as is
    and MLflow's own dataset digest on both runs tells whether it changed)."""
    if record.data_sha256 is None:
        return
    source, digest = data_fingerprint(record.data_source)
    if digest is None:
        raise UserInputError(f"data {source} of run {record.run_id} no longer exists")
    if digest != record.data_sha256:
        raise UserInputError(
            f"data {source} changed since run {record.run_id}: sha256 {record.data_sha256[:16]}... recorded, "
            f"{digest[:16]}... now"
        )


def check_environment(record: TrainingRecord) -> None:
    """Java is held to the record only when the run used Spark: a scikit-learn job never started a JVM."""
    recorded = dict(record.environment)
    if not record.spark_settings:
        recorded.pop("java", None)
    differences = environment_differences(recorded, current_environment())
    if differences:
        more = f" (and {len(differences) - 3} more)" if len(differences) > 3 else ""
        raise UserInputError(
            f"this environment does not match run {record.run_id}'s: {'; '.join(differences[:3])}{more}; "
            "install the recorded versions (its artifact " + ENVIRONMENT_FILE + " lists them)"
        )


def environment_differences(recorded: dict, current: dict) -> list[str]:
    """'<what> <recorded> recorded, <current> installed' for every interpreter, Java, Spark and package version
    that differs. Packages installed now but not then play no part and are not listed."""
    differences = [
        f"{name} {recorded[name]} recorded, {current.get(name) or 'none'} installed"
        for name in ("python", "java", "spark")
        if recorded.get(name) and recorded[name] != current.get(name)
    ]
    installed = current.get("packages", {})
    for package, version in recorded.get("packages", {}).items():
        if installed.get(package) != version:
            differences.append(f"{package} {version} recorded, {installed.get(package) or 'not'} installed")
    return differences


def check_connection(record: TrainingRecord, spark_remote: str | None) -> None:
    """A run trained through Spark Connect is replayed through Connect: SPARK_REMOTE must name a server (which
    one is the user's to say; the record holds its Spark version, not its address)."""
    if record.connection == CONNECT and not spark_remote:
        raise UserInputError(
            f"run {record.run_id} trained through Spark Connect (server Spark {record.server_version or 'unknown'}): "
            "set SPARK_REMOTE=sc://host:port to a Spark Connect server to replay it there"
        )


def check_server_version(record: TrainingRecord, spark) -> None:
    """Through Connect the server runs the job: its Spark version must be the recorded one (the client's pyspark
    is held to the record with the other packages)."""
    if record.connection != CONNECT or not record.server_version or spark is None:
        return
    if spark.version != record.server_version:
        raise UserInputError(
            f"run {record.run_id} trained on a Spark Connect server running Spark {record.server_version}; the "
            f"server at SPARK_REMOTE runs Spark {spark.version}"
        )
